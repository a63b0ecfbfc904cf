// Adapters on Linear layers: the hook that LoRA-style methods plug into. An adapter is attached
// to one Linear (addressed by its checkpoint path, e.g. "blocks.0.attn.qkv"), its parameters then
// appear among the model's parameters under that path ("blocks.0.attn.qkv.lora_A.weight"), and it
// can be merged into the base weight and unmerged again. An adapter may act on only some output
// rows of a fused projection (timm's qkv: q and v slices), as loralib's MergedLinear does.
#pragma once
#include <ATen/ATen.h>
#include <napi.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace medtune::modules {

class Linear;

// Output rows [start, start + length) of a Linear that an adapter produces; empty = all rows.
struct OutputSlices {
  std::vector<std::pair<int64_t, int64_t>> ranges;  // (start, length), ascending, disjoint

  bool all() const { return ranges.empty(); }
  int64_t rows(int64_t outFeatures) const;  // number of rows the adapter produces
  // Zero-pads the adapter's output (..., rows) to (..., outFeatures) (loralib's zero_pad).
  at::Tensor scatterColumns(const at::Tensor& delta, int64_t outFeatures) const;
  // Zero-pads a weight delta (rows, in) to (outFeatures, in).
  at::Tensor scatterRows(const at::Tensor& deltaWeight, int64_t outFeatures) const;
  // Checks the ranges against outFeatures; throws an ArgumentError naming `context`.
  void validate(int64_t outFeatures, const std::string& context) const;
};

class LinearAdapter {
 public:
  virtual ~LinearAdapter() = default;
  virtual std::string kind() const = 0;
  // The adapted layer's output, given the input and the frozen base output linear(x, W, b).
  virtual at::Tensor forward(const Linear& base, const at::Tensor& x, const at::Tensor& baseOutput) = 0;
  // Folds the adapter into base.weight (called without grad) and back out again.
  virtual void merge(Linear& base) = 0;
  virtual void unmerge(Linear& base) = 0;
  // Parameters, named relative to the Linear ("lora_A.weight").
  virtual std::vector<std::pair<std::string, at::Tensor*>> parameters() = 0;
  virtual void setTraining(bool training) {}
};

// Adapter kinds are registered by name; the PEFT layer adds its own ("lora", "dora") from its
// source files the same way. `options` is the JavaScript options object given to attachAdapter.
using AdapterFactory = std::function<std::shared_ptr<LinearAdapter>(Linear& base, const Napi::Object& options)>;

struct AdapterKindRegistration {
  AdapterKindRegistration(const char* kind, AdapterFactory factory);
};
const AdapterFactory* findAdapterKind(const std::string& kind);
std::vector<std::string> adapterKinds();

// Reads an OutputSlices from options.slices: [[start, length], ...] (or absent for all rows).
OutputSlices slicesFromOptions(const Napi::Object& options, int64_t outFeatures, const std::string& context);

}  // namespace medtune::modules

#define MEDTUNE_ADAPTER_KIND(ident, kind, factory) \
  static ::medtune::modules::AdapterKindRegistration medtune_adapter_kind_##ident(kind, factory)
