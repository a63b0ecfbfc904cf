// libtorch's CUDA caching allocator: statistics, peak reset and cache release, the C++ side of
// torch.cuda.memory_allocated / max_memory_allocated / memory_reserved / empty_cache.
#include "cuda/device_info.h"

#include <ATen/Context.h>
#include <c10/core/Allocator.h>
#include <c10/cuda/CUDACachingAllocator.h>

namespace medtune {

namespace {

constexpr auto kAggregate = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);

// The allocator sizes its per-device tables when ATen initialises CUDA (the first CUDA tensor
// does it too); asking for statistics before that would be an "invalid device" error.
void ensureCudaInitialised() { at::globalContext().lazyInitDevice(c10::DeviceType::CUDA); }

}  // namespace

CudaMemoryStats cudaMemoryStats(int device) {
  ensureCudaInitialised();
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
  CudaMemoryStats out;
  out.allocated = stats.allocated_bytes[kAggregate].current;
  out.peakAllocated = stats.allocated_bytes[kAggregate].peak;
  out.reserved = stats.reserved_bytes[kAggregate].current;
  out.peakReserved = stats.reserved_bytes[kAggregate].peak;
  out.active = stats.active_bytes[kAggregate].current;
  out.allocRetries = stats.num_alloc_retries;
  out.ooms = stats.num_ooms;
  return out;
}

void cudaResetPeakMemoryStats(int device) {
  ensureCudaInitialised();
  c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(device));
}

void cudaEmptyCache() {
  ensureCudaInitialised();
  c10::cuda::CUDACachingAllocator::emptyCache();
}

}  // namespace medtune
