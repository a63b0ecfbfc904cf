// LoRA and DoRA as adapters on the Linear hook (modules/adapter.h), computing exactly what peft's
// lora.Linear computes (peft 0.21: tuners/lora/layer.py, tuners/lora/dora.py):
//   y = base(x) + lora_B(lora_A(dropout(x))) * scaling,      scaling = alpha / r  (rsLoRA: alpha / sqrt(r))
// with A initialised like nn.Linear (kaiming-uniform, a = sqrt(5)) and B zero, so attaching changes
// nothing. An adapter may produce only some output rows of a fused projection (timm's qkv): each
// enabled slice then has its own rank-r pair, as loralib's MergedLinear (enable_lora=[q, k, v]).
// DoRA (use_dora) adds a trainable magnitude per output row and rescales by the detached row norm
// of W + scaling * B A, as peft's DoraLinearLayer does.
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "modules/adapter.h"
#include "modules/layers.h"

namespace medtune::peft {

struct LoraOptions {
  int64_t r = 8;
  double alpha = 8;
  double dropout = 0;
  bool rslora = false;
  bool dora = false;
  std::string init = "kaiming";  // 'kaiming' (peft's True), 'gaussian' (normal, std 1/r), 'zeros' (A and B zero)
  std::optional<uint64_t> seed;  // private generator; otherwise the global one (manualSeed)
  std::optional<at::ScalarType> dtype;
  modules::OutputSlices slices;

  double scaling() const;
};

class LoraAdapter : public modules::LinearAdapter {
 public:
  LoraAdapter(const modules::Linear& base, LoraOptions options);
  std::string kind() const override { return options_.dora ? "dora" : "lora"; }
  at::Tensor forward(const modules::Linear& base, const at::Tensor& x, const at::Tensor& baseOutput) override;
  void merge(modules::Linear& base) override;
  void unmerge(modules::Linear& base) override;
  std::vector<std::pair<std::string, at::Tensor*>> parameters() override;
  void setTraining(bool training) override { training_ = training; }

  // The merged update scatter(B_i A_i) * scaling, shaped like the base weight, in its dtype.
  at::Tensor deltaWeight(const modules::Linear& base) const;

 private:
  at::Tensor loraOutput(const at::Tensor& x) const;  // B(A(x)) per slice, concatenated, unscaled
  at::Tensor doraForward(const modules::Linear& base, const at::Tensor& x, const at::Tensor& baseOutput) const;

  LoraOptions options_;
  int64_t slices_ = 1;  // number of (A_i, B_i) pairs
  std::vector<int64_t> sliceRows_;
  at::Tensor a_, b_, magnitude_;
  at::Tensor mergedNorm_;  // DoRA: the row norms used at merge time, needed to unmerge
  bool training_ = false;
};

}  // namespace medtune::peft
