#include "tensor/tensor_box.h"

#include <atomic>

#include "common/errors.h"

namespace medtune {

namespace {

std::atomic<int64_t> gLiveTensors{0};

int64_t hostBytes(const at::Tensor& t) {
  return (t.defined() && t.device().is_cpu()) ? static_cast<int64_t>(t.nbytes()) : 0;
}

void releaseBox(Napi::Env env, TensorBox* box, bool adjustMemory) {
  if (!box->tensor.defined()) return;
  box->tensor.reset();
  gLiveTensors.fetch_sub(1, std::memory_order_relaxed);
  if (adjustMemory && box->externalBytes) Napi::MemoryManagement::AdjustExternalMemory(env, -box->externalBytes);
  box->externalBytes = 0;
}

TensorBox* boxOf(Napi::Value value) {
  if (!value.IsExternal()) return nullptr;
  auto* box = value.As<Napi::External<TensorBox>>().Data();
  return (box && box->magic == TensorBox::kMagic) ? box : nullptr;
}

}  // namespace

Napi::Value wrapTensor(Napi::Env env, at::Tensor t) {
  if (!t.defined()) return env.Null();
  auto* box = new TensorBox();
  box->externalBytes = hostBytes(t);
  box->tensor = std::move(t);
  gLiveTensors.fetch_add(1, std::memory_order_relaxed);
  if (box->externalBytes) Napi::MemoryManagement::AdjustExternalMemory(env, box->externalBytes);
  return Napi::External<TensorBox>::New(env, box, [](Napi::Env env, TensorBox* b) {
    releaseBox(env, b, true);
    delete b;
  });
}

bool isTensorHandle(Napi::Value value) { return boxOf(value) != nullptr; }

const at::Tensor& unwrapTensor(Napi::Value value, const std::string& context) {
  TensorBox* box = boxOf(value);
  if (!box) throw ArgumentError(context + ": expected a Tensor");
  if (!box->tensor.defined()) throw CodedError("MEDTUNE_DISPOSED", context + ": the tensor was disposed");
  return box->tensor;
}

void disposeTensor(Napi::Env env, Napi::Value value) {
  if (TensorBox* box = boxOf(value)) releaseBox(env, box, true);
}

int64_t liveTensorCount() { return gLiveTensors.load(std::memory_order_relaxed); }

}  // namespace medtune
