#include "models/llama.h"

#include <ATen/ATen.h>

#include "common/errors.h"
#include "models/chunked_loss.h"
#include "models/losses.h"
#include "runtime/step_stage.h"

namespace medtune::models {

using modules::Init;
using modules::Kind;
using modules::Linear;
using modules::Part;

at::Tensor positionsFromMask(const at::Tensor& mask) {
  at::Tensor m = mask.to(at::kLong);
  return (m.cumsum(-1) - 1).masked_fill(m == 0, 0);
}

// ---- attention ---------------------------------------------------------------------------------

LlamaAttention::LlamaAttention(const Spec& s, const Init& init) : Module("LlamaAttention", Kind::Attention, Part::Language) {
  const int64_t hidden = s.integer("hiddenSize");
  heads_ = s.integer("numHeads");
  kvHeads_ = s.integer("numKeyValueHeads");
  headDim_ = s.integer("headDim");
  dropout_ = s.number("attentionDropout", 0.0);
  const bool bias = s.boolean("attentionBias", false);
  if (heads_ % kvHeads_ != 0) throw ArgumentError("llama spec: num_attention_heads must be a multiple of num_key_value_heads");
  q_ = addChild("q_proj", std::make_shared<Linear>(hidden, heads_ * headDim_, bias, Kind::Attention, Part::Language, init));
  k_ = addChild("k_proj", std::make_shared<Linear>(hidden, kvHeads_ * headDim_, bias, Kind::Attention, Part::Language, init));
  v_ = addChild("v_proj", std::make_shared<Linear>(hidden, kvHeads_ * headDim_, bias, Kind::Attention, Part::Language, init));
  o_ = addChild("o_proj", std::make_shared<Linear>(heads_ * headDim_, hidden, bias, Kind::Attention, Part::Language, init));
}

at::Tensor LlamaAttention::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask, bool causal,
                                   KVCache* cache, size_t layer) const {
  const int64_t B = x.size(0), S = x.size(1);
  at::Tensor q = q_->forward(x).view({B, S, heads_, headDim_}).transpose(1, 2);
  at::Tensor k = k_->forward(x).view({B, S, kvHeads_, headDim_}).transpose(1, 2);
  at::Tensor v = v_->forward(x).view({B, S, kvHeads_, headDim_}).transpose(1, 2);
  q = applyRotary(q, cos, sin);
  k = applyRotary(k, cos, sin);
  if (cache) {
    // Post-RoPE keys, as transformers caches them.
    const int64_t past = cache->length;
    if (past + S > cache->capacity) throw ArgumentError("KV cache overflow: " + std::to_string(past + S) + " > " + std::to_string(cache->capacity));
    cache->keys[layer].narrow(2, past, S).copy_(k);
    cache->values[layer].narrow(2, past, S).copy_(v);
    k = cache->keys[layer].narrow(2, 0, past + S);
    v = cache->values[layer].narrow(2, 0, past + S);
  }
  const double p = training_ ? dropout_ : 0.0;
  at::Tensor o = at::scaled_dot_product_attention(q, k, v, mask.defined() ? std::optional<at::Tensor>(mask) : std::nullopt, p, causal,
                                                   std::nullopt, heads_ != kvHeads_);
  return o_->forward(o.transpose(1, 2).reshape({B, S, heads_ * headDim_}));
}

// ---- MLP ---------------------------------------------------------------------------------------

LlamaMLP::LlamaMLP(const Spec& s, const Init& init) : Module("LlamaMLP", Kind::Mlp, Part::Language) {
  const int64_t hidden = s.integer("hiddenSize"), inner = s.integer("intermediateSize");
  const bool bias = s.boolean("mlpBias", false);
  act_ = modules::parseActivation(s.string("hiddenAct", "silu"));
  gate_ = addChild("gate_proj", std::make_shared<Linear>(hidden, inner, bias, Kind::Mlp, Part::Language, init));
  up_ = addChild("up_proj", std::make_shared<Linear>(hidden, inner, bias, Kind::Mlp, Part::Language, init));
  down_ = addChild("down_proj", std::make_shared<Linear>(inner, hidden, bias, Kind::Mlp, Part::Language, init));
}

at::Tensor LlamaMLP::forward(const at::Tensor& x) const { return down_->forward(modules::activate(gate_->forward(x), act_) * up_->forward(x)); }

// ---- layer -------------------------------------------------------------------------------------

LlamaDecoderLayer::LlamaDecoderLayer(const Spec& s, const Init& init, size_t index)
    : Module(s.string("modelType", "llama") == "mistral" ? "MistralDecoderLayer" : "LlamaDecoderLayer", Kind::Other, Part::Language), index_(index) {
  const int64_t hidden = s.integer("hiddenSize");
  const double eps = s.number("rmsNormEps");
  attention_ = addChild("self_attn", std::make_shared<LlamaAttention>(s, init));
  mlp_ = addChild("mlp", std::make_shared<LlamaMLP>(s, init));
  inputNorm_ = addChild("input_layernorm", std::make_shared<modules::RMSNorm>(hidden, eps, Part::Language, init));
  postNorm_ = addChild("post_attention_layernorm", std::make_shared<modules::RMSNorm>(hidden, eps, Part::Language, init));
}

