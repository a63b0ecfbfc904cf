// Vision transformers for classification, in two checkpoint layouts:
//  - HF (ViTModel / ViTForImageClassification): vit.embeddings.{cls_token, position_embeddings,
//    patch_embeddings.projection}, vit.encoder.layer.N.*, vit.layernorm, classifier; CLS pooling
//    after the final layernorm; ViTModel's optional pooler (dense + tanh).
//  - timm / MAE (VisionTransformer): cls_token, pos_embed, patch_embed.proj, blocks.N.{norm1,
//    attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}, norm or fc_norm, head; token or
//    global-average pooling, fc_norm after the pool as MAE fine-tuning uses it.
// Outputs: logits (when there is a head), last_hidden_state, pooler_output, loss with labels.
#include <ATen/ATen.h>

#include "common/errors.h"
#include "models/encoder_block.h"
#include "models/losses.h"
#include "models/model.h"

namespace medtune::models {

namespace {

using modules::Init;
using modules::Kind;
using modules::Part;

// cls token, position embeddings and the patch projection. Its parameter names depend on the
// layout; the arithmetic (cat then add, or add then cat for no_embed_class) does not.
class VitEmbeddings : public modules::Module {
 public:
  VitEmbeddings(bool hf, int64_t dim, int64_t channels, int64_t patch, int64_t image, bool classToken, bool noEmbedClass, bool patchBias,
                const Init& init)
      : Module("ViTEmbeddings", Kind::Other, Part::Vision), image_(image), classToken_(classToken), noEmbedClass_(noEmbedClass) {
    int64_t patches = (image / patch) * (image / patch);
    if (classToken) cls = init.empty({1, 1, dim});
    pos = init.empty({1, patches + (classToken && !noEmbedClass ? 1 : 0), dim});
    addParameter("cls_token", &cls);
    addParameter(hf ? "position_embeddings" : "pos_embed", &pos, Kind::PositionEmbedding);
    proj = addChild(hf ? "patch_embeddings.projection" : "patch_embed.proj", std::make_shared<modules::PatchConv>(channels, dim, patch, patchBias, Part::Vision, init));
  }

  at::Tensor forward(const at::Tensor& pixels) const {
    if (pixels.dim() == 4 && (pixels.size(2) != image_ || pixels.size(3) != image_)) {
      throw ArgumentError("pixel_values are " + std::to_string(pixels.size(2)) + "x" + std::to_string(pixels.size(3)) +
                          " but the model takes " + std::to_string(image_) + "x" + std::to_string(image_) + " images");
    }
    at::Tensor x = proj->forward(pixels);
    const int64_t B = x.size(0);
    if (noEmbedClass_) {
      x = x + pos;
      if (classToken_) x = at::cat({cls.expand({B, -1, -1}), x}, 1);
      return x;
    }
    if (classToken_) x = at::cat({cls.expand({B, -1, -1}), x}, 1);
    return x + pos;
  }

  at::Tensor cls, pos;
  std::shared_ptr<modules::PatchConv> proj;

 protected:
  void initialize(double std, at::Generator& generator) override {
    modules::truncNormal(pos, std, generator);
    if (cls.defined()) modules::truncNormal(cls, std, generator);
  }

