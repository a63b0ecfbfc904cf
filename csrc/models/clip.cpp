#include "models/clip.h"

#include <ATen/ATen.h>

#include "common/errors.h"
#include "models/model.h"

namespace medtune::models {

using modules::Init;
using modules::Kind;
using modules::Part;

ClipVisionEmbeddings::ClipVisionEmbeddings(int64_t dim, int64_t channels, int64_t patch, int64_t image, const Init& init)
    : Module("CLIPVisionEmbeddings", Kind::Other, Part::Vision), image_(image) {
  classEmbedding = init.empty({dim});
  addParameter("class_embedding", &classEmbedding);
  patch_ = addChild("patch_embedding", std::make_shared<modules::PatchConv>(channels, dim, patch, false, Part::Vision, init));
  const int64_t positions = (image / patch) * (image / patch) + 1;
  position_ = addChild("position_embedding", std::make_shared<modules::Embedding>(positions, dim, Kind::PositionEmbedding, Part::Vision, init));
}

at::Tensor ClipVisionEmbeddings::forward(const at::Tensor& pixels) const {
  if (pixels.dim() == 4 && (pixels.size(2) != image_ || pixels.size(3) != image_)) {
    throw ArgumentError("pixel_values are " + std::to_string(pixels.size(2)) + "x" + std::to_string(pixels.size(3)) + " but the CLIP vision tower takes " +
                        std::to_string(image_) + "x" + std::to_string(image_) + " images");
  }
  at::Tensor patches = patch_->forward(pixels);
  const int64_t B = patches.size(0);
  at::Tensor cls = classEmbedding.view({1, 1, -1}).expand({B, 1, -1});
  return at::cat({cls, patches}, 1) + position_->weight.unsqueeze(0);
}

void ClipVisionEmbeddings::initialize(double std, at::Generator& generator) { modules::normalInit(classEmbedding, std, generator); }

ClipVisionTower::ClipVisionTower(const Spec& s, const Init& init) : Module("CLIPVisionTransformer", Kind::Other, Part::Vision) {
  const int64_t dim = s.integer("hiddenSize");
  const double eps = s.number("layerNormEps", 1e-5);
  embeddings_ = addChild("embeddings", std::make_shared<ClipVisionEmbeddings>(dim, s.integer("numChannels", 3), s.integer("patchSize"), s.integer("imageSize"), init));
  preNorm_ = addChild("pre_layrnorm", std::make_shared<modules::LayerNorm>(dim, eps, Part::Vision, init));
  EncoderBlockConfig block;
  block.dim = dim;
  block.heads = s.integer("numHeads");
  block.mlpDim = s.integer("intermediateSize");
  block.eps = eps;
  block.activation = modules::parseActivation(s.string("hiddenAct", "quick_gelu"));
  block.attentionDropout = s.number("attentionDropout", 0.0);
  const int64_t n = s.integer("numLayers");
  for (int64_t i = 0; i < n; ++i) {
    layers_.push_back(addChild("encoder.layers." + std::to_string(i), std::make_shared<EncoderBlock>(block, EncoderBlockNames::clip(), init, "CLIPEncoderLayer")));
  }
  postNorm_ = addChild("post_layernorm", std::make_shared<modules::LayerNorm>(dim, eps, Part::Vision, init));
}

int64_t ClipVisionTower::resolveLayer(int64_t index) const {
  const int64_t states = numLayers() + 1;
  int64_t resolved = index < 0 ? states + index : index;
  if (resolved < 0 || resolved >= states) {
    throw ArgumentError("vision feature layer " + std::to_string(index) + " is out of range for a tower with " + std::to_string(numLayers()) + " layers");
  }
  return resolved;
}

std::vector<at::Tensor> ClipVisionTower::hiddenStates(const at::Tensor& pixels, int64_t upto) {
  std::vector<at::Tensor> states;
  at::Tensor h = preNorm_->forward(embeddings_->forward(pixels));
  states.push_back(h);
  for (int64_t i = 0; i < upto && i < numLayers(); ++i) {
    EncoderBlock& block = *layers_[static_cast<size_t>(i)];
    h = modules::runLayer(block, h, [&block](const at::Tensor& x) { return block.forward(x); });
    states.push_back(h);
  }
  return states;
}

namespace {

// CLIPVisionModel as a model of its own: last_hidden_state, pooler_output (post_layernorm of the
// CLS token) and hidden_states.N.
class ClipVisionModel : public Model {
 public:
  ClipVisionModel(const Spec& s, const Init& init) : Model("CLIPVisionModel", "clip_vision", Part::Vision) {
    tower_ = addChild(s.string("prefix", ""), std::make_shared<ClipVisionTower>(s, init));
  }

  TensorMap forward(const TensorMap& batch, const ForwardOptions& options) override {
    auto states = tower_->hiddenStates(requireTensor(batch, "pixel_values", "CLIP vision"), tower_->numLayers());
    TensorMap out;
    out["last_hidden_state"] = states.back();
    out["pooler_output"] = tower_->postLayerNorm(states.back().select(1, 0));
    if (options.outputHiddenStates)
      for (size_t i = 0; i < states.size(); ++i) out["hidden_states." + std::to_string(i)] = states[i];
    return out;
  }

 private:
  std::shared_ptr<ClipVisionTower> tower_;
};

}  // namespace

MEDTUNE_MODEL_FAMILY(clip_vision, "clip_vision", [](const Spec& spec, const Init& init) -> std::shared_ptr<Model> {
  return std::make_shared<ClipVisionModel>(spec, init);
});

}  // namespace medtune::models