at::Tensor LlamaDecoderLayer::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask, bool causal,
                                      KVCache* cache) const {
  at::Tensor h = x + attention_->forward(inputNorm_->forward(x), cos, sin, mask, causal, cache, index_);
  return h + mlp_->forward(postNorm_->forward(h));
}

// ---- decoder -----------------------------------------------------------------------------------

LlamaDecoder::LlamaDecoder(const Spec& s, const Init& init)
    : Module(s.string("modelType", "llama") == "mistral" ? "MistralModel" : "LlamaModel", Kind::Other, Part::Language) {
  vocab_ = s.integer("vocabSize");
  heads_ = s.integer("numHeads");
  kvHeads_ = s.integer("numKeyValueHeads");
  headDim_ = s.integer("headDim");
  slidingWindow_ = s.integer("slidingWindow", 0);
  const int64_t hidden = s.integer("hiddenSize");
  embed_ = addChild("embed_tokens", std::make_shared<modules::Embedding>(vocab_, hidden, Kind::Embedding, Part::Language, init));
  const int64_t n = s.integer("numLayers");
  for (int64_t i = 0; i < n; ++i) layers_.push_back(addChild("layers." + std::to_string(i), std::make_shared<LlamaDecoderLayer>(s, init, static_cast<size_t>(i))));
  norm_ = addChild("norm", std::make_shared<modules::RMSNorm>(hidden, s.number("rmsNormEps"), Part::Language, init));
  rope_ = std::make_unique<Rope>(RopeConfig::fromSpec(s.child("rope"), headDim_, s.integer("maxPositionEmbeddings")));
}

at::Tensor LlamaDecoder::embed(const at::Tensor& ids) const {
  if (ids.numel() > 0) {
    // An id outside the vocabulary would be an opaque index error deep in libtorch.
    int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
    if (lo < 0 || hi >= vocab_) {
      throw ArgumentError("input_ids must lie in [0, " + std::to_string(vocab_) + "), got values from " + std::to_string(lo) + " to " + std::to_string(hi));
    }
  }
  return embed_->forward(ids);
}

KVCache LlamaDecoder::newCache(int64_t batch, int64_t capacity) const {
  KVCache cache;
  cache.capacity = capacity;
  auto options = embed_->weight.options().requires_grad(false);
  for (size_t i = 0; i < layers_.size(); ++i) {
    cache.keys.push_back(at::empty({batch, kvHeads_, capacity, headDim_}, options));
    cache.values.push_back(at::empty({batch, kvHeads_, capacity, headDim_}, options));
  }
  return cache;
}

at::Tensor LlamaDecoder::buildMask(const at::Tensor& attentionMask, int64_t past, int64_t S, bool& causal) const {
  const int64_t L = past + S;
  const bool windowMatters = slidingWindow_ > 0 && L > slidingWindow_;
  bool padded = false;
  if (attentionMask.defined()) {
    if (attentionMask.dim() != 2 || attentionMask.size(1) != L) {
      throw ArgumentError("attention_mask must have shape (batch, " + std::to_string(L) + "), got " + c10::str(attentionMask.sizes()));
    }
    padded = !attentionMask.to(at::kBool).all().item<bool>();
  }
  causal = false;
  if (!padded && !windowMatters) {
    if (S == 1) return at::Tensor();        // one new query attends to the whole cache
    if (past == 0) {
      causal = true;                        // plain causal attention: flash/efficient kernels apply
      return at::Tensor();
    }
  }
  auto device = embed_->weight.device();
  at::Tensor q = at::arange(past, L, at::TensorOptions().dtype(at::kLong).device(device)).unsqueeze(1);  // (S, 1)
  at::Tensor k = at::arange(0, L, at::TensorOptions().dtype(at::kLong).device(device)).unsqueeze(0);     // (1, L)
  at::Tensor allowed = k <= q;
  if (slidingWindow_ > 0) allowed = allowed.logical_and(k > q - slidingWindow_);
  at::Tensor mask = allowed.unsqueeze(0).unsqueeze(0);  // (1, 1, S, L)
  if (padded) {
    mask = mask.logical_and(attentionMask.to(at::kBool).unsqueeze(1).unsqueeze(1));
    // A padding query (left padding) would attend to nothing, and a softmax over nothing is NaN
    // that then leaks through the values; let it see itself. Real tokens never see padding.
    mask = mask.logical_or((k == q).unsqueeze(0).unsqueeze(0));
  }
  return mask;
}

