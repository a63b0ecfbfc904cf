#include "runtime/addon_state.h"

namespace medtune {

void installAddonState(Napi::Env env) { env.SetInstanceData<AddonState>(new AddonState()); }

AddonState& addonState(Napi::Env env) { return *env.GetInstanceData<AddonState>(); }

ComputeQueue& computeQueue(Napi::Env env) {
  AddonState& state = addonState(env);
  if (!state.queue) state.queue = std::make_unique<ComputeQueue>(env);
  return *state.queue;
}

}  // namespace medtune
