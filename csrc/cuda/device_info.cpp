// Device list and CUDA runtime/driver versions, straight from the CUDA runtime API (no ATen
// CUDA context headers, so a toolkit with only cudart headers is enough to build this).
#include "cuda/device_info.h"

#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAFunctions.h>
#include <cuda_runtime_api.h>

#include <string>

namespace medtune {

namespace {

// CUDA encodes versions as 1000 * major + 10 * minor.
std::string versionString(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }

}  // namespace

// The CUDA version compiled in (as torch.version.cuda): asking the runtime instead fails on a
// machine without a driver (cudaErrorInsufficientDriver), where buildInfo() must still work.
std::string cudaRuntimeVersion() { return versionString(CUDART_VERSION); }

CudaStatus cudaStatus() {
  CudaStatus s;
  int runtime = 0;
  if (cudaRuntimeGetVersion(&runtime) == cudaSuccess) s.runtimeVersion = versionString(runtime);
  (void)cudaGetLastError();
  int driver = 0;
  if (cudaDriverGetVersion(&driver) == cudaSuccess && driver > 0) s.driverVersion = versionString(driver);
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    s.error = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
    (void)cudaGetLastError();  // not sticky; clear it so later CUDA calls do not see it
    count = 0;
  }
  s.deviceCount = count;
  return s;
}

Napi::Value cudaDeviceList(Napi::Env env) {
  const int count = c10::cuda::device_count();
  Napi::Array out = Napi::Array::New(env, count);
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    C10_CUDA_CHECK(cudaGetDeviceProperties(&prop, i));
    Napi::Object d = Napi::Object::New(env);
    d.Set("index", i);
    d.Set("name", std::string(prop.name));
    d.Set("totalMemory", static_cast<double>(prop.totalGlobalMem));
    d.Set("capability", std::to_string(prop.major) + "." + std::to_string(prop.minor));
    d.Set("multiProcessors", prop.multiProcessorCount);
    out.Set(static_cast<uint32_t>(i), d);
  }
  return out;
}

}  // namespace medtune
