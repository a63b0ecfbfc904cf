// The pre-norm transformer encoder block shared by HF ViT, timm/MAE ViT, CLIP's and BLIP's vision towers:
//   x = x + drop_path(ls1(attn(norm1(x))));  x = x + drop_path(ls2(mlp(norm2(x))))
// Only the parameter names differ between the three layouts (and whether q, k, v are one fused
// Linear, as in timm's `attn.qkv`), so the names are data.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <string>

#include "modules/layers.h"

namespace medtune::models {

struct EncoderBlockConfig {
  int64_t dim = 0;
  int64_t heads = 0;
  int64_t mlpDim = 0;
  double eps = 1e-6;
  modules::Activation activation = modules::Activation::Gelu;
  bool qkvBias = true;
  bool fusedQkv = false;
  bool layerScale = false;  // timm's init_values: ls1.gamma / ls2.gamma
  double attentionDropout = 0;
  double hiddenDropout = 0;  // after the attention output and after the MLP (HF ViT)
  double mlpDropout = 0;     // between fc1 and fc2 and after fc2 (timm's proj_drop)
  double dropPath = 0;       // stochastic depth (timm)
  modules::Part part = modules::Part::Vision;
};

struct EncoderBlockNames {
  std::string norm1, norm2;
  std::string q, k, v, qkv;  // qkv for the fused layout
  std::string out, fc1, fc2;
  std::string ls1, ls2;  // LayerScale modules (their parameter is "gamma")

  static EncoderBlockNames hfVit();  // layernorm_before, attention.attention.query, ...
  static EncoderBlockNames timm();   // norm1, attn.qkv, attn.proj, mlp.fc1, ls1 ...
  static EncoderBlockNames clip();   // layer_norm1, self_attn.q_proj, self_attn.out_proj, mlp.fc1 ...
  static EncoderBlockNames hfBlip();  // layer_norm1, self_attn.qkv (fused), self_attn.projection, mlp.fc1 ...
};

class LayerScale : public modules::Module {
 public:
  LayerScale(int64_t dim, modules::Part part, const modules::Init& init);
  at::Tensor gamma;

 protected:
  void initialize(double std, at::Generator& generator) override;
};

class EncoderBlock : public modules::Module {
 public:
  EncoderBlock(const EncoderBlockConfig& config, const EncoderBlockNames& names, const modules::Init& init, const std::string& typeName);
  at::Tensor forward(const at::Tensor& x) const;
  // Depends only on its input and its own parameters (dropout and drop-path draw from the
  // default generators, which checkpointing replays).
  bool checkpointable() const override { return true; }

 private:
  at::Tensor attention(const at::Tensor& x) const;
  at::Tensor dropPath(const at::Tensor& x) const;

  EncoderBlockConfig config_;
  std::shared_ptr<modules::LayerNorm> norm1_, norm2_;
  std::shared_ptr<modules::Linear> q_, k_, v_, qkv_, out_, fc1_, fc2_;
  std::shared_ptr<LayerScale> ls1_, ls2_;
};

}  // namespace medtune::models
