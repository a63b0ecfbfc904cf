// Precompiled header: libtorch and node-addon-api are the bulk of every translation unit's
// compile time, so they are parsed once (CMakeLists.txt: target_precompile_headers).
#pragma once
#include <torch/torch.h>
#include <ATen/ATen.h>
#include <napi.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>
