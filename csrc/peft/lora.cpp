#include "peft/lora.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <napi.h>

#include <cmath>

#include "common/errors.h"
#include "tensor/dtype.h"

namespace medtune::peft {

using modules::Linear;

double LoraOptions::scaling() const { return rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r); }

namespace {

bool isHalf(at::ScalarType t) { return t == at::kHalf || t == at::kBFloat16; }

// Values are drawn in float32 on the host and then copied, so that a seed gives the same adapter
// whatever the model's dtype and device (and the same numbers torch draws on the CPU after
// torch.manual_seed: both use the CPU generator's mt19937 stream).
void initA(at::Tensor& a, const LoraOptions& o, int64_t fanIn) {
  at::Tensor cpu = at::empty(a.sizes(), at::TensorOptions().dtype(at::kFloat));
  at::Generator gen = o.seed ? at::make_generator<at::CPUGeneratorImpl>(*o.seed) : at::detail::getDefaultCPUGenerator();
  // (the sampling kernels lock the generator themselves)
  if (o.init == "kaiming") {
    // nn.init.kaiming_uniform_(w, a=math.sqrt(5)): gain sqrt(2 / (1 + a^2)), bound sqrt(3) * gain / sqrt(fan_in)
    const double slope = std::sqrt(5.0);
    const double gain = std::sqrt(2.0 / (1.0 + slope * slope));
    const double bound = std::sqrt(3.0) * (gain / std::sqrt(static_cast<double>(fanIn)));
    cpu.uniform_(-bound, bound, gen);
  } else if (o.init == "gaussian") {
    cpu.normal_(0.0, 1.0 / static_cast<double>(o.r), gen);
  } else {
    cpu.zero_();
  }
  a.copy_(cpu);
}

}  // namespace

LoraAdapter::LoraAdapter(const Linear& base, LoraOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  if (o.r <= 0) throw ArgumentError("lora: r must be a positive integer, got " + std::to_string(o.r));
  if (o.dropout < 0 || o.dropout >= 1) throw ArgumentError("lora: dropout must be in [0, 1), got " + std::to_string(o.dropout));
  if (o.init != "kaiming" && o.init != "gaussian" && o.init != "zeros") {
    throw ArgumentError("lora: init must be 'kaiming' (peft's default), 'gaussian' or 'zeros', got '" + o.init + "'");
  }
  if (o.dora && !o.slices.all()) {
    throw ArgumentError("lora: DoRA on some output slices of a fused projection is not supported (peft's DoRA normalises whole weight rows of a whole Linear)");
  }
  if (o.slices.all()) {
    sliceRows_ = {base.outFeatures()};
  } else {
    for (const auto& [start, length] : o.slices.ranges) sliceRows_.push_back(length);
  }
  slices_ = static_cast<int64_t>(sliceRows_.size());
  // peft's autocast_adapter_dtype: adapters of a half-precision model are kept in float32.
  const at::ScalarType baseType = base.weight.scalar_type();
  const at::ScalarType dtype = o.dtype.value_or(isHalf(baseType) ? at::kFloat : baseType);
  if (!at::isFloatingType(dtype)) throw ArgumentError("lora: the adapter dtype must be a floating type");
  auto opts = base.weight.options().dtype(dtype);
  at::NoGradGuard noGrad;
  a_ = at::empty({slices_ * o.r, base.inFeatures()}, opts);
  initA(a_, o, base.inFeatures());
  b_ = at::zeros({o.slices.rows(base.outFeatures()), o.r}, opts);
  if (o.dora) {
    // DoraLinearLayer.update_layer: ||W + scaling * B A|| per output row (B is zero here, but a
    // caller may load B before the magnitude, so it is computed the same way).
    at::Tensor loraWeight = at::matmul(b_, a_);
    magnitude_ = at::linalg_vector_norm(base.weight.to(dtype) + o.scaling() * loraWeight, 2, at::IntArrayRef{1}, false, std::nullopt);
    magnitude_.requires_grad_(true);
  }
  a_.requires_grad_(true);
  b_.requires_grad_(true);
}

