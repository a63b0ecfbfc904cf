// CUDA facts for the rest of the addon: devices, runtime/driver versions, caching-allocator
// statistics. Implemented in csrc/cuda/*.cpp, which only CUDA builds compile (CMakeLists.txt);
// callers use these only under MEDTUNE_WITH_CUDA. This header itself needs no CUDA headers.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

namespace medtune {

// [{ index, name, totalMemory, capability: "9.0", multiProcessors }] for each visible device.
Napi::Value cudaDeviceList(Napi::Env env);
// The CUDA runtime version the addon was compiled against, "13.0" (its libcudart soname major).
std::string cudaRuntimeVersion();

struct CudaStatus {
  int deviceCount = 0;
  std::string runtimeVersion;  // the libcudart loaded in this process; empty if it cannot say
  std::string driverVersion;  // empty when no driver is installed
  std::string error;          // why no device is visible (cudaGetDeviceCount's error), or empty
};
CudaStatus cudaStatus();

// Bytes from libtorch's CUDA caching allocator for one device ("AGGREGATE" pool statistics,
// the numbers torch.cuda.memory_stats() reports).
struct CudaMemoryStats {
  int64_t allocated = 0;       // allocated_bytes.all.current  (torch.cuda.memory_allocated)
  int64_t peakAllocated = 0;   // allocated_bytes.all.peak     (torch.cuda.max_memory_allocated)
  int64_t reserved = 0;        // reserved_bytes.all.current   (torch.cuda.memory_reserved)
  int64_t peakReserved = 0;    // reserved_bytes.all.peak      (torch.cuda.max_memory_reserved)
  int64_t active = 0;          // active_bytes.all.current
  int64_t allocRetries = 0;    // num_alloc_retries: cudaMalloc failures that flushed the cache
  int64_t ooms = 0;            // num_ooms
};
// `device` must be in [0, deviceCount); callers check (these throw c10::Error otherwise).
CudaMemoryStats cudaMemoryStats(int device);
void cudaResetPeakMemoryStats(int device);
// Returns cached, unused blocks to the driver (torch.cuda.empty_cache()).
void cudaEmptyCache();

}  // namespace medtune
