// Self-registration of the addon's parts: each source file that exports functions declares
//   MEDTUNE_REGISTER(tensor_math, registerTensorMath);
// and addon.cpp calls them all at load, so adding a part never touches a central list.
#pragma once
#include <napi.h>

#include "common/errors.h"

namespace medtune {

using RegisterFn = void (*)(Napi::Env env, Napi::Object exports);

struct Registration {
  Registration(const char* name, RegisterFn fn);
};

void registerAll(Napi::Env env, Napi::Object exports);

}  // namespace medtune

#define MEDTUNE_REGISTER(name, fn) static ::medtune::Registration medtune_registration_##name(#name, fn)