std::vector<std::pair<std::string, at::Tensor*>> LoraAdapter::parameters() {
  std::vector<std::pair<std::string, at::Tensor*>> out{{"lora_A.weight", &a_}, {"lora_B.weight", &b_}};
  // peft saves DoRA's magnitude as "<module>.lora_magnitude_vector" (no ".weight").
  if (magnitude_.defined()) out.emplace_back("lora_magnitude_vector", &magnitude_);
  return out;
}

at::Tensor LoraAdapter::loraOutput(const at::Tensor& x) const {
  at::Tensor h = at::linear(x, a_);
  if (slices_ == 1) return at::linear(h, b_);
  // loralib's MergedLinear: slice i's rank-r block of A feeds only slice i's rows of B.
  std::vector<at::Tensor> parts;
  int64_t row = 0;
  for (int64_t i = 0; i < slices_; ++i) {
    parts.push_back(at::linear(h.narrow(-1, i * options_.r, options_.r), b_.narrow(0, row, sliceRows_[i])));
    row += sliceRows_[i];
  }
  return at::cat(parts, -1);
}

at::Tensor LoraAdapter::forward(const Linear& base, const at::Tensor& x, const at::Tensor& baseOutput) {
  // peft casts the input to the adapter's dtype, adds, and casts the sum back to the base output's.
  at::Tensor xa = x.scalar_type() == a_.scalar_type() ? x : x.to(a_.scalar_type());
  at::Tensor y;
  if (options_.dora) {
    y = baseOutput + doraForward(base, xa, baseOutput);
  } else {
    at::Tensor delta = loraOutput(modules::dropout(xa, options_.dropout, training_)) * options_.scaling();
    y = baseOutput + options_.slices.scatterColumns(delta, base.outFeatures());
  }
  return y.scalar_type() == baseOutput.scalar_type() ? y : y.to(baseOutput.scalar_type());
}

at::Tensor LoraAdapter::doraForward(const Linear& base, const at::Tensor& x, const at::Tensor& baseOutput) const {
  const double scaling = options_.scaling();
  // DoraLinearLayer.get_lora_weight: lora_B(lora_A(eye)).T rather than B @ A.
  at::Tensor eye = at::eye(a_.size(1), a_.options());
  at::Tensor loraWeight = at::linear(at::linear(eye, a_), b_).t().to(x.scalar_type());
  at::Tensor weight = base.weight.to(x.scalar_type());
  // The row norm of W + scaling * dW, treated as a constant (DoRA paper, section 4.3).
  at::Tensor weightNorm = at::linalg_vector_norm(weight + scaling * loraWeight.detach(), 2, at::IntArrayRef{1}, false, std::nullopt);
  weightNorm = weightNorm.to(weight.scalar_type()).detach();
  at::Tensor magNormScale = (magnitude_ / weightNorm).view({1, -1});
  const bool dropoutActive = training_ && options_.dropout > 0;
  at::Tensor xd = dropoutActive ? modules::dropout(x, options_.dropout, true) : x;
  at::Tensor loraResult = at::linear(at::linear(xd, a_), b_);
  at::Tensor baseResult;
  if (!dropoutActive) {
    baseResult = base.bias.defined() ? baseOutput - base.bias : baseOutput;
  } else {
    baseResult = at::linear(xd, weight);
  }
  return (magNormScale - 1) * baseResult + magNormScale * loraResult * scaling;
}

at::Tensor LoraAdapter::deltaWeight(const Linear& base) const {
  // peft's get_delta_weight: (B @ A) * scaling, in float32 for half-precision adapters on the CPU.
  const bool upcast = a_.device().is_cpu() && isHalf(a_.scalar_type());
  at::Tensor a = upcast ? a_.to(at::kFloat) : a_;
  at::Tensor b = upcast ? b_.to(at::kFloat) : b_;
  at::Tensor product;
  if (slices_ == 1) {
    product = at::matmul(b, a);
  } else {
    std::vector<at::Tensor> parts;
    int64_t row = 0;
    for (int64_t i = 0; i < slices_; ++i) {
      parts.push_back(at::matmul(b.narrow(0, row, sliceRows_[i]), a.narrow(0, i * options_.r, options_.r)));
      row += sliceRows_[i];
    }
    product = at::cat(parts, 0);
  }
  at::Tensor delta = options_.slices.scatterRows(product * options_.scaling(), base.outFeatures());
  return upcast ? delta.to(a_.scalar_type()) : delta;
}

