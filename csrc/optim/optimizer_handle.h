// The JavaScript handle of an optimizer (shared with the training step, which steps it on the
// compute worker).
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "common/handle.h"
#include "optim/optimizer.h"

namespace medtune::optim {

inline constexpr const char* kOptimizerHandle = "Optimizer";

inline std::shared_ptr<Optimizer> unwrapOptimizer(Napi::Value value, const std::string& context) {
  return unwrapHandle<Optimizer>(value, kOptimizerHandle, context);
}

}  // namespace medtune::optim
