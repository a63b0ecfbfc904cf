// Gradient clipping by global norm with torch.nn.utils.clip_grad_norm_'s semantics and numerics
// (its foreach path, which PyTorch takes for CPU and CUDA gradients): per-(device, dtype) norms
// with _foreach_norm, the total as the norm of their stack, then every gradient multiplied by
// min(max_norm / (total + 1e-6), 1) without a host synchronisation.
#pragma once
#include <ATen/ATen.h>

#include <vector>

namespace medtune::optim {

// The total norm of the gradients of `params` (parameters without a gradient are left out), as a
// 0-dim tensor on the first gradient's device; 0 (a CPU float tensor) when there is none.
at::Tensor totalGradNorm(const std::vector<at::Tensor>& params, double normType = 2.0);

// Scales the gradients in place so that their total norm is at most `maxNorm`; returns the total
// norm before clipping. errorIfNonfinite: throw (this needs a host synchronisation) when it is
// NaN or infinite.
at::Tensor clipGradNorm(const std::vector<at::Tensor>& params, double maxNorm, double normType = 2.0,
                        bool errorIfNonfinite = false);

}  // namespace medtune::optim
