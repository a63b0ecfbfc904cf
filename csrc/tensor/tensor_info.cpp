// Reading tensors back: metadata, typed-array copies, single values, printing, disposal.
#include <torch/csrc/autograd/function.h>

#include <sstream>

#include "common/args.h"
#include "common/errors.h"
#include "common/registry.h"
#include "tensor/dtype.h"
#include "tensor/tensor_box.h"

namespace medtune {

namespace {

Napi::Value meta(const Napi::CallbackInfo& info) {
  Args a(info, "meta");
  const at::Tensor& t = a.tensor(0);
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("shape", intListToJs(env, t.sizes()));
  out.Set("dtype", dtypeName(t.scalar_type()));
  out.Set("device", deviceName(t.device()));
  return out;
}

Napi::Value strides(const Napi::CallbackInfo& info) {
  Args a(info, "strides");
  return intListToJs(info.Env(), a.tensor(0).strides());
}

Napi::Value flags(const Napi::CallbackInfo& info) {
  Args a(info, "flags");
  const at::Tensor& t = a.tensor(0);
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("requiresGrad", t.requires_grad());
  out.Set("isLeaf", t.is_leaf());
  out.Set("isContiguous", t.is_contiguous());
  out.Set("storageOffset", static_cast<double>(t.storage_offset()));
  out.Set("gradFn", t.grad_fn() ? Napi::Value(Napi::String::New(env, t.grad_fn()->name())) : env.Null());
  return out;
}

template <typename T>
Napi::Value copyOut(Napi::Env env, const at::Tensor& t, napi_typedarray_type type) {
  auto n = static_cast<size_t>(t.numel());
  auto arr = Napi::TypedArrayOf<T>::New(env, n, type);
  if (n) std::memcpy(arr.Data(), t.data_ptr(), n * sizeof(T));
  return arr;
}

// toTypedArray(t): a contiguous CPU copy. bfloat16 and float16 come back as Float32Array.
Napi::Value toTypedArray(const Napi::CallbackInfo& info) {
  Args a(info, "toTypedArray");
  at::Tensor t = a.tensor(0).detach();
  if (t.scalar_type() == at::kBFloat16 || t.scalar_type() == at::kHalf) t = t.to(at::kFloat);
  t = t.to(c10::kCPU).contiguous();
  Napi::Env env = info.Env();
  switch (t.scalar_type()) {
    case at::kFloat: return copyOut<float>(env, t, napi_float32_array);
    case at::kDouble: return copyOut<double>(env, t, napi_float64_array);
    case at::kInt: return copyOut<int32_t>(env, t, napi_int32_array);
    case at::kShort: return copyOut<int16_t>(env, t, napi_int16_array);
    case at::kChar: return copyOut<int8_t>(env, t, napi_int8_array);
    case at::kByte: return copyOut<uint8_t>(env, t, napi_uint8_array);
    case at::kBool: return copyOut<uint8_t>(env, t, napi_uint8_array);
    case at::kLong: return copyOut<int64_t>(env, t, napi_bigint64_array);
    default: throw ArgumentError("toTypedArray(): unsupported dtype " + dtypeName(t.scalar_type()));
  }
}

// item(t): the single value of a one-element tensor, as a number (or boolean).
Napi::Value item(const Napi::CallbackInfo& info) {
  Args a(info, "item");
  const at::Tensor& t = a.tensor(0);
  if (t.numel() != 1)
    throw ArgumentError("item(): the tensor has " + std::to_string(t.numel()) + " elements (shape " + c10::str(t.sizes()) + "), expected exactly one");
  at::Scalar s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(info.Env(), s.toBool());
  if (s.isIntegral(false)) return Napi::Number::New(info.Env(), static_cast<double>(s.toLong()));
  return Napi::Number::New(info.Env(), s.toDouble());
}

Napi::Value toString(const Napi::CallbackInfo& info) {
  Args a(info, "toString");
  std::ostringstream os;
  os << a.tensor(0);
  return Napi::String::New(info.Env(), os.str());
}

// to(t, dtype?, device?, nonBlocking?, copy?)
Napi::Value to(const Napi::CallbackInfo& info) {
  Args a(info, "to");
  const at::Tensor& t = a.tensor(0);
  auto dtype = a.optDtype(1).value_or(t.scalar_type());
  auto device = a.optDevice(2).value_or(t.device());
  return wrapTensor(info.Env(), t.to(device, dtype, a.boolean(3, false), a.boolean(4, false)));
}

Napi::Value dispose(const Napi::CallbackInfo& info) {
  disposeTensor(info.Env(), info[0]);
  return info.Env().Undefined();
}

Napi::Value isDisposed(const Napi::CallbackInfo& info) {
  Args a(info, "isDisposed");
  if (!isTensorHandle(a[0])) a.fail(0, "a Tensor");
  try {
    unwrapTensor(a[0], "isDisposed");
    return Napi::Boolean::New(info.Env(), false);
  } catch (const CodedError&) {
    return Napi::Boolean::New(info.Env(), true);
  }
}

Napi::Value liveTensors(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(liveTensorCount()));
}

Napi::Value isTensor(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), isTensorHandle(info[0])); }

void registerTensorInfo(Napi::Env env, Napi::Object exports) {
  defineFunction<meta>(env, exports, "meta");
  defineFunction<strides>(env, exports, "strides");
  defineFunction<flags>(env, exports, "flags");
  defineFunction<toTypedArray>(env, exports, "toTypedArray");
  defineFunction<item>(env, exports, "item");
  defineFunction<toString>(env, exports, "toString");
  defineFunction<to>(env, exports, "to");
  defineFunction<dispose>(env, exports, "dispose");
  defineFunction<isDisposed>(env, exports, "isDisposed");
  defineFunction<liveTensors>(env, exports, "liveTensors");
  defineFunction<isTensor>(env, exports, "isTensor");
}

}  // namespace

MEDTUNE_REGISTER(tensor_info, registerTensorInfo);

}  // namespace medtune
