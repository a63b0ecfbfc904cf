#include "models/losses.h"

#include <ATen/ATen.h>

#include "common/errors.h"
#include "runtime/step_stage.h"

namespace medtune::models {

at::Tensor causalLmLoss(const at::Tensor& logits, const at::Tensor& labels, const std::optional<at::Tensor>& numItemsInBatch) {
  if (labels.dim() != 2 || logits.dim() != 3 || labels.size(0) != logits.size(0) || labels.size(1) != logits.size(1)) {
    throw ArgumentError("labels must have shape (batch, sequence) = " + c10::str(logits.sizes().slice(0, 2)) + ", got " + c10::str(labels.sizes()));
  }
  at::Tensor shifted = at::constant_pad_nd(labels.to(at::kLong), {0, 1}, kIgnoreIndex).narrow(1, 1, labels.size(1)).to(logits.device());
  at::Tensor flat = logits.to(at::kFloat).reshape({-1, logits.size(-1)});
  if (numItemsInBatch) {
    at::Tensor sum = at::cross_entropy_loss(flat, shifted.reshape({-1}), std::nullopt, at::Reduction::Sum, kIgnoreIndex);
    return sum / numItemsInBatch->to(sum.device());
  }
  return at::cross_entropy_loss(flat, shifted.reshape({-1}), std::nullopt, at::Reduction::Mean, kIgnoreIndex);
}

at::Tensor classificationLoss(const at::Tensor& logits, const at::Tensor& labels, const std::string& problemType, int64_t numLabels) {
  stage::begin(stage::Stage::Loss);
  std::string type = problemType;
  if (type.empty()) {
    if (numLabels == 1) type = "regression";
    else if (labels.scalar_type() == at::kLong || labels.scalar_type() == at::kInt) type = "single_label_classification";
    else type = "multi_label_classification";
  }
  at::Tensor target = labels.to(logits.device());
  if (type == "regression") {
    if (numLabels == 1) return at::mse_loss(logits.squeeze(), target.squeeze().to(logits.scalar_type()));
    return at::mse_loss(logits, target.to(logits.scalar_type()));
  }
  if (type == "single_label_classification") {
    return at::cross_entropy_loss(logits.reshape({-1, numLabels}), target.reshape({-1}).to(at::kLong), std::nullopt, at::Reduction::Mean, kIgnoreIndex);
  }
  if (type == "multi_label_classification") {
    if (target.sizes() != logits.sizes()) {
      throw ArgumentError("multi-label labels must have the logits' shape " + c10::str(logits.sizes()) + ", got " + c10::str(target.sizes()));
    }
    return at::binary_cross_entropy_with_logits(logits, target.to(logits.scalar_type()));
  }
  throw ArgumentError("unknown problem_type '" + type + "' (regression, single_label_classification, multi_label_classification)");
}

}  // namespace medtune::models