void LoraAdapter::merge(Linear& base) {
  at::Tensor delta = deltaWeight(base);
  if (!options_.dora) {
    base.weight.add_(delta);
    return;
  }
  // DoraLinearVariant.merge_unsafe: rescale W + dW by magnitude / ||W + dW|| (rows).
  const at::ScalarType orig = base.weight.scalar_type();
  at::Tensor sum = base.weight + delta;
  mergedNorm_ = at::linalg_vector_norm(sum, 2, at::IntArrayRef{1}, false, std::nullopt).to(sum.scalar_type()).detach();
  at::Tensor factor = (magnitude_.detach() / mergedNorm_).view({-1, 1});
  base.weight.copy_((factor * sum).to(orig));
}

void LoraAdapter::unmerge(Linear& base) {
  at::Tensor delta = deltaWeight(base);
  if (!options_.dora) {
    base.weight.sub_(delta.to(base.weight.scalar_type()));
    return;
  }
  at::Tensor factor = (magnitude_.detach() / mergedNorm_).view({-1, 1});
  base.weight.copy_((base.weight / factor - delta).to(base.weight.scalar_type()));
  mergedNorm_ = at::Tensor();
}

// ---- registration --------------------------------------------------------------------------------

namespace {

LoraOptions optionsFromJs(const Linear& base, const Napi::Object& o, const std::string& kind) {
  const std::string ctx = "attachAdapter('" + kind + "')";
  auto number = [&](const char* key) -> std::optional<double> {
    if (!o.Has(key) || o.Get(key).IsUndefined() || o.Get(key).IsNull()) return std::nullopt;
    if (!o.Get(key).IsNumber()) throw ArgumentError(ctx + ": options." + key + " must be a number");
    return o.Get(key).As<Napi::Number>().DoubleValue();
  };
  auto flag = [&](const char* key) {
    if (!o.Has(key) || o.Get(key).IsUndefined() || o.Get(key).IsNull()) return false;
    if (!o.Get(key).IsBoolean()) throw ArgumentError(ctx + ": options." + key + " must be true or false");
    return o.Get(key).As<Napi::Boolean>().Value();
  };
  LoraOptions opts;
  auto r = number("r");
  if (!r) throw ArgumentError(ctx + ": options.r (the rank) is required");
  if (*r != std::floor(*r) || *r <= 0) throw ArgumentError(ctx + ": options.r must be a positive integer");
  opts.r = static_cast<int64_t>(*r);
  opts.alpha = number("alpha").value_or(8.0);  // peft's LoraConfig default lora_alpha
  opts.dropout = number("dropout").value_or(0.0);
  opts.rslora = flag("rslora");
  opts.dora = kind == "dora" || flag("dora");
  if (o.Has("init") && o.Get("init").IsString()) opts.init = o.Get("init").As<Napi::String>().Utf8Value();
  if (auto seed = number("seed")) opts.seed = static_cast<uint64_t>(*seed);
  if (o.Has("dtype") && o.Get("dtype").IsString()) opts.dtype = parseDtype(o.Get("dtype").As<Napi::String>().Utf8Value());
  opts.slices = modules::slicesFromOptions(o, base.outFeatures(), ctx);
  return opts;
}

std::shared_ptr<modules::LinearAdapter> makeLora(Linear& base, const Napi::Object& options) {
  return std::make_shared<LoraAdapter>(base, optionsFromJs(base, options, "lora"));
}

std::shared_ptr<modules::LinearAdapter> makeDora(Linear& base, const Napi::Object& options) {
  return std::make_shared<LoraAdapter>(base, optionsFromJs(base, options, "dora"));
}

}  // namespace

MEDTUNE_ADAPTER_KIND(lora, "lora", makeLora);
MEDTUNE_ADAPTER_KIND(dora, "dora", makeDora);

}  // namespace medtune::peft
