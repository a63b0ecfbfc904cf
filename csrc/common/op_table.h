// Many tensor functions share one shape (tensor in, tensor out). They are registered from tables:
// one guarded callback per shape, with the op's name and function pointer as callback data.
#pragma once
#include <ATen/ATen.h>
#include <napi.h>

#include "common/errors.h"

namespace medtune {

template <typename Fn>
struct NamedOp {
  const char* name;
  Fn fn;
};

template <typename Fn>
const NamedOp<Fn>& opOf(const Napi::CallbackInfo& info) {
  return *static_cast<const NamedOp<Fn>*>(info.Data());
}

template <Napi::Value (*F)(const Napi::CallbackInfo&), typename Fn, size_t N>
void defineOps(Napi::Env env, Napi::Object target, const NamedOp<Fn> (&ops)[N]) {
  for (const auto& op : ops)
    target.Set(op.name, Napi::Function::New(env, guarded<F>, op.name, const_cast<NamedOp<Fn>*>(&op)));
}

}  // namespace medtune
