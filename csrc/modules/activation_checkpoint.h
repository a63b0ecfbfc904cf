// Per-layer activation (gradient) checkpointing as a native autograd node: the forward pass of a
// checkpointed layer runs without recording a graph and keeps only the layer's input; the
// backward pass recomputes the layer under grad mode (same RNG state, same autocast state) and
// differentiates that, so each layer's activations live only while its gradient is computed.
// What torch.utils.checkpoint does, in C++, with the layer's trainable parameters as explicit
// inputs of the node (so a layer whose input needs no gradient, under LN-tuning or LoRA, still
// passes gradients to its parameters: no enable_input_require_grads workaround needed).
#pragma once
#include <ATen/ATen.h>

#include <functional>

#include "modules/module.h"

namespace medtune::modules {

// `body` must depend only on its argument, `layer`'s parameters and tensors that need no
// gradient (masks, rotary tables); it is kept until the backward pass, so it must capture
// those by value. `index` is the layer's position in its part (for error messages).
at::Tensor checkpointLayer(Module& layer, int64_t index, const at::Tensor& hidden, const std::function<at::Tensor(const at::Tensor&)>& body);

}  // namespace medtune::modules
