// Losses with transformers' semantics, each in one function so that later work (chunked
// cross-entropy over the vocabulary, say) replaces one place.
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <string>

namespace medtune::models {

constexpr int64_t kIgnoreIndex = -100;

// transformers' ForCausalLMLoss: logits upcast to float32, labels shifted left by one (the last
// position predicts nothing), cross-entropy ignoring -100, mean over supervised tokens; with
// numItemsInBatch (gradient accumulation) the sum divided by that count instead.
at::Tensor causalLmLoss(const at::Tensor& logits, const at::Tensor& labels, const std::optional<at::Tensor>& numItemsInBatch);

// transformers' ForSequenceClassificationLoss for image classifiers: problemType
// 'multi_label_classification' (BCE with logits, mean over all logits), 'single_label_classification'
// (softmax cross-entropy, ignore -100) or 'regression' (MSE); '' infers it from numLabels and the
// labels' dtype the way transformers does.
at::Tensor classificationLoss(const at::Tensor& logits, const at::Tensor& labels, const std::string& problemType, int64_t numLabels);

}  // namespace medtune::models
