// The adapter hook's plumbing (output slices, the registry of adapter kinds) and the simplest
// adapter, "delta": a full-rank trainable update dW of the selected output rows, zero at
// start. It is what the hook's tests use and a reference for LoRA-style adapters.
#include "modules/adapter.h"

#include <algorithm>
#include <map>

#include "common/errors.h"
#include "modules/layers.h"

namespace medtune::modules {

int64_t OutputSlices::rows(int64_t outFeatures) const {
  if (ranges.empty()) return outFeatures;
  int64_t n = 0;
  for (const auto& [start, length] : ranges) n += length;
  return n;
}

void OutputSlices::validate(int64_t outFeatures, const std::string& context) const {
  int64_t cursor = 0;
  for (const auto& [start, length] : ranges) {
    if (start < cursor || length <= 0 || start + length > outFeatures) {
      throw ArgumentError(context + ": slices must be ascending, disjoint [start, length] pairs inside the " +
                          std::to_string(outFeatures) + " output features");
    }
    cursor = start + length;
  }
}

at::Tensor OutputSlices::scatterColumns(const at::Tensor& delta, int64_t outFeatures) const {
  if (ranges.empty()) return delta;
  std::vector<at::Tensor> pieces;
  auto zerosOf = [&](int64_t n) {
    auto sizes = delta.sizes().vec();
    sizes.back() = n;
    return at::zeros(sizes, delta.options());
  };
  int64_t cursor = 0, used = 0;
  for (const auto& [start, length] : ranges) {
    if (start > cursor) pieces.push_back(zerosOf(start - cursor));
    pieces.push_back(delta.narrow(-1, used, length));
    used += length;
    cursor = start + length;
  }
  if (cursor < outFeatures) pieces.push_back(zerosOf(outFeatures - cursor));
  return at::cat(pieces, -1);
}

at::Tensor OutputSlices::scatterRows(const at::Tensor& deltaWeight, int64_t outFeatures) const {
  if (ranges.empty()) return deltaWeight;
  at::Tensor full = at::zeros({outFeatures, deltaWeight.size(1)}, deltaWeight.options());
  int64_t used = 0;
  for (const auto& [start, length] : ranges) {
    full.narrow(0, start, length).copy_(deltaWeight.narrow(0, used, length));
    used += length;
  }
  return full;
}

OutputSlices slicesFromOptions(const Napi::Object& options, int64_t outFeatures, const std::string& context) {
  OutputSlices slices;
  if (!options.Has("slices") || options.Get("slices").IsUndefined() || options.Get("slices").IsNull()) return slices;
  Napi::Value v = options.Get("slices");
  if (!v.IsArray()) throw ArgumentError(context + ": options.slices must be an array of [start, length] pairs");
  auto arr = v.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value pair = arr.Get(i);
    if (!pair.IsArray() || pair.As<Napi::Array>().Length() != 2) throw ArgumentError(context + ": options.slices[" + std::to_string(i) + "] must be [start, length]");
    auto p = pair.As<Napi::Array>();
    if (!p.Get(0u).IsNumber() || !p.Get(1u).IsNumber()) throw ArgumentError(context + ": options.slices[" + std::to_string(i) + "] must hold two numbers");
    slices.ranges.emplace_back(p.Get(0u).As<Napi::Number>().Int64Value(), p.Get(1u).As<Napi::Number>().Int64Value());
  }
  std::sort(slices.ranges.begin(), slices.ranges.end());
  slices.validate(outFeatures, context);
  return slices;
}

// ---- registry ------------------------------------------------------------------------------------

namespace {
std::map<std::string, AdapterFactory>& registry() {
  static std::map<std::string, AdapterFactory> kinds;
  return kinds;
}
}  // namespace

AdapterKindRegistration::AdapterKindRegistration(const char* kind, AdapterFactory factory) { registry()[kind] = std::move(factory); }

const AdapterFactory* findAdapterKind(const std::string& kind) {
  auto it = registry().find(kind);
  return it == registry().end() ? nullptr : &it->second;
}

std::vector<std::string> adapterKinds() {
  std::vector<std::string> out;
  for (const auto& [k, f] : registry()) out.push_back(k);
  return out;
}

// ---- the "delta" adapter -----------------------------------------------------------------------

namespace {

class DeltaAdapter : public LinearAdapter {
 public:
  DeltaAdapter(const Linear& base, OutputSlices slices, double scale) : slices_(std::move(slices)), scale_(scale) {
    // Trainable masters in the base weight's dtype; created zero so attaching changes nothing.
    delta_ = at::zeros({slices_.rows(base.outFeatures()), base.inFeatures()}, base.weight.options()).set_requires_grad(true);
  }
  std::string kind() const override { return "delta"; }

  at::Tensor forward(const Linear& base, const at::Tensor& x, const at::Tensor& baseOutput) override {
    at::Tensor d = at::linear(x.to(delta_.scalar_type()), delta_) * scale_;
    return baseOutput + slices_.scatterColumns(d, base.outFeatures()).to(baseOutput.scalar_type());
  }
  void merge(Linear& base) override { base.weight.add_(slices_.scatterRows(delta_ * scale_, base.outFeatures()).to(base.weight.scalar_type())); }
  void unmerge(Linear& base) override { base.weight.sub_(slices_.scatterRows(delta_ * scale_, base.outFeatures()).to(base.weight.scalar_type())); }
  std::vector<std::pair<std::string, at::Tensor*>> parameters() override { return {{"delta.weight", &delta_}}; }

 private:
  OutputSlices slices_;
  double scale_;
  at::Tensor delta_;
};

std::shared_ptr<LinearAdapter> makeDelta(Linear& base, const Napi::Object& options) {
  double scale = 1.0;
  if (options.Has("scale") && options.Get("scale").IsNumber()) scale = options.Get("scale").As<Napi::Number>().DoubleValue();
  return std::make_shared<DeltaAdapter>(base, slicesFromOptions(options, base.outFeatures(), "attachAdapter('delta')"), scale);
}

}  // namespace

MEDTUNE_ADAPTER_KIND(delta, "delta", makeDelta);

}  // namespace medtune::modules
