// BLIP: a ViT image encoder, a BERT text encoder that cross-attends the image (VQA), and a BERT
// decoder with an LM head that cross-attends the question's states (VQA) or the image
// (captioning, report generation). Two checkpoint layouts of the same modules:
//  - transformers' BlipForQuestionAnswering / BlipForConditionalGeneration:
//      vision_model.{embeddings.{class_embedding, position_embedding, patch_embedding},
//      encoder.layers.N.{layer_norm1, self_attn.qkv, self_attn.projection, layer_norm2, mlp.fc1,
//      mlp.fc2}, post_layernorm}, text_encoder.*, text_decoder.{bert.*, cls.*}
//  - Salesforce BLIP's own (BLIP_VQA / BLIP_Decoder, and MISS, which is built on it):
//      visual_encoder.{cls_token, pos_embed, patch_embed.proj, blocks.N.{norm1, attn.qkv,
//      attn.proj, norm2, mlp.fc1, mlp.fc2}, norm}, text_encoder.*, text_decoder.{bert.*, cls.*}
// The decoder's loss is BLIP's (blip_vqa.py / med.py): label-smoothed cross-entropy on the
// shifted answer tokens, summed per answer and averaged over questions ("blip"), or transformers'
// mean over tokens ("transformers"). Generation runs through beam_search.h with cached keys and
// values; like both BLIP and transformers, the decoder then attends every question position.
#include <ATen/ATen.h>

#include "common/errors.h"
#include "models/beam_search.h"
#include "models/bert.h"
#include "models/encoder_block.h"
#include "models/losses.h"
#include "models/model.h"
#include "models/vit_embeddings.h"

namespace medtune::models {

namespace {

using modules::Init;
using modules::Kind;
using modules::Part;

// The vision tower: embeddings, pre-norm blocks, final LayerNorm (post_layernorm / norm).
class BlipVision : public modules::Module {
 public:
  BlipVision(const Spec& s, bool hf, const Init& init) : Module(hf ? "BlipVisionModel" : "VisionTransformer", Kind::Other, Part::Vision) {
    const int64_t dim = s.integer("hiddenSize");
    VitEmbeddingConfig embed;
    embed.dim = dim;
    embed.patch = s.integer("patchSize");
    embed.image = s.integer("imageSize");
    embeddings_ = addChild(hf ? "embeddings" : "", std::make_shared<VitEmbeddings>(embed, hf ? VitEmbeddingNames::hfBlip() : VitEmbeddingNames::timm(), init));
    EncoderBlockConfig block;
    block.dim = dim;
    block.heads = s.integer("numHeads");
    block.mlpDim = s.integer("intermediateSize");
    block.eps = s.number("layerNormEps");
    block.activation = modules::parseActivation(s.string("hiddenAct", "gelu"));
    block.fusedQkv = true;
    block.attentionDropout = s.number("attentionDropout", 0.0);
    const int64_t layers = s.integer("numLayers");
    const double dropPath = s.number("dropPath", 0.0);
    for (int64_t i = 0; i < layers; ++i) {
      // BLIP's ViT: stochastic depth rising linearly from 0 to drop_path_rate over the blocks.
      block.dropPath = layers > 1 ? dropPath * static_cast<double>(i) / static_cast<double>(layers - 1) : dropPath;
      blocks_.push_back(addChild((hf ? "encoder.layers." : "blocks.") + std::to_string(i),
                                 std::make_shared<EncoderBlock>(block, hf ? EncoderBlockNames::hfBlip() : EncoderBlockNames::timm(), init,
                                                                hf ? "BlipEncoderLayer" : "Block")));
    }
    norm_ = addChild(hf ? "post_layernorm" : "norm", std::make_shared<modules::LayerNorm>(dim, block.eps, Part::Vision, init));
  }

  at::Tensor forward(const at::Tensor& pixels, TensorMap* hiddenStates) const {
    at::Tensor h = embeddings_->forward(pixels);
    if (hiddenStates) (*hiddenStates)["hidden_states.0"] = h;
    for (size_t i = 0; i < blocks_.size(); ++i) {
      auto& block = *blocks_[i];
      h = modules::runLayer(block, h, [&block](const at::Tensor& x) { return block.forward(x); });
      if (hiddenStates) (*hiddenStates)["hidden_states." + std::to_string(i + 1)] = h;
    }
    return norm_->forward(h);
  }

 private:
  std::shared_ptr<VitEmbeddings> embeddings_;
  std::vector<std::shared_ptr<EncoderBlock>> blocks_;
  std::shared_ptr<modules::LayerNorm> norm_;
};

// The decoder: BertModel ("bert") + LM head ("cls").
class BlipTextDecoder : public modules::Module {
 public:
  BlipTextDecoder(const BertConfig& config, bool tied, const Init& init) : Module("BertLMHeadModel", Kind::Other, Part::Decoder) {
    bert = addChild("bert", std::make_shared<BertModel>(config, init));
    head = addChild("cls", std::make_shared<BertLMHead>(config, *bert, tied, init));
  }
  std::shared_ptr<BertModel> bert;
  std::shared_ptr<BertLMHead> head;
};

class BlipModel;

// Decoding with cached keys/values: the first call runs the prompt, later ones the newest token.
class BlipDecodingSession : public DecodingSession {
 public:
  BlipDecodingSession(const BlipTextDecoder& decoder, at::Tensor context) : decoder_(decoder), context_(std::move(context)), cache_(decoder.bert->newCache()) {}

