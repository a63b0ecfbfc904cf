#include "models/bert.h"

#include <ATen/ATen.h>

#include "common/errors.h"

namespace medtune::models {

using modules::Kind;
using modules::Linear;

BertConfig BertConfig::fromSpec(const Spec& s, modules::Part part) {
  BertConfig c;
  c.vocabSize = s.integer("vocabSize");
  c.hiddenSize = s.integer("hiddenSize");
  c.numLayers = s.integer("numLayers");
  c.numHeads = s.integer("numHeads");
  c.intermediateSize = s.integer("intermediateSize");
  c.maxPositions = s.integer("maxPositions");
  c.encoderWidth = s.integer("encoderWidth", 0);
  c.eps = s.number("layerNormEps");
  c.hiddenDropout = s.number("hiddenDropout", 0.0);
  c.attentionDropout = s.number("attentionDropout", 0.0);
  c.activation = modules::parseActivation(s.string("hiddenAct", "gelu"));
  c.part = part;
  if (c.hiddenSize % c.numHeads != 0) {
    throw ArgumentError(s.path() + ": hidden size " + std::to_string(c.hiddenSize) + " is not a multiple of the number of heads " +
                        std::to_string(c.numHeads));
  }
  return c;
}

void BertCache::reorder(const at::Tensor& index) {
  // Only the self-attention rows move. Cross-attention keys/values are the same for every beam of
  // one input, and beam search never moves a beam to another input.
  for (auto* list : {&keys, &values})
    for (auto& t : *list)
      if (t.defined()) t = t.index_select(0, index);
}

BertAttention::BertAttention(const BertConfig& c, bool cross, const modules::Init& init)
    : Module(cross ? "BertCrossAttention" : "BertAttention", Kind::Attention, c.part), config_(c), cross_(cross) {
  const int64_t D = c.hiddenSize;
  const int64_t kvIn = cross ? c.encoderWidth : D;
  query_ = addChild("self.query", std::make_shared<Linear>(D, D, true, Kind::Attention, c.part, init));
  key_ = addChild("self.key", std::make_shared<Linear>(kvIn, D, true, Kind::Attention, c.part, init));
  value_ = addChild("self.value", std::make_shared<Linear>(kvIn, D, true, Kind::Attention, c.part, init));
  dense_ = addChild("output.dense", std::make_shared<Linear>(D, D, true, Kind::Attention, c.part, init));
  norm_ = addChild("output.LayerNorm", std::make_shared<modules::LayerNorm>(D, c.eps, c.part, init));
}

at::Tensor BertAttention::forward(const at::Tensor& x, const at::Tensor& context, const at::Tensor& mask, bool causal, BertCache* cache,
                                  size_t layer) const {
  const int64_t B = x.size(0), S = x.size(1), H = config_.numHeads, D = config_.hiddenSize, d = D / H;
  auto heads = [&](const at::Tensor& t) { return t.view({t.size(0), t.size(1), H, d}).transpose(1, 2); };
  at::Tensor q = heads(query_->forward(x));
  at::Tensor k, v;
  if (cross_) {
    if (cache && cache->crossKeys[layer].defined()) {
      k = cache->crossKeys[layer];
      v = cache->crossValues[layer];
    } else {
      k = heads(key_->forward(context));
      v = heads(value_->forward(context));
      if (cache) {
        cache->crossKeys[layer] = k;
        cache->crossValues[layer] = v;
      }
    }
  } else {
    k = heads(key_->forward(x));
    v = heads(value_->forward(x));
    if (cache) {
      if (cache->keys[layer].defined()) {
        k = at::cat({cache->keys[layer], k}, 2);
        v = at::cat({cache->values[layer], v}, 2);
      }
      cache->keys[layer] = k;
      cache->values[layer] = v;
    }
  }
  const double p = training_ ? config_.attentionDropout : 0.0;
  at::Tensor o = at::scaled_dot_product_attention(q, k, v, mask.defined() ? std::optional<at::Tensor>(mask) : std::nullopt, p, causal);
  o = o.transpose(1, 2).reshape({B, S, D});
  at::Tensor h = modules::dropout(dense_->forward(o), config_.hiddenDropout, training_);
  return norm_->forward(h + x);
}

BertLayer::BertLayer(const BertConfig& c, const modules::Init& init, size_t index) : Module("BertLayer", Kind::Other, c.part), config_(c), index_(index) {
  attention_ = addChild("attention", std::make_shared<BertAttention>(c, false, init));
  if (c.encoderWidth > 0) crossAttention_ = addChild("crossattention", std::make_shared<BertAttention>(c, true, init));
  intermediate_ = addChild("intermediate.dense", std::make_shared<Linear>(c.hiddenSize, c.intermediateSize, true, Kind::Mlp, c.part, init));
  output_ = addChild("output.dense", std::make_shared<Linear>(c.intermediateSize, c.hiddenSize, true, Kind::Mlp, c.part, init));
  outputNorm_ = addChild("output.LayerNorm", std::make_shared<modules::LayerNorm>(c.hiddenSize, c.eps, c.part, init));
}

at::Tensor BertLayer::forward(const at::Tensor& x, const at::Tensor& selfMask, bool causal, const at::Tensor& context, const at::Tensor& contextMask,
                              BertCache* cache) const {
  at::Tensor h = attention_->forward(x, at::Tensor(), selfMask, causal, cache, index_);
  if (context.defined()) {
    if (!crossAttention_) throw ArgumentError("this text model has no cross-attention layers, so it cannot read encoder states");
    h = crossAttention_->forward(h, context, contextMask, false, cache, index_);
  }
  at::Tensor f = modules::activate(intermediate_->forward(h), config_.activation);
  f = modules::dropout(output_->forward(f), config_.hiddenDropout, training_);
  return outputNorm_->forward(f + h);
}

BertModel::BertModel(const BertConfig& c, const modules::Init& init) : Module("BertModel", Kind::Other, c.part), config_(c) {
  words_ = addChild("embeddings.word_embeddings", std::make_shared<modules::Embedding>(c.vocabSize, c.hiddenSize, Kind::Embedding, c.part, init));
  positions_ = addChild("embeddings.position_embeddings",
                        std::make_shared<modules::Embedding>(c.maxPositions, c.hiddenSize, Kind::PositionEmbedding, c.part, init));
  embedNorm_ = addChild("embeddings.LayerNorm", std::make_shared<modules::LayerNorm>(c.hiddenSize, c.eps, c.part, init));
  for (int64_t i = 0; i < c.numLayers; ++i) {
    layers_.push_back(addChild("encoder.layer." + std::to_string(i), std::make_shared<BertLayer>(c, init, static_cast<size_t>(i))));
  }
}

BertCache BertModel::newCache() const {
  BertCache cache;
  const auto n = static_cast<size_t>(config_.numLayers);
  cache.keys.resize(n);
  cache.values.resize(n);
  cache.crossKeys.resize(n);
  cache.crossValues.resize(n);
  return cache;
}

at::Tensor BertModel::forward(const BertInput& in) const {
  const at::Tensor& ids = in.inputIds;
  if (ids.dim() != 2) throw ArgumentError("input ids must have shape (batch, sequence), got " + c10::str(ids.sizes()));
  const int64_t B = ids.size(0), S = ids.size(1);
  const int64_t past = in.cache ? in.cache->length : 0;
  if (past + S > config_.maxPositions) {
    throw ArgumentError("the text is " + std::to_string(past + S) + " tokens long but the model has " + std::to_string(config_.maxPositions) +
                        " position embeddings");
  }
  const auto device = words_->weight.device();
  at::Tensor positions = at::arange(past, past + S, at::TensorOptions().dtype(at::kLong).device(device));
  at::Tensor h = words_->forward(ids.to(device)) + positions_->forward(positions).unsqueeze(0);
  h = modules::dropout(embedNorm_->forward(h), config_.hiddenDropout, training_);
  if (in.hiddenStates) in.hiddenStates->push_back(h);

  // Self-attention mask: nothing (or SDPA's causal flag) when every token is real, else a boolean
  // (B, 1, S, past + S) mask of real keys, combined with causality for the decoder.
  at::Tensor selfMask;
  bool causal = false;
  at::Tensor pad = in.attentionMask.defined() ? in.attentionMask.to(device).to(at::kBool) : at::Tensor();
  if (pad.defined() && (pad.dim() != 2 || pad.size(0) != B || pad.size(1) != past + S)) {
    throw ArgumentError("attention_mask must have shape (batch, " + std::to_string(past + S) + "), got " + c10::str(pad.sizes()));
  }
  const bool padded = pad.defined() && !pad.all().item<bool>();
  if (in.causal) {
    if (padded || (past > 0 && S > 1)) {
      at::Tensor qpos = at::arange(past, past + S, positions.options()).unsqueeze(1);
      at::Tensor kpos = at::arange(past + S, positions.options()).unsqueeze(0);
      selfMask = (kpos <= qpos).view({1, 1, S, past + S});
      if (padded) selfMask = selfMask & pad.view({B, 1, 1, past + S});
    } else {
      causal = past == 0 && S > 1;
    }
  } else if (padded) {
    selfMask = pad.view({B, 1, 1, past + S});
  }
  at::Tensor context, contextMask;
  if (in.context.defined()) {
    context = in.context.to(h.scalar_type());
    if (context.size(0) != B) throw ArgumentError("encoder states have batch size " + std::to_string(context.size(0)) + ", the text " + std::to_string(B));
    if (in.contextMask.defined()) {
      at::Tensor m = in.contextMask.to(device).to(at::kBool);
      if (m.dim() != 2 || m.size(0) != B || m.size(1) != context.size(1)) {
        throw ArgumentError("the encoder attention mask must have shape (batch, " + std::to_string(context.size(1)) + "), got " + c10::str(m.sizes()));
      }
      if (!m.all().item<bool>()) contextMask = m.view({B, 1, 1, context.size(1)});
    }
  }
  for (const auto& layer : layers_) {
    h = modules::runLayer(*layer, h, [&](const at::Tensor& x) { return layer->forward(x, selfMask, causal, context, contextMask, in.cache); });
    if (in.hiddenStates) in.hiddenStates->push_back(h);
  }
  if (in.cache) in.cache->length = past + S;
  return h;
}

BertLMHead::BertLMHead(const BertConfig& c, const BertModel& bert, bool tied, const modules::Init& init)
    : Module("BertLMPredictionHead", Kind::Head, c.part), bert_(bert), tied_(tied), activation_(c.activation) {
  bias = init.empty({c.vocabSize});
  addParameter("predictions.bias", &bias);
  transform_ = addChild("predictions.transform.dense", std::make_shared<Linear>(c.hiddenSize, c.hiddenSize, true, Kind::Head, c.part, init));
  norm_ = addChild("predictions.transform.LayerNorm", std::make_shared<modules::LayerNorm>(c.hiddenSize, c.eps, c.part, init));
  if (!tied) decoder_ = addChild("predictions.decoder", std::make_shared<Linear>(c.hiddenSize, c.vocabSize, false, Kind::Head, c.part, init));
}

at::Tensor BertLMHead::forward(const at::Tensor& hidden) const {
  at::Tensor h = norm_->forward(modules::activate(transform_->forward(hidden), activation_));
  if (decoder_ && decoder_->adapter()) return decoder_->forward(h) + bias;
  return at::linear(h, tied_ ? bert_.wordEmbeddings() : decoder_->weight, bias);
}

bool BertLMHead::isTiedKey(const std::string& localName) const {
  return localName == "predictions.decoder.bias" || (tied_ && localName == "predictions.decoder.weight");
}

void BertLMHead::initialize(double, at::Generator&) { bias.zero_(); }

}  // namespace medtune::models
