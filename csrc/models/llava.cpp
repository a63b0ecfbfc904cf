// LLaVA: a CLIP vision tower, a projector and a LLaMA/Mistral language model, in two layouts.
//  - llava-hf (LlavaForConditionalGeneration): the prompt holds image_seq_length image tokens per
//    image; their embeddings are replaced by the projected image features (masked_scatter).
//  - original LLaVA / LLaVA-Med (LlavaLlamaForCausalLM / LlavaMistralForCausalLM): each image is a
//    single IMAGE_TOKEN_INDEX (-200) placeholder that expands into its features, as
//    prepare_inputs_labels_for_multimodal does: padding removed, text embedded, features
//    inserted, labels -100 there, truncated to tokenizer_model_max_length, re-padded on
//    tokenizer_padding_side.
// The checkpoint prefixes of each part come from the spec, so every key form maps to one module.
#include <ATen/ATen.h>

#include "common/errors.h"
#include "models/clip.h"
#include "models/llama.h"
#include "models/losses.h"
#include "models/model.h"

namespace medtune::models {

namespace {

using modules::Init;
using modules::Kind;
using modules::Linear;
using modules::Part;

// linear_1 -> act -> linear_2 (llava-hf), or LLaVA's nn.Sequential ("0", GELU, "2", ...), or one
// Linear ('linear' projector: names [""]).
class Projector : public modules::Module {
 public:
  Projector(const Spec& s, const Init& init) : Module("LlavaMultiModalProjector", Kind::Projector, Part::Projector) {
    const int64_t in = s.integer("inDim"), out = s.integer("outDim");
    const bool bias = s.boolean("bias", true);
    act_ = modules::parseActivation(s.string("act", "gelu"));
    std::string names = s.string("names");
    size_t start = 0;
    for (;;) {
      size_t comma = names.find(',', start);
      std::string name = names.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      linears_.push_back(addChild(name, std::make_shared<Linear>(linears_.empty() ? in : out, out, bias, Kind::Projector, Part::Projector, init)));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }

  at::Tensor forward(const at::Tensor& x) const {
    at::Tensor h = x;
    for (size_t i = 0; i < linears_.size(); ++i) {
      if (i > 0) h = modules::activate(h, act_);
      h = linears_[i]->forward(h);
    }
    return h;
  }

 private:
  modules::Activation act_;
  std::vector<std::shared_ptr<Linear>> linears_;
};

class Llava : public Model, public CausalLM {
 public:
  Llava(const Spec& s, const Init& init)
      : Model(s.string("layout") == "hf" ? "LlavaForConditionalGeneration" : "LlavaForCausalLM", "llava", Part::Language),
        original_(s.string("layout") == "original"),
        lm_(*this, s.child("language"), init) {
    const Spec& vision = s.child("vision");
    tower_ = addChild(vision.string("prefix"), std::make_shared<ClipVisionTower>(vision, init));
    projector_ = addChild(s.child("projector").string("prefix"), std::make_shared<Projector>(s.child("projector"), init));
    imageToken_ = s.integer("imageTokenIndex");
    for (int64_t layer : s.integers("visionFeatureLayers")) featureLayers_.push_back(tower_->resolveLayer(layer));
    dropCls_ = s.boolean("dropCls", true);
    leftPadding_ = s.string("paddingSide", "right") == "left";
    maxLength_ = s.integer("modelMaxLength", 0);
  }

  CausalLM* causalLM() override { return this; }
  LanguageModel& languageModel() override { return lm_; }
  bool isTiedKey(const std::string& name) const override { return lm_.isTiedKey(name); }

  // (N_images, P, D_text) projected features.
  at::Tensor imageFeatures(const at::Tensor& pixels) {
    int64_t upto = 0;
    for (int64_t l : featureLayers_) upto = std::max(upto, l);
    auto states = tower_->hiddenStates(pixels, upto);
    std::vector<at::Tensor> selected;
    for (int64_t l : featureLayers_) {
      at::Tensor h = states[static_cast<size_t>(l)];
      selected.push_back(dropCls_ ? h.narrow(1, 1, h.size(1) - 1) : h);
    }
    return projector_->forward(selected.size() == 1 ? selected[0] : at::cat(selected, -1));
  }

