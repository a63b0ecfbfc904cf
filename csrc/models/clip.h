// CLIP's vision tower (CLIPVisionModel): embeddings (class_embedding, patch_embedding without
// bias, position_embedding), pre_layrnorm, encoder.layers.N (quick_gelu MLP), post_layernorm on
// the CLS token. hidden_states[0] is the pre-layernormed embedding, hidden_states[i] the output of
// layer i, as transformers numbers them; LLaVA selects one of them by (negative) index.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <vector>

#include "models/encoder_block.h"
#include "models/spec.h"
#include "modules/layers.h"

namespace medtune::models {

class ClipVisionEmbeddings : public modules::Module {
 public:
  ClipVisionEmbeddings(int64_t dim, int64_t channels, int64_t patch, int64_t image, const modules::Init& init);
  at::Tensor forward(const at::Tensor& pixels) const;
  at::Tensor classEmbedding;

 protected:
  void initialize(double std, at::Generator& generator) override;

 private:
  int64_t image_;
  std::shared_ptr<modules::PatchConv> patch_;
  std::shared_ptr<modules::Embedding> position_;
};

class ClipVisionTower : public modules::Module {
 public:
  ClipVisionTower(const Spec& spec, const modules::Init& init);
  // hidden_states[0 .. upto] (upto as a non-negative index into the num_layers + 1 states);
  // layers past `upto` are not run.
  std::vector<at::Tensor> hiddenStates(const at::Tensor& pixels, int64_t upto);
  at::Tensor postLayerNorm(const at::Tensor& x) const { return postNorm_->forward(x); }
  int64_t numLayers() const { return static_cast<int64_t>(layers_.size()); }
  // A HF vision_feature_layer index (negative counts from the end) as a non-negative one.
  int64_t resolveLayer(int64_t index) const;

 private:
  std::shared_ptr<ClipVisionEmbeddings> embeddings_;
  std::shared_ptr<modules::LayerNorm> preNorm_, postNorm_;
  std::vector<std::shared_ptr<EncoderBlock>> layers_;
};

}  // namespace medtune::models
