#include "models/chunked_loss.h"

#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/variable.h>

#include "common/errors.h"
#include "models/losses.h"

namespace medtune::models {

namespace {

using torch::autograd::variable_list;

// One chunk's float32 log-probabilities, exactly as causalLmLoss computes them for these rows.
// The head's matmul runs in `mm`, the dtype the forward's linear had: under autocast its dtype
// (the backward runs outside autocast, and LN-tuning's float32 final norm meets a bf16 head
// there), else the weight's. Casting explicitly makes the recomputation independent of it.
at::Tensor chunkLogProbs(const at::Tensor& hidden, const at::Tensor& weight, at::ScalarType mm) {
  return at::log_softmax(at::linear(hidden.to(mm), weight.to(mm)).to(at::kFloat), 1);
}

at::ScalarType headMatmulType(const at::Tensor& hidden, const at::Tensor& weight) {
  const c10::DeviceType device = hidden.device().type();
  const bool autocast = (device == c10::DeviceType::CPU || device == c10::DeviceType::CUDA) && at::autocast::is_autocast_enabled(device) &&
                        at::isFloatingType(weight.scalar_type());
  return autocast ? at::autocast::get_autocast_dtype(device) : weight.scalar_type();
}

class ChunkedCrossEntropyBackward : public torch::autograd::Node {
 public:
  ChunkedCrossEntropyBackward(at::Tensor hidden, at::Tensor weight, at::Tensor targets, at::Tensor denominator, int64_t chunk, bool needHidden,
                              bool needWeight, at::ScalarType mm)
      : hidden_(std::move(hidden)), weight_(std::move(weight)), targets_(std::move(targets)), denominator_(std::move(denominator)), chunk_(chunk),
        needHidden_(needHidden), needWeight_(needWeight), mm_(mm) {}

  std::string name() const override { return "medtune::ChunkedCrossEntropyBackward"; }

  variable_list apply(variable_list&& grads) override {
    TORCH_CHECK(hidden_.defined(), "chunked cross-entropy: backward ran twice (its saved tensors were already released)");
    variable_list out(2);
    const at::Tensor& g = grads.at(0);
    if (!g.defined()) return out;
    at::AutoGradMode noGrad(false);
    // d loss / d (sum over tokens) = g / denominator, as DivBackward computes it (the mean of
    // nll_loss divides the same way: -grad / total_weight).
    const at::Tensor gradSum = g.to(at::kFloat) / denominator_;
    const int64_t N = hidden_.size(0);
    at::Tensor gradHidden = needHidden_ ? at::empty_like(hidden_) : at::Tensor();
    // Summed over chunks in float32, cast to the weight's dtype once at the end.
    at::Tensor gradWeight = needWeight_ ? at::zeros(weight_.sizes(), weight_.options().dtype(at::kFloat)) : at::Tensor();
    const at::Tensor unusedWeight;
    const at::Tensor w = weight_.to(mm_);
    for (int64_t start = 0; start < N; start += chunk_) {
      const int64_t n = std::min(chunk_, N - start);
      at::Tensor h = hidden_.narrow(0, start, n).to(mm_);
      at::Tensor t = targets_.narrow(0, start, n);
      at::Tensor logProbs = chunkLogProbs(h, w, mm_);
      at::Tensor gradNll = at::nll_loss_backward(gradSum, logProbs, t, unusedWeight, at::Reduction::Sum, kIgnoreIndex, at::ones({}, logProbs.options()));
      at::Tensor gradLogits = at::_log_softmax_backward_data(gradNll, logProbs, 1, at::kFloat).to(mm_);
      logProbs.reset();
      gradNll.reset();
      if (needHidden_) gradHidden.narrow(0, start, n).copy_(at::mm(gradLogits, w));  // copy_ casts to the hidden's dtype
      if (needWeight_) gradWeight.add_(at::mm(gradLogits.t(), h).to(at::kFloat));
    }
    if (needHidden_) out[0] = gradHidden;
    if (needWeight_) out[1] = gradWeight.to(weight_.scalar_type());
    return out;
  }

  void release_variables() override {
    hidden_.reset();
    weight_.reset();
    targets_.reset();
  }

 private:
  at::Tensor hidden_, weight_, targets_, denominator_;
  int64_t chunk_;
  bool needHidden_, needWeight_;
  at::ScalarType mm_;
};

}  // namespace

at::Tensor chunkedCausalLmLoss(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels,
                               const std::optional<at::Tensor>& numItemsInBatch, int64_t chunkTokens) {
  if (labels.dim() != 2 || hidden.dim() != 3 || labels.size(0) != hidden.size(0) || labels.size(1) != hidden.size(1)) {
    throw ArgumentError("labels must have shape (batch, sequence) = " + c10::str(hidden.sizes().slice(0, 2)) + ", got " + c10::str(labels.sizes()));
  }
  TORCH_CHECK(chunkTokens > 0, "chunked cross-entropy needs a positive chunk size");
  const int64_t D = hidden.size(2);
  at::Tensor targets = at::constant_pad_nd(labels.to(at::kLong), {0, 1}, kIgnoreIndex).narrow(1, 1, labels.size(1)).to(hidden.device()).reshape({-1});
  at::Tensor flat = hidden.reshape({-1, D});
  const int64_t N = flat.size(0);

  const at::ScalarType mm = headMatmulType(hidden, weight);
  at::Tensor sum = at::zeros({}, hidden.options().dtype(at::kFloat));
  {
    at::AutoGradMode noGrad(false);
    for (int64_t start = 0; start < N; start += chunkTokens) {
      const int64_t n = std::min(chunkTokens, N - start);
      at::Tensor logProbs = chunkLogProbs(flat.narrow(0, start, n), weight, mm);
      sum += at::nll_loss(logProbs, targets.narrow(0, start, n), {}, at::Reduction::Sum, kIgnoreIndex);
    }
  }
  // The mean's denominator is nll_loss's total_weight: the number of supervised tokens.
  at::Tensor denominator = numItemsInBatch ? numItemsInBatch->to(sum.device()).to(at::kFloat) : targets.ne(kIgnoreIndex).sum().to(at::kFloat);
  const bool needHidden = hidden.requires_grad(), needWeight = weight.requires_grad();
  at::Tensor loss;
  {
    at::AutoGradMode noGrad(false);
    loss = sum / denominator;
  }
  if (at::GradMode::is_enabled() && (needHidden || needWeight)) {
    auto node = c10::make_intrusive<ChunkedCrossEntropyBackward>(flat.detach(), weight.detach(), targets, denominator, chunkTokens, needHidden, needWeight, mm);
    torch::autograd::edge_list edges;
    edges.push_back(needHidden ? torch::autograd::impl::gradient_edge(flat) : torch::autograd::Edge());
    edges.push_back(needWeight ? torch::autograd::impl::gradient_edge(weight) : torch::autograd::Edge());
    node->set_next_edges(std::move(edges));
    torch::autograd::set_history(loss, node);
  }
  return loss;
}

}  // namespace medtune::models