  TensorMap forward(const TensorMap& batch, const ForwardOptions& options) override {
    TensorMap out;
    DecoderInput in;
    at::Tensor labels = batchTensor(batch, "labels");
    at::Tensor pixels = batchTensor(batch, "pixel_values");
    at::Tensor ids = requireTensor(batch, "input_ids", "LLaVA");
    in.attentionMask = batchTensor(batch, "attention_mask");
    in.positionIds = batchTensor(batch, "position_ids");
    if (!pixels.defined()) {
      in.embeds = lm_.decoder->embed(ids);
    } else if (!original_) {
      at::Tensor features = imageFeatures(pixels);
      out["image_features"] = features;
      in.embeds = spliceHf(ids, features);
    } else {
      at::Tensor features = imageFeatures(pixels);
      out["image_features"] = features;
      Expanded e = expandOriginal(ids, in.attentionMask, labels, features, leftPadding_);
      in.embeds = e.embeds;
      labels = e.labels;
      if (in.attentionMask.defined()) {
        in.attentionMask = e.attentionMask;
        out["attention_mask"] = e.attentionMask;
      }
      // LLaVA passes per-sample positions only when the caller gave position ids.
      if (in.positionIds.defined()) in.positionIds = e.positionIds;
      if (labels.defined()) out["labels"] = labels;
    }
    std::vector<at::Tensor> hidden;
    if (options.outputHiddenStates) in.hiddenStates = &hidden;
    at::Tensor h = lm_.decoder->forward(in);
    out["last_hidden_state"] = h;
    for (size_t i = 0; i < hidden.size(); ++i) out["hidden_states." + std::to_string(i)] = hidden[i];
    lm_.headAndLoss(h, batch, labels, out, options.logits);
    return out;
  }

  Prompt preparePrompt(const TensorMap& batch) override {
    at::Tensor ids = requireTensor(batch, "input_ids", "LLaVA");
    at::Tensor mask = batchTensor(batch, "attention_mask");
    if (!mask.defined()) mask = at::ones_like(ids, ids.options().dtype(at::kLong));
    at::Tensor pixels = batchTensor(batch, "pixel_values");
    Prompt p;
    if (!pixels.defined()) {
      p.embeds = lm_.decoder->embed(ids);
      p.attentionMask = mask;
    } else if (!original_) {
      p.embeds = spliceHf(ids, imageFeatures(pixels));
      p.attentionMask = mask;
    } else {
      // Expanded prompts of different lengths are left-padded for batched decoding.
      Expanded e = expandOriginal(ids, mask, at::Tensor(), imageFeatures(pixels), true);
      p.embeds = e.embeds;
      p.attentionMask = e.attentionMask;
    }
    p.positionIds = positionsFromMask(p.attentionMask);
    return p;
  }

 private:
  at::Tensor spliceHf(const at::Tensor& ids, const at::Tensor& features) {
    at::Tensor embeds = lm_.decoder->embed(ids);
    at::Tensor mask = ids == imageToken_;
    const int64_t tokens = mask.sum().item<int64_t>();
    const int64_t featureTokens = features.size(0) * features.size(1);
    if (tokens != featureTokens) {
      throw ArgumentError("Image features and image tokens do not match: tokens: " + std::to_string(tokens) + ", features: " + std::to_string(featureTokens) +
                          " (" + std::to_string(features.size(0)) + " image(s) x " + std::to_string(features.size(1)) + "; image_token_index " +
                          std::to_string(imageToken_) + ")");
    }
    return embeds.masked_scatter(mask.unsqueeze(-1), features.to(embeds.scalar_type()));
  }

  struct Expanded {
    at::Tensor embeds, labels, attentionMask, positionIds;
  };

