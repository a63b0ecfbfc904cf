// Rotary position embeddings as transformers computes them (modeling_rope_utils.py): inverse
// frequencies in float32 for rope_type default, linear, dynamic (NTK, recomputed when a sequence
// grows past max_position_embeddings, as transformers' dynamic_rope_update does), llama3 and yarn;
// cos/sin in float32, scaled by the attention factor, cast to the activations' dtype.
#pragma once
#include <ATen/ATen.h>

#include <mutex>
#include <string>
#include <utility>

#include "models/spec.h"

namespace medtune::models {

struct RopeConfig {
  std::string type = "default";
  double theta = 10000.0;
  int64_t headDim = 0;
  int64_t maxPositionEmbeddings = 2048;
  double factor = 1.0;
  double lowFreqFactor = 1.0;
  double highFreqFactor = 4.0;
  int64_t originalMaxPositionEmbeddings = 0;
  double attentionFactor = -1.0;  // < 0: derived (yarn)
  double betaFast = 32.0;
  double betaSlow = 1.0;
  double mscale = 0.0;
  double mscaleAllDim = 0.0;
  bool truncate = true;

  static RopeConfig fromSpec(const Spec& spec, int64_t headDim, int64_t maxPositionEmbeddings);
};

class Rope {
 public:
  explicit Rope(RopeConfig config);
  // (B, S) positions -> cos, sin of shape (B, S, headDim) in `dtype` on the positions' device.
  std::pair<at::Tensor, at::Tensor> cosSin(const at::Tensor& positionIds, at::ScalarType dtype);

 private:
  at::Tensor invFreqFor(int64_t seqLen) const;

  RopeConfig config_;
  at::Tensor original_;  // float32, CPU
  at::Tensor current_;
  double attentionScaling_ = 1.0;
  int64_t maxSeqLenCached_;
  std::mutex mutex_;
};

// q * cos + rotate_half(q) * sin, with cos/sin (B, S, D) broadcast over heads of x (B, H, S, D).
at::Tensor applyRotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace medtune::models
