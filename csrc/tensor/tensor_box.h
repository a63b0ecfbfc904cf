// Tensors held by JavaScript. A TensorBox owns one at::Tensor reference; the count of boxes still
// holding a tensor is liveTensors(), which tests use to prove that scopes free what they should.
// CPU bytes are reported to V8 as external memory so that the garbage collector (the backstop,
// never the plan) sees native memory pressure.
#pragma once
#include <ATen/ATen.h>
#include <napi.h>

#include <string>

namespace medtune {

struct TensorBox {
  static constexpr uint64_t kMagic = 0x74656e736f72ULL;  // "tensor"
  uint64_t magic = kMagic;
  at::Tensor tensor;
  int64_t externalBytes = 0;
};

// Creates a JavaScript handle owning `t` (an undefined tensor becomes null).
Napi::Value wrapTensor(Napi::Env env, at::Tensor t);

// Whether `value` is a tensor handle (disposed or not).
bool isTensorHandle(Napi::Value value);

// The tensor behind a handle; throws a TypeError (not a tensor) or MEDTUNE_DISPOSED naming `context`.
const at::Tensor& unwrapTensor(Napi::Value value, const std::string& context);

// Releases the tensor now; later use is an Error, a second dispose is a no-op.
void disposeTensor(Napi::Env env, Napi::Value value);

int64_t liveTensorCount();

}  // namespace medtune