  at::Tensor nextLogits(const at::Tensor& tokens) override {
    BertInput in;
    in.inputIds = cache_.length == 0 ? tokens : tokens.narrow(1, tokens.size(1) - 1, 1);
    in.context = context_;
    in.causal = true;
    in.cache = &cache_;
    at::Tensor h = decoder_.bert->forward(in);
    return decoder_.head->forward(h.narrow(1, h.size(1) - 1, 1)).squeeze(1);
  }

  void reorder(const at::Tensor& index) override { cache_.reorder(index); }

 private:
  const BlipTextDecoder& decoder_;
  at::Tensor context_;
  BertCache cache_;
};

class BlipModel : public Model, public ConditionalGenerator {
 public:
  BlipModel(const Spec& s, const Init& init) : Model(typeNameOf(s), "blip", Part::Vision) {
    hf_ = s.string("layout") == "hf";
    vqa_ = s.string("task") == "vqa";
    labelSmoothing_ = s.number("labelSmoothing", 0.0);
    blipLoss_ = s.string("decoderLoss", hf_ ? "transformers" : "blip") == "blip";
    bos_ = s.integer("bosTokenId");
    pad_ = s.integer("padTokenId");
    const Spec& text = s.child("text");
    vision_ = addChild(hf_ ? "vision_model" : "visual_encoder", std::make_shared<BlipVision>(s.child("vision"), hf_, init));
    BertConfig encoder = BertConfig::fromSpec(text, Part::Language);
    encoder.encoderWidth = s.child("vision").integer("hiddenSize");
    if (vqa_) textEncoder_ = addChild("text_encoder", std::make_shared<BertModel>(encoder, init));
    // The decoder cross-attends the question's states (VQA) or the image (captioning); BLIP's
    // configuration gives both the vision width.
    BertConfig decoder = BertConfig::fromSpec(text, Part::Decoder);
    decoder.encoderWidth = vqa_ ? encoder.hiddenSize : encoder.encoderWidth;
    decoderWidth_ = decoder.encoderWidth;
    decoder_ = addChild("text_decoder", std::make_shared<BlipTextDecoder>(decoder, s.boolean("tieWordEmbeddings", true), init));
  }

  bool ignoresKey(const std::string& name) const override {
    // BERT's position_ids buffer, saved by older transformers and by BLIP's med.py.
    static const std::string buffer = ".embeddings.position_ids";
    return name.size() > buffer.size() && name.compare(name.size() - buffer.size(), buffer.size(), buffer) == 0;
  }

  bool isTiedKey(const std::string& name) const override {
    static const std::string prefix = "text_decoder.cls.";
    return name.rfind(prefix, 0) == 0 && decoder_->head->isTiedKey(name.substr(prefix.size()));
  }

  TensorMap forward(const TensorMap& batch, const ForwardOptions& options) override {
    TensorMap out;
    at::Tensor image = vision_->forward(requireTensor(batch, "pixel_values", "blip"), options.outputHiddenStates ? &out : nullptr);
    out["image_embeds"] = image;
    out["last_hidden_state"] = image;
    Condition c = condition(batch, image, out);

    at::Tensor labels = batchTensor(batch, "labels");
    at::Tensor decoderIds = batchTensor(batch, "decoder_input_ids");
    at::Tensor decoderMask = batchTensor(batch, "decoder_attention_mask");
    if (!decoderIds.defined() && !vqa_ && batch.count("input_ids")) {
      // BlipForConditionalGeneration names the decoder's tokens input_ids / attention_mask.
      decoderIds = batchTensor(batch, "input_ids");
      decoderMask = batchTensor(batch, "attention_mask");
    }
    if (!decoderIds.defined() && labels.defined()) decoderIds = labels.masked_fill(labels == kIgnoreIndex, pad_);
    if (!decoderIds.defined()) {
      throw ArgumentError("forward(): the BLIP model needs 'labels' or 'decoder_input_ids' (the answer / report tokens starting with the BOS token)");
    }
    BertInput in;
    in.inputIds = decoderIds;
    in.attentionMask = decoderMask;
    in.context = c.states;
    in.contextMask = c.mask;
    in.causal = true;
    at::Tensor logits = decoder_->head->forward(decoder_->bert->forward(in));
    out["logits"] = logits;
    if (labels.defined()) out["loss"] = loss(logits, labels, c.question, batchTensor(batch, "num_items_in_batch"));
    return out;
  }