  Expanded expandOriginal(const at::Tensor& ids, const at::Tensor& attentionMask, const at::Tensor& labels, const at::Tensor& features, bool left) {
    const int64_t B = ids.size(0);
    at::Tensor idsCpu = ids.to(c10::kCPU).to(at::kLong);
    at::Tensor maskCpu = attentionMask.defined() ? attentionMask.to(c10::kCPU).to(at::kBool) : at::ones_like(idsCpu, idsCpu.options().dtype(at::kBool));
    at::Tensor labelsCpu = labels.defined() ? labels.to(c10::kCPU).to(at::kLong) : at::full_like(idsCpu, kIgnoreIndex);
    at::Tensor feats = features.to(lm_.decoder->embedWeight().scalar_type());
    auto device = lm_.decoder->embedWeight().device();
    std::vector<at::Tensor> rowEmbeds, rowLabels;
    int64_t image = 0;
    for (int64_t b = 0; b < B; ++b) {
      at::Tensor rowIds = idsCpu[b].masked_select(maskCpu[b]);
      at::Tensor rowLab = labelsCpu[b].masked_select(maskCpu[b]);
      const int64_t* data = rowIds.data_ptr<int64_t>();
      std::vector<int64_t> placeholders;
      for (int64_t i = 0; i < rowIds.size(0); ++i)
        if (data[i] == imageToken_) placeholders.push_back(i);
      if (image + static_cast<int64_t>(placeholders.size()) > feats.size(0)) {
        throw ArgumentError("the prompts hold more image placeholders (" + std::to_string(imageToken_) + ") than the " + std::to_string(feats.size(0)) +
                            " image(s) in pixel_values");
      }
      if (placeholders.empty()) {
        // As LLaVA does: a sample without a placeholder still consumes one image.
        rowEmbeds.push_back(lm_.decoder->embed(rowIds.to(device)));
        rowLabels.push_back(rowLab);
        ++image;
        continue;
      }
      std::vector<at::Tensor> textIds, textLabels;
      int64_t begin = 0;
      for (int64_t pos : placeholders) {
        textIds.push_back(rowIds.narrow(0, begin, pos - begin));
        textLabels.push_back(rowLab.narrow(0, begin, pos - begin));
        begin = pos + 1;
      }
      textIds.push_back(rowIds.narrow(0, begin, rowIds.size(0) - begin));
      textLabels.push_back(rowLab.narrow(0, begin, rowLab.size(0) - begin));
      std::vector<int64_t> sizes;
      for (const auto& t : textIds) sizes.push_back(t.size(0));
      std::vector<at::Tensor> textEmbeds = at::split_with_sizes(lm_.decoder->embed(at::cat(textIds).to(device)), sizes, 0);
      std::vector<at::Tensor> pieces, pieceLabels;
      for (size_t i = 0; i < textEmbeds.size(); ++i) {
        pieces.push_back(textEmbeds[i]);
        pieceLabels.push_back(textLabels[i]);
        if (i < placeholders.size()) {
          at::Tensor f = feats[image++];
          pieces.push_back(f);
          pieceLabels.push_back(at::full({f.size(0)}, kIgnoreIndex, at::kLong));
        }
      }
      rowEmbeds.push_back(at::cat(pieces));
      rowLabels.push_back(at::cat(pieceLabels));
    }
    if (maxLength_ > 0) {
      for (size_t i = 0; i < rowEmbeds.size(); ++i) {
        if (rowEmbeds[i].size(0) > maxLength_) {
          rowEmbeds[i] = rowEmbeds[i].narrow(0, 0, maxLength_);
          rowLabels[i] = rowLabels[i].narrow(0, 0, maxLength_);
        }
      }
    }
    int64_t maxLen = 0;
    for (const auto& e : rowEmbeds) maxLen = std::max(maxLen, e.size(0));
    const int64_t D = feats.size(-1);
    Expanded out;
    std::vector<at::Tensor> padded;
    at::Tensor newLabels = at::full({B, maxLen}, kIgnoreIndex, at::kLong);
    at::Tensor newMask = at::zeros({B, maxLen}, at::kLong);
    at::Tensor newPositions = at::zeros({B, maxLen}, at::kLong);
    for (int64_t b = 0; b < B; ++b) {
      const at::Tensor& e = rowEmbeds[static_cast<size_t>(b)];
      const int64_t len = e.size(0);
      at::Tensor pad = at::zeros({maxLen - len, D}, e.options());
      const int64_t start = left ? maxLen - len : 0;
      padded.push_back(left ? at::cat({pad, e}) : at::cat({e, pad}));
      if (len > 0) {
        newLabels[b].narrow(0, start, len).copy_(rowLabels[static_cast<size_t>(b)]);
        newMask[b].narrow(0, start, len).fill_(1);
        newPositions[b].narrow(0, start, len).copy_(at::arange(len, at::kLong));
      }
    }
    out.embeds = at::stack(padded);
    out.labels = labels.defined() ? newLabels.to(device) : at::Tensor();
    out.attentionMask = newMask.to(device);
    out.positionIds = newPositions.to(device);
    return out;
  }

  bool original_;
  LanguageModel lm_;
  std::shared_ptr<ClipVisionTower> tower_;
  std::shared_ptr<Projector> projector_;
  int64_t imageToken_ = 0;
  std::vector<int64_t> featureLayers_;
  bool dropCls_ = true;
  bool leftPadding_ = false;
  int64_t maxLength_ = 0;
};

}  // namespace

MEDTUNE_MODEL_FAMILY(llava, "llava", [](const Spec& spec, const Init& init) -> std::shared_ptr<Model> { return std::make_shared<Llava>(spec, init); });

}  // namespace medtune::models
