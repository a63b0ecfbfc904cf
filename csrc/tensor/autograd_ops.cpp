// Autograd from JavaScript: requires_grad flags, backward, .grad, grad mode, torch.autograd.grad.
#include <torch/csrc/autograd/autograd.h>

#include "common/args.h"
#include "common/errors.h"
#include "common/registry.h"
#include "tensor/tensor_box.h"

namespace medtune {

namespace {

Napi::Value setRequiresGrad(const Napi::CallbackInfo& info) {
  Args a(info, "requiresGrad_");
  at::Tensor t = a.tensor(0);
  bool flag = a.boolean(1, true);
  if (flag && !(at::isFloatingType(t.scalar_type()) || at::isComplexType(t.scalar_type())))
    throw ArgumentError("requiresGrad_(): only floating-point tensors can require gradients, this one is " + std::string(c10::toString(t.scalar_type())));
  t.set_requires_grad(flag);
  return info.Env().Undefined();
}

// backward(t, gradient?, retainGraph?)
Napi::Value backward(const Napi::CallbackInfo& info) {
  Args a(info, "backward");
  const at::Tensor& t = a.tensor(0);
  if (!t.requires_grad()) throw ArgumentError("backward(): the tensor does not require grad and has no grad_fn (was it computed inside noGrad, or from tensors without requiresGrad?)");
  auto gradient = a.optTensor(1);
  if (!gradient && t.numel() != 1) throw ArgumentError("backward(): a gradient must be given for a non-scalar output of shape " + c10::str(t.sizes()));
  t.backward(gradient.value_or(at::Tensor()), a.boolean(2, false));
  return info.Env().Undefined();
}

Napi::Value grad(const Napi::CallbackInfo& info) {
  Args a(info, "grad");
  return wrapTensor(info.Env(), a.tensor(0).grad());
}

// setGrad(t, g | null)
Napi::Value setGrad(const Napi::CallbackInfo& info) {
  Args a(info, "setGrad");
  at::Tensor t = a.tensor(0);
  t.mutable_grad() = a.optTensor(1).value_or(at::Tensor());
  return info.Env().Undefined();
}

Napi::Value retainGrad(const Napi::CallbackInfo& info) {
  Args a(info, "retainGrad");
  a.tensor(0).retain_grad();
  return info.Env().Undefined();
}

Napi::Value setGradEnabled(const Napi::CallbackInfo& info) {
  Args a(info, "setGradEnabled");
  bool previous = at::GradMode::is_enabled();
  at::GradMode::set_enabled(a.boolean(0, true));
  return Napi::Boolean::New(info.Env(), previous);
}

Napi::Value isGradEnabled(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), at::GradMode::is_enabled()); }

// autogradGrad(outputs[], inputs[], gradOutputs[]?, retainGraph?, createGraph?, allowUnused?)
Napi::Value autogradGrad(const Napi::CallbackInfo& info) {
  Args a(info, "autograd.grad");
  auto outputs = a.tensorList(0);
  auto inputs = a.tensorList(1);
  std::vector<at::Tensor> gradOutputs = a.has(2) ? a.tensorList(2) : std::vector<at::Tensor>{};
  bool create = a.boolean(4, false);
  std::optional<bool> retain;
  if (a.has(3)) retain = a.boolean(3, false);
  auto grads = torch::autograd::grad(outputs, inputs, gradOutputs, retain, create, a.boolean(5, false));
  Napi::Array out = Napi::Array::New(info.Env(), grads.size());
  for (size_t i = 0; i < grads.size(); ++i) out.Set(static_cast<uint32_t>(i), wrapTensor(info.Env(), grads[i]));
  return out;
}

void registerAutograd(Napi::Env env, Napi::Object exports) {
  defineFunction<setRequiresGrad>(env, exports, "setRequiresGrad");
  defineFunction<backward>(env, exports, "backward");
  defineFunction<grad>(env, exports, "grad");
  defineFunction<setGrad>(env, exports, "setGrad");
  defineFunction<retainGrad>(env, exports, "retainGrad");
  defineFunction<setGradEnabled>(env, exports, "setGradEnabled");
  defineFunction<isGradEnabled>(env, exports, "isGradEnabled");
  defineFunction<autogradGrad>(env, exports, "autogradGrad");
}

}  // namespace

MEDTUNE_REGISTER(autograd, registerAutograd);

}  // namespace medtune