  std::unique_ptr<DecodingSession> startDecoding(const TensorMap& batch, int64_t rows, at::Tensor& promptIds) override {
    at::NoGradGuard noGrad;
    TensorMap unused;
    at::Tensor image = vision_->forward(requireTensor(batch, "pixel_values", "blip"), nullptr);
    Condition c = condition(batch, image, unused);
    const int64_t B = image.size(0);
    promptIds = batchTensor(batch, "decoder_input_ids");
    if (!promptIds.defined() && !vqa_ && batch.count("input_ids")) {
      // BlipForConditionalGeneration.generate: the tokenized prompt with BOS for [CLS], its [SEP] dropped.
      at::Tensor ids = batchTensor(batch, "input_ids").to(at::kLong).clone();
      ids.select(1, 0).fill_(bos_);
      promptIds = ids.narrow(1, 0, ids.size(1) - 1);
    }
    if (!promptIds.defined()) promptIds = at::full({B, 1}, bos_, at::TensorOptions().dtype(at::kLong).device(image.device()));
    promptIds = promptIds.to(image.device()).to(at::kLong);
    if (promptIds.size(0) != B) throw ArgumentError("generate(): the prompt ids have batch size " + std::to_string(promptIds.size(0)) + ", the images " + std::to_string(B));
    // Both BLIP and transformers let the decoder attend every question position when generating.
    return std::make_unique<BlipDecodingSession>(*decoder_, c.states.repeat_interleave(rows, 0));
  }

 private:
  static std::string typeNameOf(const Spec& s) {
    const bool hf = s.string("layout") == "hf", vqa = s.string("task") == "vqa";
    return hf ? (vqa ? "BlipForQuestionAnswering" : "BlipForConditionalGeneration") : (vqa ? "BLIP_VQA" : "BLIP_Decoder");
  }

  struct Condition {
    at::Tensor states;  // what the decoder cross-attends
    at::Tensor mask;    // (B, T) 0/1 or undefined
    bool question = false;
  };

  // The decoder's condition: the question encoded against the image (VQA, when the batch has
  // input_ids), or the image itself (captioning form: report generation).
  Condition condition(const TensorMap& batch, const at::Tensor& image, TensorMap& out) const {
    at::Tensor question = vqa_ ? batchTensor(batch, "input_ids") : at::Tensor();
    if (!question.defined()) {
      if (image.size(-1) != decoderWidth_) {
        throw ArgumentError("this BLIP model's decoder reads " + std::to_string(decoderWidth_) + "-wide states but its image embeddings are " +
                            std::to_string(image.size(-1)) + " wide, so it cannot decode from the image alone; give the question as input_ids");
      }
      return {image, at::Tensor(), false};
    }
    BertInput in;
    in.inputIds = question;
    in.attentionMask = batchTensor(batch, "attention_mask");
    in.context = image;
    at::Tensor states = textEncoder_->forward(in);
    out["question_embeds"] = states;
    return {states, in.attentionMask, true};
  }

  // `numItems` (the trainer's supervised-token count of an accumulation window) turns a token mean
  // into sum / numItems, as transformers' losses take num_items_in_batch.
  at::Tensor loss(const at::Tensor& logits, const at::Tensor& labels, bool question, const at::Tensor& numItems) const {
    if (labels.dim() != 2 || labels.size(0) != logits.size(0) || labels.size(1) != logits.size(1)) {
      throw ArgumentError("labels must have shape (batch, answer length) = " + c10::str(logits.sizes().slice(0, 2)) + ", got " + c10::str(labels.sizes()));
    }
    const int64_t B = logits.size(0), T = logits.size(1);
    at::Tensor scores = logits.narrow(1, 0, T - 1).to(at::kFloat).reshape({-1, logits.size(-1)});
    at::Tensor targets = labels.narrow(1, 1, T - 1).to(logits.device()).to(at::kLong).reshape({-1});
    if (question && blipLoss_) {
      // blip_vqa.py: per-answer sums (reduction='none' then .sum(1)), summed and divided by the
      // number of questions.
      if (numItems.defined()) {
        throw ArgumentError("BLIP's VQA loss is a mean over questions, not tokens: accumulate it with per-batch loss scaling");
      }
      at::Tensor perToken = at::cross_entropy_loss(scores, targets, std::nullopt, at::Reduction::None, kIgnoreIndex, labelSmoothing_);
      return perToken.view({B, T - 1}).sum(1).sum() / static_cast<double>(B);
    }
    if (numItems.defined()) {
      at::Tensor sum = at::cross_entropy_loss(scores, targets, std::nullopt, at::Reduction::Sum, kIgnoreIndex, labelSmoothing_);
      return sum / numItems.to(sum.device());
    }
    return at::cross_entropy_loss(scores, targets, std::nullopt, at::Reduction::Mean, kIgnoreIndex, labelSmoothing_);
  }

  bool hf_ = true, vqa_ = true, blipLoss_ = false;
  double labelSmoothing_ = 0;
  int64_t bos_ = 0, pad_ = 0, decoderWidth_ = 0;
  std::shared_ptr<BlipVision> vision_;
  std::shared_ptr<BertModel> textEncoder_;
  std::shared_ptr<BlipTextDecoder> decoder_;
};

}  // namespace

MEDTUNE_MODEL_FAMILY(blip, "blip", [](const Spec& spec, const Init& init) -> std::shared_ptr<Model> { return std::make_shared<BlipModel>(spec, init); });

}  // namespace medtune::models
