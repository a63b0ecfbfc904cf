// Opaque handles: C++ objects owned by JavaScript values. A handle is a Node-API External that
// holds a shared_ptr; `dispose` drops it deterministically, the finalizer is only the backstop.
// Each boxed type has a distinct kind tag so a handle of one kind is never read as another.
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>
#include <string>

#include "common/errors.h"

namespace medtune {

struct HandleBox {
  static constexpr uint64_t kMagic = 0x6d6564747531ULL;  // "medtu1"
  uint64_t magic = kMagic;
  const char* kind;  // a string literal unique to the boxed type
  std::shared_ptr<void> object;
};

inline HandleBox* handleBoxOf(Napi::Value value) {
  if (!value.IsExternal()) return nullptr;
  auto* box = value.As<Napi::External<HandleBox>>().Data();
  return (box && box->magic == HandleBox::kMagic) ? box : nullptr;
}

template <typename T>
Napi::Value wrapHandle(Napi::Env env, std::shared_ptr<T> object, const char* kind) {
  auto* box = new HandleBox{HandleBox::kMagic, kind, std::static_pointer_cast<void>(std::move(object))};
  return Napi::External<HandleBox>::New(env, box, [](Napi::Env, HandleBox* b) { delete b; });
}

// Returns the object behind a handle of `kind`, or throws a TypeError naming `context`.
template <typename T>
std::shared_ptr<T> unwrapHandle(Napi::Value value, const char* kind, const std::string& context) {
  HandleBox* box = handleBoxOf(value);
  if (!box || std::string(box->kind) != kind) throw ArgumentError(context + ": expected a " + kind + " handle");
  if (!box->object) throw CodedError("MEDTUNE_DISPOSED", context + ": the " + std::string(kind) + " was disposed");
  return std::static_pointer_cast<T>(box->object);
}

// Drops the object behind any handle (idempotent).
inline void disposeHandle(Napi::Value value) {
  if (HandleBox* box = handleBoxOf(value)) box->object.reset();
}

}  // namespace medtune
