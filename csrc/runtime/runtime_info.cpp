// What this addon was built against and what it runs on: libtorch version, build variant,
// devices, threads; plus the global seed and thread settings.
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <ATen/Context.h>
#include <torch/cuda.h>
#include <torch/utils.h>
#include <torch/version.h>

#include "common/args.h"
#include "common/registry.h"
#include "cuda/device_info.h"  // implemented in csrc/cuda/, compiled into CUDA builds only
#include "runtime/compute_queue.h"

namespace medtune {

namespace {

Napi::Value buildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("torchVersion", TORCH_VERSION);
  out.Set("torchRoot", MEDTUNE_TORCH_ROOT);
#ifdef MEDTUNE_WITH_CUDA
  out.Set("variant", "cuda");
  out.Set("cudaVersion", cudaRuntimeVersion());
#else
  out.Set("variant", "cpu");
  out.Set("cudaVersion", env.Null());
#endif
  out.Set("cxx11Abi", static_cast<bool>(_GLIBCXX_USE_CXX11_ABI));
  // A prebuilt binary (npm run prebuild) carries no path to the build machine's libtorch;
  // lib/torch/native.ts loads the user's libtorch before it.
#ifdef MEDTUNE_PREBUILD
  out.Set("prebuild", true);
#else
  out.Set("prebuild", false);
#endif
  out.Set("napiVersion", NAPI_VERSION);
  return out;
}

Napi::Value runtimeInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("cudaAvailable", torch::cuda::is_available());
  out.Set("cudaDeviceCount", static_cast<double>(torch::cuda::device_count()));
  out.Set("numThreads", requestedThreads());
  out.Set("interopThreads", at::get_num_interop_threads());
  out.Set("mkl", at::hasMKL());
  out.Set("mkldnn", at::hasMKLDNN());
  out.Set("openmp", static_cast<bool>(AT_PARALLEL_OPENMP));
  out.Set("parallelInfo", at::get_parallel_info());
  return out;
}

Napi::Value cudaDevices(const Napi::CallbackInfo& info) {
#ifdef MEDTUNE_WITH_CUDA
  return cudaDeviceList(info.Env());
#else
  return Napi::Array::New(info.Env(), 0);
#endif
}

Napi::Value setNumThreads(const Napi::CallbackInfo& info) {
  Args a(info, "setNumThreads");
  int64_t n = a.int64(0);
  if (n < 1) throw ArgumentError("setNumThreads(): the thread count must be at least 1");
  setRequestedThreads(static_cast<int>(n));
  return info.Env().Undefined();
}

Napi::Value getNumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), requestedThreads()); }

// manualSeed(seed): seeds the CPU and every CUDA generator, as torch.manual_seed does.
Napi::Value manualSeed(const Napi::CallbackInfo& info) {
  Args a(info, "manualSeed");
  torch::manual_seed(static_cast<uint64_t>(a.int64(0)));
  return info.Env().Undefined();
}

void registerRuntime(Napi::Env env, Napi::Object exports) {
  defineFunction<buildInfo>(env, exports, "buildInfo");
  defineFunction<runtimeInfo>(env, exports, "runtimeInfo");
  defineFunction<cudaDevices>(env, exports, "cudaDevices");
  defineFunction<setNumThreads>(env, exports, "setNumThreads");
  defineFunction<getNumThreads>(env, exports, "getNumThreads");
  defineFunction<manualSeed>(env, exports, "manualSeed");
}

}  // namespace

MEDTUNE_REGISTER(runtime, registerRuntime);

}  // namespace medtune
