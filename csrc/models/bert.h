// BERT with optional cross-attention, as BLIP builds its text encoder and decoder (Salesforce
// BLIP's models/med.py; transformers' BlipTextModel / BlipTextLMHeadModel, same parameter names):
//   embeddings.{word_embeddings, position_embeddings, LayerNorm}
//   encoder.layer.N.attention.{self.{query,key,value}, output.{dense,LayerNorm}}
//   encoder.layer.N.crossattention.(same)        (keys/values from the encoder's states)
//   encoder.layer.N.{intermediate.dense, output.dense, output.LayerNorm}
//   cls.predictions.{transform.dense, transform.LayerNorm, bias, decoder}  (the LM head)
// Post-norm layers: h = LN(x + dropout(dense(attention(x)))). The encoder attends bidirectionally,
// the decoder causally; both through libtorch's scaled_dot_product_attention with boolean masks.
// Decoding keeps the self-attention keys/values of earlier tokens and the cross-attention
// keys/values of the encoder's states (computed once) in a BertCache.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "models/spec.h"
#include "modules/layers.h"

namespace medtune::models {

struct BertConfig {
  int64_t vocabSize = 30524;
  int64_t hiddenSize = 768;
  int64_t numLayers = 12;
  int64_t numHeads = 12;
  int64_t intermediateSize = 3072;
  int64_t maxPositions = 512;
  int64_t encoderWidth = 0;  // width of the states cross-attention reads; 0: no cross-attention
  double eps = 1e-12;
  double hiddenDropout = 0;
  double attentionDropout = 0;
  modules::Activation activation = modules::Activation::Gelu;
  modules::Part part = modules::Part::Language;

  // From a spec object with the BlipTextConfig fields in camelCase.
  static BertConfig fromSpec(const Spec& spec, modules::Part part);
};

// Keys and values (rows, heads, length, head_dim) per layer during decoding.
struct BertCache {
  std::vector<at::Tensor> keys, values;            // self-attention, grown by one token per step
  std::vector<at::Tensor> crossKeys, crossValues;  // over the encoder's states, computed once
  int64_t length = 0;                              // tokens already in the self-attention cache

  // Rows follow the surviving beams: row i takes row index[i]'s state.
  void reorder(const at::Tensor& index);
};

class BertAttention : public modules::Module {
 public:
  BertAttention(const BertConfig& config, bool cross, const modules::Init& init);
  // x (B, S, D). Self-attention when `context` is undefined, else cross-attention over context
  // (B, T, encoderWidth). `mask`: boolean, broadcastable to (B, heads, S, keys), true = attend;
  // `causal` for decoder self-attention without a cache. With a cache, new keys/values are
  // appended (self) or computed once and reused (cross).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& context, const at::Tensor& mask, bool causal, BertCache* cache, size_t layer) const;

 private:
  BertConfig config_;
  bool cross_;
  std::shared_ptr<modules::Linear> query_, key_, value_, dense_;
  std::shared_ptr<modules::LayerNorm> norm_;
};

class BertLayer : public modules::Module {
 public:
  BertLayer(const BertConfig& config, const modules::Init& init, size_t index);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& selfMask, bool causal, const at::Tensor& context, const at::Tensor& contextMask,
                     BertCache* cache) const;

 private:
  BertConfig config_;
  size_t index_;
  std::shared_ptr<BertAttention> attention_, crossAttention_;
  std::shared_ptr<modules::Linear> intermediate_, output_;
  std::shared_ptr<modules::LayerNorm> outputNorm_;
};

struct BertInput {
  at::Tensor inputIds;       // (B, S)
  at::Tensor attentionMask;  // (B, past + S) of 0/1, or undefined (attend to every token)
  at::Tensor context;        // (B, T, encoderWidth) for cross-attention, or undefined
  at::Tensor contextMask;    // (B, T) of 0/1, or undefined
  bool causal = false;       // decoder self-attention
  BertCache* cache = nullptr;
  std::vector<at::Tensor>* hiddenStates = nullptr;  // embeddings, then each layer's output
};

// BertModel without the pooler (BLIP's text encoder, and the `bert` of its decoder).
class BertModel : public modules::Module {
 public:
  BertModel(const BertConfig& config, const modules::Init& init);
  at::Tensor forward(const BertInput& input) const;
  BertCache newCache() const;
  const at::Tensor& wordEmbeddings() const { return words_->weight; }
  const BertConfig& config() const { return config_; }

 private:
  BertConfig config_;
  std::shared_ptr<modules::Embedding> words_, positions_;
  std::shared_ptr<modules::LayerNorm> embedNorm_;
  std::vector<std::shared_ptr<BertLayer>> layers_;
};

// cls.predictions: dense + activation + LayerNorm, then the vocabulary projection, whose weight is
// the word embedding matrix when tied (BERT's default) and whose bias is `predictions.bias`
// (`predictions.decoder.bias` names the same tensor in checkpoints that store both).
class BertLMHead : public modules::Module {
 public:
  BertLMHead(const BertConfig& config, const BertModel& bert, bool tied, const modules::Init& init);
  at::Tensor forward(const at::Tensor& hidden) const;
  // Keys that name a tensor held under another name (not loaded, not saved).
  bool isTiedKey(const std::string& localName) const;

  at::Tensor bias;

 protected:
  void initialize(double std, at::Generator& generator) override;

 private:
  const BertModel& bert_;
  bool tied_;
  modules::Activation activation_;
  std::shared_ptr<modules::Linear> transform_, decoder_;
  std::shared_ptr<modules::LayerNorm> norm_;
};

}  // namespace medtune::models
