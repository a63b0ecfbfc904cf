// torch.autocast as a C++ scope: inside it, the dispatcher runs matmul-like ops (linear, matmul,
// conv, scaled_dot_product_attention ...) in the lower-precision dtype and the precision-
// sensitive ones in float32, by the same op lists PyTorch's Python autocast uses, because it is
// the same mechanism (the AutocastCPU / AutocastCUDA dispatch keys). medtune's mixed precision
// (bf16 / fp16 frozen weights, float32 trainable masters) runs every forward of such a model
// inside one, so its compute is what `with torch.autocast(device, dtype):` computes.
//
// The state is thread-local, as in Python; the scope restores what it found, and the outermost
// scope clears the cast cache (the bf16 copies of float32 masters made during the forward), as
// torch.autocast's __exit__ does. Backward passes run outside the scope (the HF Trainer calls
// backward outside autocast too): autograd replays the dtypes the forward chose.
#pragma once
#include <ATen/ATen.h>
#include <c10/core/DeviceType.h>

#include <optional>

namespace medtune::runtime {

class AutocastScope {
 public:
  // dtype nullopt: no autocast (the scope does nothing).
  AutocastScope(c10::DeviceType device, std::optional<at::ScalarType> dtype);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType device_ = c10::DeviceType::CPU;
  bool prevEnabled_ = false;
  at::ScalarType prevDtype_ = at::kBFloat16;
  bool prevCache_ = true;
};

// Whether autocast exists for this device type in this build (CPU always; CUDA in CUDA builds).
bool autocastAvailable(c10::DeviceType device);

}  // namespace medtune::runtime
