#include "tensor/dtype.h"

#include <torch/cuda.h>

#include <regex>

#include "common/errors.h"

namespace medtune {

namespace {
struct DtypeName {
  const char* name;
  at::ScalarType type;
};
constexpr DtypeName kDtypes[] = {
    {"float32", at::kFloat}, {"float16", at::kHalf},  {"bfloat16", at::kBFloat16}, {"float64", at::kDouble},
    {"int64", at::kLong},    {"int32", at::kInt},     {"int16", at::kShort},       {"int8", at::kChar},
    {"uint8", at::kByte},    {"bool", at::kBool},
};
}  // namespace

at::ScalarType parseDtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return d.type;
  std::string known;
  for (const auto& d : kDtypes) known += std::string(known.empty() ? "" : ", ") + d.name;
  throw ArgumentError("unknown dtype '" + name + "' (expected one of " + known + ")");
}

std::string dtypeName(at::ScalarType type) {
  for (const auto& d : kDtypes)
    if (type == d.type) return d.name;
  return c10::toString(type);
}

c10::Device parseDevice(const std::string& name) {
  static const std::regex pattern("^(cpu|cuda)(:(\\d+))?$");
  std::smatch m;
  if (!std::regex_match(name, m, pattern))
    throw ArgumentError("unknown device '" + name + "' (expected 'cpu', 'cuda' or 'cuda:N')");
  if (m[1] == "cpu") return c10::Device(c10::kCPU);
  if (!torch::cuda::is_available()) {
#ifdef MEDTUNE_WITH_CUDA
    throw CodedError("MEDTUNE_NO_CUDA", "device '" + name + "' requested but no CUDA device is available (driver missing or CUDA_VISIBLE_DEVICES empty)");
#else
    throw CodedError("MEDTUNE_NO_CUDA", "device '" + name + "' requested but this medtune build links a CPU-only libtorch (run `medtune doctor`)");
#endif
  }
  int index = m[3].matched ? std::stoi(m[3]) : 0;
  int count = static_cast<int>(torch::cuda::device_count());
  if (index >= count)
    throw ArgumentError("device '" + name + "' does not exist: " + std::to_string(count) + " CUDA device(s) visible");
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

std::string deviceName(const c10::Device& device) { return device.str(); }

}  // namespace medtune
