// The causal-LM head and cross-entropy computed over chunks of tokens, so that the [tokens,
// vocab] logits (and their float32 copy, softmax and gradient) never exist whole: the forward
// pass keeps only the head's input; the backward pass recomputes each chunk's logits and turns
// them into that chunk's gradients for the hidden states and the head weight. The numbers are
// those of causalLmLoss(linear(hidden, weight), labels): the same kernels row by row (linear,
// float32 upcast, log_softmax, nll_loss and their backward functions), so per-token values are
// identical and only the order of the sums over tokens differs (float rounding, ~1e-7 relative).
#pragma once
#include <ATen/ATen.h>

#include <optional>

namespace medtune::models {

// hidden (B, S, D), weight (V, D) (an lm_head without bias, or the tied embedding), labels
// (B, S) with -100 ignored; shifted as transformers' ForCausalLMLoss. Mean over supervised
// tokens, or the sum divided by numItemsInBatch. chunkTokens > 0 rows of logits at a time.
at::Tensor chunkedCausalLmLoss(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels,
                               const std::optional<at::Tensor>& numItemsInBatch, int64_t chunkTokens);

}  // namespace medtune::models