 private:
  int64_t image_;
  bool classToken_, noEmbedClass_;
};

class VitModel : public Model {
 public:
  VitModel(const Spec& s, const Init& init) : Model(s.string("layout") == "timm" ? "VisionTransformer" : "ViTForImageClassification", "vit", Part::Vision) {
    hf_ = s.string("layout") == "hf";
    const std::string prefix = hf_ ? s.string("prefix", "") : "";
    dim_ = s.integer("hiddenSize");
    pooling_ = s.string("pooling", "cls");
    finalNorm_ = s.string("finalNorm", "norm");
    classToken_ = s.boolean("classToken", true);
    numLabels_ = s.integer("numLabels", 0);
    problemType_ = s.string("problemType", "");
    headDropout_ = s.number("headDropout", 0.0);
    if (pooling_ == "cls" && !classToken_) throw ArgumentError("vit spec: cls pooling needs a class token");

    embeddings_ = addChild(modules::Module::join(prefix, hf_ ? "embeddings" : ""),
                           std::make_shared<VitEmbeddings>(hf_, dim_, s.integer("numChannels", 3), s.integer("patchSize"), s.integer("imageSize"),
                                                           classToken_, s.boolean("noEmbedClass", false), !s.boolean("preNorm", false), init));
    const double eps = s.number("layerNormEps");
    if (s.boolean("preNorm", false)) normPre_ = addChild("norm_pre", std::make_shared<modules::LayerNorm>(dim_, eps, Part::Vision, init));

    EncoderBlockConfig block;
    block.dim = dim_;
    block.heads = s.integer("numHeads");
    block.mlpDim = s.integer("intermediateSize");
    block.eps = eps;
    block.activation = modules::parseActivation(s.string("hiddenAct", "gelu"));
    block.qkvBias = s.boolean("qkvBias", true);
    block.fusedQkv = !hf_;
    block.layerScale = s.boolean("layerScale", false);
    block.attentionDropout = s.number("attentionDropout", 0.0);
    if (hf_) block.hiddenDropout = s.number("hiddenDropout", 0.0);
    else block.mlpDropout = s.number("hiddenDropout", 0.0);
    const int64_t layers = s.integer("numLayers");
    const double dropPathRate = s.number("dropPath", 0.0);
    const std::string blocksPath = hf_ ? modules::Module::join(prefix, "encoder.layer") : "blocks";
    for (int64_t i = 0; i < layers; ++i) {
      // timm's stochastic depth decay rule: rates rise linearly from 0 to drop_path_rate.
      block.dropPath = layers > 1 ? dropPathRate * static_cast<double>(i) / static_cast<double>(layers - 1) : dropPathRate;
      blocks_.push_back(addChild(blocksPath + "." + std::to_string(i),
                                 std::make_shared<EncoderBlock>(block, hf_ ? EncoderBlockNames::hfVit() : EncoderBlockNames::timm(), init,
                                                                hf_ ? "ViTLayer" : "Block")));
    }
    if (finalNorm_ == "norm") norm_ = addChild(hf_ ? modules::Module::join(prefix, "layernorm") : "norm", std::make_shared<modules::LayerNorm>(dim_, eps, Part::Vision, init));
    else if (finalNorm_ == "fc_norm") norm_ = addChild("fc_norm", std::make_shared<modules::LayerNorm>(dim_, eps, Part::Head, init));
    else if (finalNorm_ != "none") throw ArgumentError("vit spec: finalNorm must be 'norm', 'fc_norm' or 'none'");
    if (hf_ && s.boolean("hfPooler", false)) {
      pooler_ = addChild(modules::Module::join(prefix, "pooler.dense"),
                         std::make_shared<modules::Linear>(dim_, s.integer("poolerOutputSize", dim_), true, Kind::Other, Part::Vision, init));
      poolerAct_ = modules::parseActivation(s.string("poolerAct", "tanh"));
    }
    ignorePooler_ = hf_ && !pooler_ ? modules::Module::join(prefix, "pooler.dense") + "." : "";
    if (numLabels_ > 0) head_ = addChild(hf_ ? "classifier" : "head", std::make_shared<modules::Linear>(dim_, numLabels_, true, Kind::Head, Part::Head, init));
  }

  bool ignoresKey(const std::string& name) const override { return !ignorePooler_.empty() && name.rfind(ignorePooler_, 0) == 0; }

  TensorMap forward(const TensorMap& batch, const ForwardOptions& options) override {
    at::Tensor pixels = requireTensor(batch, "pixel_values", "vit");
    TensorMap out;
    at::Tensor h = embeddings_->forward(pixels);
    if (normPre_) h = normPre_->forward(h);
    if (options.outputHiddenStates) out["hidden_states.0"] = h;
    for (size_t i = 0; i < blocks_.size(); ++i) {
      auto& block = *blocks_[i];
      h = modules::runLayer(block, h, [&block](const at::Tensor& x) { return block.forward(x); });
      if (options.outputHiddenStates) out["hidden_states." + std::to_string(i + 1)] = h;
    }
    if (finalNorm_ == "norm") h = norm_->forward(h);
    out["last_hidden_state"] = h;

    at::Tensor pooled = pool(h);
    if (finalNorm_ == "fc_norm") pooled = norm_->forward(pooled);
    if (pooler_) out["pooler_output"] = modules::activate(pooler_->forward(h.select(1, 0)), poolerAct_);
    else out["pooler_output"] = pooled;
    if (head_) {
      at::Tensor logits = head_->forward(modules::dropout(pooled, headDropout_, training_));
      out["logits"] = logits;
      at::Tensor labels = batchTensor(batch, "labels");
      if (labels.defined()) out["loss"] = classificationLoss(logits, labels, problemType_, numLabels_);
    }
    return out;
  }

 private:
  at::Tensor pool(const at::Tensor& h) const {
    const int64_t prefixTokens = classToken_ ? 1 : 0;
    if (pooling_ == "cls") return h.select(1, 0);
    at::Tensor patches = h.narrow(1, prefixTokens, h.size(1) - prefixTokens);
    if (pooling_ == "avg") return patches.mean(1);
    if (pooling_ == "max") return patches.amax(1);
    if (pooling_ == "avgmax") return 0.5 * (patches.amax(1) + patches.mean(1));
    throw ArgumentError("vit spec: pooling must be 'cls', 'avg', 'max' or 'avgmax'");
  }

  bool hf_ = true;
  int64_t dim_ = 0;
  std::string pooling_, finalNorm_, problemType_, ignorePooler_;
  bool classToken_ = true;
  int64_t numLabels_ = 0;
  double headDropout_ = 0;
  std::shared_ptr<VitEmbeddings> embeddings_;
  std::shared_ptr<modules::LayerNorm> normPre_, norm_;
  std::vector<std::shared_ptr<EncoderBlock>> blocks_;
  std::shared_ptr<modules::Linear> pooler_, head_;
  modules::Activation poolerAct_ = modules::Activation::Tanh;
};

}  // namespace

MEDTUNE_MODEL_FAMILY(vit, "vit", [](const Spec& spec, const Init& init) -> std::shared_ptr<Model> { return std::make_shared<VitModel>(spec, init); });

}  // namespace medtune::models
