// The global random generators' state (CPU, and each CUDA device's), for training checkpoints:
// a resumed run continues the dropout and initialisation streams where the interrupted one was.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/core/Generator.h>
#include <napi.h>

#include <mutex>
#include <string>

#include "common/args.h"
#include "common/errors.h"
#include "common/registry.h"
#include "tensor/tensor_box.h"

#include <ATen/detail/CUDAHooksInterface.h>

namespace medtune {

namespace {

// CUDA generators through ATen's hooks, so a CPU build needs no CUDA headers.
int cudaDevices() { return at::hasCUDA() ? static_cast<int>(at::detail::getCUDAHooks().deviceCount()) : 0; }
at::Generator cudaGenerator(int i) { return at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(i))); }

at::Tensor generatorState(const at::Generator& g) {
  std::lock_guard<std::mutex> lock(const_cast<at::Generator&>(g).mutex());
  return g.get_state();
}

void setGeneratorState(at::Generator g, const at::Tensor& state, const std::string& what) {
  if (state.scalar_type() != at::kByte || state.dim() != 1)
    throw CodedError("MEDTUNE_BAD_RNG_STATE", what + ": expected a 1-d uint8 tensor of generator state");
  std::lock_guard<std::mutex> lock(g.mutex());
  try {
    g.set_state(state.contiguous().cpu());
  } catch (const c10::Error& e) {
    throw CodedError("MEDTUNE_BAD_RNG_STATE", what + ": " + e.what_without_backtrace());
  }
}

// rngState() -> { cpu: Tensor(uint8), cuda: Tensor[] (one per device) }
Napi::Value rngState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = Napi::Object::New(env);
  out.Set("cpu", wrapTensor(env, generatorState(at::detail::getDefaultCPUGenerator())));
  auto cuda = Napi::Array::New(env);
  for (int i = 0; i < cudaDevices(); ++i) cuda.Set(static_cast<uint32_t>(i), wrapTensor(env, generatorState(cudaGenerator(i))));
  out.Set("cuda", cuda);
  return out;
}

// setRngState({ cpu, cuda? }, source)
Napi::Value setRngState(const Napi::CallbackInfo& info) {
  Args a(info, "setRngState");
  Napi::Object o = a.object(0);
  std::string source = a.optString(1).value_or("rng state");
  Napi::Value cpu = o.Get("cpu");
  if (!isTensorHandle(cpu)) throw ArgumentError("setRngState(): state.cpu must be a Tensor");
  setGeneratorState(at::detail::getDefaultCPUGenerator(), unwrapTensor(cpu, "setRngState(): state.cpu"), source + " (cpu)");
  Napi::Value cuda = o.Get("cuda");
  if (cuda.IsArray()) {
    auto arr = cuda.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length() && static_cast<int>(i) < cudaDevices(); ++i)
      setGeneratorState(cudaGenerator(static_cast<int>(i)), unwrapTensor(arr.Get(i), "setRngState(): state.cuda"),
                        source + " (cuda:" + std::to_string(i) + ")");
  }
  return info.Env().Undefined();
}

void registerRngState(Napi::Env env, Napi::Object exports) {
  defineFunction<rngState>(env, exports, "rngState");
  defineFunction<setRngState>(env, exports, "setRngState");
}

}  // namespace

MEDTUNE_REGISTER(rng_state, registerRngState);

}  // namespace medtune
