// Names of dtypes and devices as JavaScript spells them ('float32', 'bfloat16', 'cuda:1').
#pragma once
#include <ATen/ATen.h>

#include <string>

namespace medtune {

at::ScalarType parseDtype(const std::string& name);
std::string dtypeName(at::ScalarType type);

// Parses 'cpu', 'cuda', 'cuda:N'; a CUDA device on a build or machine without CUDA is an Error
// that says why.
c10::Device parseDevice(const std::string& name);
std::string deviceName(const c10::Device& device);

}  // namespace medtune
