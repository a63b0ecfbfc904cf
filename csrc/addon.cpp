// Entry point of the native addon: installs per-environment state, then every part that
// registered itself with MEDTUNE_REGISTER adds its functions.
#include "common/registry.h"
#include "runtime/addon_state.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  medtune::installAddonState(env);
  medtune::registerAll(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(medtune, Init)
