// Per-environment state of the addon (Node workers each get their own).
#pragma once
#include <napi.h>

#include <memory>

#include "runtime/compute_queue.h"

namespace medtune {

struct AddonState {
  std::unique_ptr<ComputeQueue> queue;  // created on first async call
  ~AddonState() {
    if (queue) queue->shutdown();
  }
};

AddonState& addonState(Napi::Env env);
void installAddonState(Napi::Env env);

}  // namespace medtune
