// LLaMA / Mistral decoders (LlamaForCausalLM, MistralForCausalLM and the language model inside
// LLaVA): RMSNorm, RoPE, grouped-query attention through libtorch's scaled_dot_product_attention
// with causal + padding (+ sliding window) masks, SwiGLU MLP, tied or untied lm_head, a
// preallocated KV cache for generation. All layers run through runLayer() in one loop, and the
// head + loss is one function, so checkpointing and chunked cross-entropy each replace one place.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "models/model.h"
#include "models/rope.h"
#include "modules/layers.h"

namespace medtune::models {

// Keys and values per layer, (B, kv_heads, capacity, head_dim), filled up to `length`.
struct KVCache {
  std::vector<at::Tensor> keys, values;
  int64_t length = 0;
  int64_t capacity = 0;
};

struct DecoderInput {
  at::Tensor embeds;         // (B, S, D)
  at::Tensor attentionMask;  // (B, past + S) of 0/1, or undefined (attend everything causally)
  at::Tensor positionIds;    // (B, S); undefined: past .. past + S - 1 (transformers' default)
  KVCache* cache = nullptr;
  std::vector<at::Tensor>* hiddenStates = nullptr;  // embeds, each layer's output, the last one normed (as transformers)
};

class LlamaAttention : public modules::Module {
 public:
  LlamaAttention(const Spec& spec, const modules::Init& init);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask, bool causal,
                     KVCache* cache, size_t layer) const;

 private:
  int64_t heads_, kvHeads_, headDim_;
  double dropout_;
  std::shared_ptr<modules::Linear> q_, k_, v_, o_;
};

class LlamaMLP : public modules::Module {
 public:
  LlamaMLP(const Spec& spec, const modules::Init& init);
  at::Tensor forward(const at::Tensor& x) const;

 private:
  modules::Activation act_;
  std::shared_ptr<modules::Linear> gate_, up_, down_;
};

class LlamaDecoderLayer : public modules::Module {
 public:
  LlamaDecoderLayer(const Spec& spec, const modules::Init& init, size_t index);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask, bool causal, KVCache* cache) const;
  // Its input, its parameters, and rotary tables and masks that need no gradient.
  bool checkpointable() const override { return true; }

 private:
  size_t index_;
  std::shared_ptr<modules::RMSNorm> inputNorm_, postNorm_;
  std::shared_ptr<LlamaAttention> attention_;
  std::shared_ptr<LlamaMLP> mlp_;
};

// LlamaModel: embed_tokens, layers.N, norm.
class LlamaDecoder : public modules::Module {
 public:
  LlamaDecoder(const Spec& spec, const modules::Init& init);
  at::Tensor embed(const at::Tensor& ids) const;
  // Final (normed) hidden states (B, S, D).
  at::Tensor forward(const DecoderInput& input);
  KVCache newCache(int64_t batch, int64_t capacity) const;
  const at::Tensor& embedWeight() const { return embed_->weight; }
  int64_t vocabSize() const { return vocab_; }

 private:
  // Boolean (B, 1, S, past + S) mask, or undefined when plain causal attention (or none) suffices.
  at::Tensor buildMask(const at::Tensor& attentionMask, int64_t past, int64_t S, bool& causal) const;

  int64_t vocab_, heads_, kvHeads_, headDim_, slidingWindow_;
  std::shared_ptr<modules::Embedding> embed_;
  std::vector<std::shared_ptr<LlamaDecoderLayer>> layers_;
  std::shared_ptr<modules::RMSNorm> norm_;
  std::unique_ptr<Rope> rope_;
};

// Decoder + lm_head registered into `parent` under the spec's prefixes (decoderPrefix, lmHead),
// so LlamaForCausalLM ("model", "lm_head") and LLaVA ("language_model.model",
// "language_model.lm_head", or "model", "lm_head" in the original layout) share it.
class LanguageModel {
 public:
  LanguageModel(modules::Module& parent, const Spec& spec, const modules::Init& init);
  std::shared_ptr<LlamaDecoder> decoder;
  at::Tensor logits(const at::Tensor& hidden) const;
  // logits, and loss when labels are given (transformers' ForCausalLMLoss). The one place the
  // LM head and the loss meet.
  // With wantLogits false, the loss is computed in chunks of lossChunkTokens() tokens
  // (models/chunked_loss.h) and no logits are returned, when the head is a plain matrix (no
  // adapter on lm_head) and the chunk size is positive.
  void headAndLoss(const at::Tensor& hidden, const TensorMap& batch, const at::Tensor& labels, TensorMap& out, bool wantLogits = true) const;
  bool isTiedKey(const std::string& name) const { return tied_ && name == headName_ + ".weight"; }
  // Tokens per chunk of the chunked cross-entropy; 0 computes the loss from whole logits.
  void setLossChunkTokens(int64_t n) { lossChunk_ = n; }
  int64_t lossChunkTokens() const { return lossChunk_; }

 private:
  int64_t lossChunk_ = 1024;
  bool tied_;
  std::string headName_;
  std::shared_ptr<modules::Linear> head_;
};

// What generation needs from a model: its language model and the prompt as embeddings.
struct Prompt {
  at::Tensor embeds;         // (B, S, D)
  at::Tensor attentionMask;  // (B, S) int64
  at::Tensor positionIds;    // (B, S)
};

class CausalLM {
 public:
  virtual ~CausalLM() = default;
  virtual LanguageModel& languageModel() = 0;
  // Prompt embeddings (images spliced in for LLaVA), left-padded, with transformers' generation
  // position ids (cumsum of the mask - 1).
  virtual Prompt preparePrompt(const TensorMap& batch) = 0;
};

// Position ids for generation from a (B, S) 0/1 mask: cumsum - 1, pads set to 0.
at::Tensor positionsFromMask(const at::Tensor& mask);

}  // namespace medtune::models
