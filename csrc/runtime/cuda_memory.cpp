// CUDA status and caching-allocator statistics for TypeScript. Compiled into every build: a
// CPU build answers "not compiled in" (and a CUDA build without a visible device says why)
// instead of throwing, so memory reports and `medtune doctor` need no variant checks. Only a
// device index that cannot exist is an error.
#include <string>

#include "common/args.h"
#include "common/registry.h"
#include "cuda/device_info.h"

namespace medtune {

namespace {

#ifndef MEDTUNE_WITH_CUDA
constexpr const char* kNotCompiled = "CUDA is not compiled into this medtune build (cpu variant)";
#endif

// Why there are no statistics for `device`, or empty when there are; throws for a device
// index past the visible devices (that is a caller's mistake, not a property of the machine).
std::string unavailableReason(const char* fn, int64_t device) {
  if (device < 0) throw ArgumentError(std::string(fn) + "(): device must be a non-negative integer, got " + std::to_string(device));
#ifdef MEDTUNE_WITH_CUDA
  const CudaStatus s = cudaStatus();
  if (s.deviceCount == 0) return "no CUDA device is visible" + (s.error.empty() ? std::string() : " (" + s.error + ")");
  if (device >= s.deviceCount)
    throw ArgumentError(std::string(fn) + "(): there is no cuda:" + std::to_string(device) + " (" + std::to_string(s.deviceCount) + " CUDA device(s) visible)");
  return {};
#else
  return kNotCompiled;
#endif
}

Napi::Value cudaStatusJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
#ifdef MEDTUNE_WITH_CUDA
  const CudaStatus s = cudaStatus();
  out.Set("compiled", true);
  out.Set("deviceCount", s.deviceCount);
  out.Set("runtimeVersion", s.runtimeVersion.empty() ? env.Null() : Napi::String::New(env, s.runtimeVersion));
  out.Set("driverVersion", s.driverVersion.empty() ? env.Null() : Napi::String::New(env, s.driverVersion));
  out.Set("reason", s.deviceCount > 0 ? env.Null() : Napi::String::New(env, "no CUDA device is visible" + (s.error.empty() ? std::string() : " (" + s.error + ")")));
#else
  out.Set("compiled", false);
  out.Set("deviceCount", 0);
  out.Set("runtimeVersion", env.Null());
  out.Set("driverVersion", env.Null());
  out.Set("reason", kNotCompiled);
#endif
  return out;
}

// cudaMemoryStats(device): { available: true, device, allocated, peakAllocated, reserved,
// peakReserved, active, allocRetries, ooms } or { available: false, device, reason }.
Napi::Value cudaMemoryStatsJs(const Napi::CallbackInfo& info) {
  Args a(info, "cudaMemoryStats");
  const int64_t device = a.int64(0);
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("device", static_cast<double>(device));
  const std::string why = unavailableReason("cudaMemoryStats", device);
  if (!why.empty()) {
    out.Set("available", false);
    out.Set("reason", why);
    return out;
  }
#ifdef MEDTUNE_WITH_CUDA
  const CudaMemoryStats s = cudaMemoryStats(static_cast<int>(device));
  out.Set("available", true);
  out.Set("allocated", static_cast<double>(s.allocated));
  out.Set("peakAllocated", static_cast<double>(s.peakAllocated));
  out.Set("reserved", static_cast<double>(s.reserved));
  out.Set("peakReserved", static_cast<double>(s.peakReserved));
  out.Set("active", static_cast<double>(s.active));
  out.Set("allocRetries", static_cast<double>(s.allocRetries));
  out.Set("ooms", static_cast<double>(s.ooms));
#endif
  return out;
}

// cudaResetPeakMemoryStats(device): true when reset, false when there is nothing to reset.
Napi::Value cudaResetPeakMemoryStatsJs(const Napi::CallbackInfo& info) {
  Args a(info, "cudaResetPeakMemoryStats");
  const int64_t device = a.int64(0);
  if (!unavailableReason("cudaResetPeakMemoryStats", device).empty()) return Napi::Boolean::New(info.Env(), false);
#ifdef MEDTUNE_WITH_CUDA
  cudaResetPeakMemoryStats(static_cast<int>(device));
#endif
  return Napi::Boolean::New(info.Env(), true);
}

// cudaEmptyCache(): true when cached blocks were released, false without CUDA.
Napi::Value cudaEmptyCacheJs(const Napi::CallbackInfo& info) {
#ifdef MEDTUNE_WITH_CUDA
  if (cudaStatus().deviceCount == 0) return Napi::Boolean::New(info.Env(), false);
  cudaEmptyCache();
  return Napi::Boolean::New(info.Env(), true);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

void registerCudaMemory(Napi::Env env, Napi::Object exports) {
  defineFunction<cudaStatusJs>(env, exports, "cudaStatus");
  defineFunction<cudaMemoryStatsJs>(env, exports, "cudaMemoryStats");
  defineFunction<cudaResetPeakMemoryStatsJs>(env, exports, "cudaResetPeakMemoryStats");
  defineFunction<cudaEmptyCacheJs>(env, exports, "cudaEmptyCache");
}

}  // namespace

MEDTUNE_REGISTER(cuda_memory, registerCudaMemory);

}  // namespace medtune
