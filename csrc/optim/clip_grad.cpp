#include "optim/clip_grad.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <utility>

namespace medtune::optim {

namespace {

std::vector<std::vector<at::Tensor>> gradsByDeviceAndDtype(const std::vector<at::Tensor>& params) {
  std::vector<std::pair<c10::Device, at::ScalarType>> keys;
  std::vector<std::vector<at::Tensor>> groups;
  for (const at::Tensor& p : params) {
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    std::pair<c10::Device, at::ScalarType> key{g.device(), g.scalar_type()};
    size_t k = 0;
    while (k < keys.size() && keys[k] != key) ++k;
    if (k == keys.size()) {
      keys.push_back(key);
      groups.emplace_back();
    }
    groups[k].push_back(g);
  }
  return groups;
}

}  // namespace

at::Tensor totalGradNorm(const std::vector<at::Tensor>& params, double normType) {
  at::NoGradGuard noGrad;
  auto groups = gradsByDeviceAndDtype(params);
  if (groups.empty()) return at::zeros({}, at::kFloat);
  c10::Device first = groups.front().front().device();
  std::vector<at::Tensor> norms;
  for (const auto& grads : groups)
    for (at::Tensor& n : at::_foreach_norm(grads, normType)) norms.push_back(n.to(first));
  return at::linalg_vector_norm(at::stack(norms), normType);
}

at::Tensor clipGradNorm(const std::vector<at::Tensor>& params, double maxNorm, double normType, bool errorIfNonfinite) {
  at::NoGradGuard noGrad;
  at::Tensor total = totalGradNorm(params, normType);
  if (errorIfNonfinite && !at::isfinite(total).item<bool>())
    TORCH_CHECK(false, "The total norm of order ", normType, " for gradients is non-finite, so it cannot be clipped");
  auto groups = gradsByDeviceAndDtype(params);
  if (groups.empty()) return total;
  // Python evaluates `max_norm / (total_norm + 1e-6)` as (total_norm + 1e-6).reciprocal() * max_norm.
  at::Tensor coef = at::clamp((total + 1e-6).reciprocal() * maxNorm, std::nullopt, 1.0);
  for (auto& grads : groups) at::_foreach_mul_(grads, coef.to(grads.front().device()));
  return total;
}

}  // namespace medtune::optim