at::Tensor LlamaDecoder::forward(const DecoderInput& in) {
  const int64_t B = in.embeds.size(0), S = in.embeds.size(1);
  const int64_t past = in.cache ? in.cache->length : 0;
  at::Tensor positions = in.positionIds;
  if (!positions.defined()) {
    positions = at::arange(past, past + S, at::TensorOptions().dtype(at::kLong).device(in.embeds.device())).unsqueeze(0).expand({B, S});
  }
  bool causal = false;
  at::Tensor mask = buildMask(in.attentionMask, past, S, causal);
  at::Tensor cos, sin;
  std::tie(cos, sin) = rope_->cosSin(positions, in.embeds.scalar_type());
  at::Tensor h = in.embeds;
  if (in.hiddenStates) in.hiddenStates->push_back(h);
  for (auto& layer : layers_) {
    const LlamaDecoderLayer* l = layer.get();
    KVCache* cache = in.cache;
    // By value: a checkpointed layer runs this again in the backward pass.
    h = modules::runLayer(*layer, h, [l, cos, sin, mask, causal, cache](const at::Tensor& x) { return l->forward(x, cos, sin, mask, causal, cache); });
    if (in.hiddenStates) in.hiddenStates->push_back(h);
  }
  if (in.cache) in.cache->length = past + S;
  h = norm_->forward(h);
  // transformers' hidden_states end with the normed output (== last_hidden_state).
  if (in.hiddenStates) in.hiddenStates->back() = h;
  return h;
}

// ---- language model (decoder + head) -----------------------------------------------------------

LanguageModel::LanguageModel(modules::Module& parent, const Spec& s, const Init& init) {
  decoder = parent.addChild(s.string("decoderPrefix", "model"), std::make_shared<LlamaDecoder>(s, init));
  tied_ = s.boolean("tieWordEmbeddings", false);
  headName_ = s.string("lmHead", "lm_head");
  if (!tied_) {
    head_ = parent.addChild(headName_, std::make_shared<Linear>(s.integer("hiddenSize"), s.integer("vocabSize"), false, Kind::Head, Part::Language, init));
  }
}

at::Tensor LanguageModel::logits(const at::Tensor& hidden) const {
  return tied_ ? at::linear(hidden, decoder->embedWeight()) : head_->forward(hidden);
}

void LanguageModel::headAndLoss(const at::Tensor& hidden, const TensorMap& batch, const at::Tensor& labels, TensorMap& out, bool wantLogits) const {
  stage::begin(stage::Stage::Loss);
  at::Tensor n = batchTensor(batch, "num_items_in_batch");
  const std::optional<at::Tensor> numItems = n.defined() ? std::optional<at::Tensor>(n) : std::nullopt;
  const bool plainHead = tied_ || !head_->adapter() || head_->merged();
  if (!wantLogits && labels.defined() && lossChunk_ > 0 && plainHead) {
    out["loss"] = chunkedCausalLmLoss(hidden, tied_ ? decoder->embedWeight() : head_->weight, labels, numItems, lossChunk_);
    return;
  }
  at::Tensor logitsOut = logits(hidden);
  out["logits"] = logitsOut;
  if (labels.defined()) out["loss"] = causalLmLoss(logitsOut, labels, numItems);
}

// ---- LlamaForCausalLM / MistralForCausalLM ------------------------------------------------------

namespace {

class LlamaForCausalLM : public Model, public CausalLM {
 public:
  LlamaForCausalLM(const Spec& s, const Init& init)
      : Model(s.string("modelType", "llama") == "mistral" ? "MistralForCausalLM" : "LlamaForCausalLM", "llama", Part::Language), lm_(*this, s, init) {}

  TensorMap forward(const TensorMap& batch, const ForwardOptions& options) override {
    at::Tensor embeds = batchTensor(batch, "inputs_embeds");
    if (!embeds.defined()) embeds = lm_.decoder->embed(requireTensor(batch, "input_ids", "causal LM"));
    DecoderInput in;
    in.embeds = embeds;
    in.attentionMask = batchTensor(batch, "attention_mask");
    in.positionIds = batchTensor(batch, "position_ids");
    std::vector<at::Tensor> hidden;
    if (options.outputHiddenStates) in.hiddenStates = &hidden;
    TensorMap out;
    at::Tensor h = lm_.decoder->forward(in);
    out["last_hidden_state"] = h;
    for (size_t i = 0; i < hidden.size(); ++i) out["hidden_states." + std::to_string(i)] = hidden[i];
    lm_.headAndLoss(h, batch, batchTensor(batch, "labels"), out, options.logits);
    return out;
  }

  CausalLM* causalLM() override { return this; }
  LanguageModel& languageModel() override { return lm_; }
  bool isTiedKey(const std::string& name) const override { return lm_.isTiedKey(name); }

  Prompt preparePrompt(const TensorMap& batch) override {
    at::Tensor ids = requireTensor(batch, "input_ids", "causal LM");
    Prompt p;
    p.embeds = lm_.decoder->embed(ids);
    p.attentionMask = batchTensor(batch, "attention_mask");
    if (!p.attentionMask.defined()) p.attentionMask = at::ones_like(ids, ids.options().dtype(at::kLong));
    p.positionIds = positionsFromMask(p.attentionMask);
    return p;
  }

 private:
  LanguageModel lm_;
};

}  // namespace

MEDTUNE_MODEL_FAMILY(llama, "llama", [](const Spec& spec, const Init& init) -> std::shared_ptr<Model> {
  return std::make_shared<LlamaForCausalLM>(spec, init);
});

}  // namespace medtune::models
