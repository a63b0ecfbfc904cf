// Tensor creation: from typed arrays (always copied, so JavaScript may reuse its buffer), filled
// tensors, ranges, and random tensors from the global or a seeded generator.
#include <ATen/CPUGeneratorImpl.h>

#include "common/args.h"
#include "common/errors.h"
#include "common/handle.h"
#include "common/registry.h"
#include "tensor/dtype.h"
#include "tensor/tensor_box.h"

namespace medtune {

namespace {

constexpr const char* kGenerator = "Generator";

at::TensorOptions optionsAt(const Args& a, size_t dtypeArg, size_t deviceArg, at::ScalarType fallback = at::kFloat) {
  return at::TensorOptions().dtype(a.optDtype(dtypeArg).value_or(fallback)).device(a.optDevice(deviceArg).value_or(c10::Device(c10::kCPU)));
}

at::ScalarType typedArrayDtype(napi_typedarray_type type, const std::string& where) {
  switch (type) {
    case napi_float32_array: return at::kFloat;
    case napi_float64_array: return at::kDouble;
    case napi_int32_array: return at::kInt;
    case napi_int16_array: return at::kShort;
    case napi_int8_array: return at::kChar;
    case napi_uint8_array:
    case napi_uint8_clamped_array: return at::kByte;
    case napi_bigint64_array: return at::kLong;
    case napi_uint16_array: return at::kBFloat16;  // raw 16-bit float bits; see fromTypedArray
    default: throw ArgumentError(where + ": unsupported typed array type");
  }
}

void checkShape(const std::vector<int64_t>& shape, const std::string& where) {
  for (int64_t d : shape)
    if (d < 0) throw ArgumentError(where + ": negative dimension " + std::to_string(d) + " in shape");
}

// fromTypedArray(data, shape, dtype?): copies the elements; a Uint16Array is read as the raw bits
// of bfloat16 (default) or float16 (dtype 'float16').
Napi::Value fromTypedArray(const Napi::CallbackInfo& info) {
  Args a(info, "fromTypedArray");
  if (!a[0].IsTypedArray()) a.fail(0, "a typed array");
  auto ta = a[0].As<Napi::TypedArray>();
  auto shape = a.intList(1);
  checkShape(shape, a.where(1));
  auto want = a.optDtype(2);
  at::ScalarType source = typedArrayDtype(ta.TypedArrayType(), a.where(0));
  if (source == at::kBFloat16 && want == at::kHalf) source = at::kHalf;
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  if (numel != static_cast<int64_t>(ta.ElementLength()))
    throw ArgumentError("fromTypedArray(): shape " + c10::str(at::IntArrayRef(shape)) + " holds " + std::to_string(numel) +
                        " elements but the array has " + std::to_string(ta.ElementLength()));
  auto* data = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  at::Tensor t = at::from_blob(data, shape, at::TensorOptions().dtype(source)).clone();
  if (want && *want != source) t = t.to(*want);
  return wrapTensor(info.Env(), t);
}

// zeros/ones/empty(shape, dtype?, device?)
template <at::Tensor (*F)(at::IntArrayRef, at::TensorOptions)>
Napi::Value filled(const Napi::CallbackInfo& info) {
  Args a(info, "zeros/ones/empty");
  auto shape = a.intList(0);
  checkShape(shape, a.where(0));
  return wrapTensor(info.Env(), F(shape, optionsAt(a, 1, 2)));
}
at::Tensor zerosImpl(at::IntArrayRef s, at::TensorOptions o) { return at::zeros(s, o); }
at::Tensor onesImpl(at::IntArrayRef s, at::TensorOptions o) { return at::ones(s, o); }
at::Tensor emptyImpl(at::IntArrayRef s, at::TensorOptions o) { return at::empty(s, o); }

// full(shape, value, dtype?, device?): the dtype defaults from the value as torch.full does.
Napi::Value full(const Napi::CallbackInfo& info) {
  Args a(info, "full");
  auto shape = a.intList(0);
  checkShape(shape, a.where(0));
  at::Scalar value = a.scalar(1);
  at::ScalarType fallback = value.isBoolean() ? at::kBool : value.isIntegral(false) ? at::kLong : at::kFloat;
  return wrapTensor(info.Env(), at::full(shape, value, optionsAt(a, 2, 3, fallback)));
}

// arange(start, end, step, dtype?, device?): integer inputs give int64 as in PyTorch.
Napi::Value arange(const Napi::CallbackInfo& info) {
  Args a(info, "arange");
  at::Scalar start = a.scalar(0), end = a.scalar(1), step = a.scalar(2);
  bool integral = start.isIntegral(false) && end.isIntegral(false) && step.isIntegral(false);
  return wrapTensor(info.Env(), at::arange(start, end, step, optionsAt(a, 3, 4, integral ? at::kLong : at::kFloat)));
}

Napi::Value linspace(const Napi::CallbackInfo& info) {
  Args a(info, "linspace");
  return wrapTensor(info.Env(), at::linspace(a.scalar(0), a.scalar(1), a.int64(2), optionsAt(a, 3, 4)));
}

Napi::Value eye(const Napi::CallbackInfo& info) {
  Args a(info, "eye");
  int64_t n = a.int64(0);
  int64_t m = a.optInt64(1).value_or(n);
  return wrapTensor(info.Env(), at::eye(n, m, optionsAt(a, 2, 3)));
}

std::optional<at::Generator> generatorAt(const Args& a, size_t i) {
  if (!a.has(i)) return std::nullopt;
  return *unwrapHandle<at::Generator>(a[i], kGenerator, a.where(i));
}

// Random tensors are drawn on the CPU when a seeded generator is given, then moved: the same
// seed gives the same numbers on every device.
at::Tensor onDevice(at::Tensor t, const at::TensorOptions& o) { return o.device().is_cpu() ? t : t.to(o.device()); }

// rand/randn(shape, dtype?, device?, generator?)
template <bool Normal>
Napi::Value random(const Napi::CallbackInfo& info) {
  Args a(info, Normal ? "randn" : "rand");
  auto shape = a.intList(0);
  checkShape(shape, a.where(0));
  auto options = optionsAt(a, 1, 2);
  auto gen = generatorAt(a, 3);
  at::Tensor t;
  if (gen) {
    auto cpu = options.device(c10::kCPU);
    t = onDevice(Normal ? at::randn(shape, gen, cpu) : at::rand(shape, gen, cpu), options);
  } else {
    t = Normal ? at::randn(shape, options) : at::rand(shape, options);
  }
  return wrapTensor(info.Env(), t);
}

// randint(low, high, shape, dtype?, device?, generator?)
Napi::Value randint(const Napi::CallbackInfo& info) {
  Args a(info, "randint");
  int64_t low = a.int64(0), high = a.int64(1);
  auto shape = a.intList(2);
  auto options = optionsAt(a, 3, 4, at::kLong);
  auto gen = generatorAt(a, 5);
  at::Tensor t = gen ? onDevice(at::randint(low, high, shape, gen, options.device(c10::kCPU)), options)
                     : at::randint(low, high, shape, options);
  return wrapTensor(info.Env(), t);
}

// randperm(n, dtype?, device?, generator?)
Napi::Value randperm(const Napi::CallbackInfo& info) {
  Args a(info, "randperm");
  int64_t n = a.int64(0);
  auto options = optionsAt(a, 1, 2, at::kLong);
  auto gen = generatorAt(a, 3);
  at::Tensor t = gen ? onDevice(at::randperm(n, gen, options.device(c10::kCPU)), options) : at::randperm(n, options);
  return wrapTensor(info.Env(), t);
}

// zerosLike/onesLike(t, dtype?), fullLike(t, value, dtype?)
Napi::Value zerosLike(const Napi::CallbackInfo& info) {
  Args a(info, "zerosLike");
  const at::Tensor& t = a.tensor(0);
  return wrapTensor(info.Env(), at::zeros_like(t, t.options().dtype(a.optDtype(1).value_or(t.scalar_type()))));
}
Napi::Value onesLike(const Napi::CallbackInfo& info) {
  Args a(info, "onesLike");
  const at::Tensor& t = a.tensor(0);
  return wrapTensor(info.Env(), at::ones_like(t, t.options().dtype(a.optDtype(1).value_or(t.scalar_type()))));
}
Napi::Value fullLike(const Napi::CallbackInfo& info) {
  Args a(info, "fullLike");
  const at::Tensor& t = a.tensor(0);
  return wrapTensor(info.Env(), at::full_like(t, a.scalar(1), t.options().dtype(a.optDtype(2).value_or(t.scalar_type()))));
}

// scalarTensor(value, dtype?, device?)
Napi::Value scalarTensor(const Napi::CallbackInfo& info) {
  Args a(info, "scalarTensor");
  at::Scalar value = a.scalar(0);
  at::ScalarType fallback = value.isBoolean() ? at::kBool : value.isIntegral(false) ? at::kLong : at::kFloat;
  return wrapTensor(info.Env(), at::scalar_tensor(value, optionsAt(a, 1, 2, fallback)));
}

// generatorNew(seed): a CPU generator with its own state.
Napi::Value generatorNew(const Napi::CallbackInfo& info) {
  Args a(info, "Generator");
  uint64_t seed = static_cast<uint64_t>(a.int64(0));
  auto gen = std::make_shared<at::Generator>(at::detail::createCPUGenerator(seed));
  return wrapHandle(info.Env(), gen, kGenerator);
}

Napi::Value generatorManualSeed(const Napi::CallbackInfo& info) {
  Args a(info, "Generator.manualSeed");
  auto gen = unwrapHandle<at::Generator>(a[0], kGenerator, a.where(0));
  std::lock_guard<std::mutex> lock(gen->mutex());
  gen->set_current_seed(static_cast<uint64_t>(a.int64(1)));
  return info.Env().Undefined();
}

Napi::Value generatorInitialSeed(const Napi::CallbackInfo& info) {
  Args a(info, "Generator.initialSeed");
  auto gen = unwrapHandle<at::Generator>(a[0], kGenerator, a.where(0));
  return Napi::Number::New(info.Env(), static_cast<double>(gen->current_seed()));
}

Napi::Value disposeHandleFn(const Napi::CallbackInfo& info) {
  disposeHandle(info[0]);
  return info.Env().Undefined();
}

void registerTensorCreation(Napi::Env env, Napi::Object exports) {
  defineFunction<fromTypedArray>(env, exports, "fromTypedArray");
  defineFunction<filled<zerosImpl>>(env, exports, "zeros");
  defineFunction<filled<onesImpl>>(env, exports, "ones");
  defineFunction<filled<emptyImpl>>(env, exports, "empty");
  defineFunction<full>(env, exports, "full");
  defineFunction<arange>(env, exports, "arange");
  defineFunction<linspace>(env, exports, "linspace");
  defineFunction<eye>(env, exports, "eye");
  defineFunction<random<false>>(env, exports, "rand");
  defineFunction<random<true>>(env, exports, "randn");
  defineFunction<randint>(env, exports, "randint");
  defineFunction<randperm>(env, exports, "randperm");
  defineFunction<zerosLike>(env, exports, "zerosLike");
  defineFunction<onesLike>(env, exports, "onesLike");
  defineFunction<fullLike>(env, exports, "fullLike");
  defineFunction<scalarTensor>(env, exports, "scalarTensor");
  defineFunction<generatorNew>(env, exports, "generatorNew");
  defineFunction<generatorManualSeed>(env, exports, "generatorManualSeed");
  defineFunction<generatorInitialSeed>(env, exports, "generatorInitialSeed");
  defineFunction<disposeHandleFn>(env, exports, "disposeHandle");
}

}  // namespace

MEDTUNE_REGISTER(tensor_creation, registerTensorCreation);

}  // namespace medtune
