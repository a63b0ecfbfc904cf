#include "common/args.h"

#include <cmath>

#include "common/errors.h"
#include "tensor/dtype.h"
#include "tensor/tensor_box.h"

namespace medtune {

namespace {
const char* jsTypeName(Napi::Value v) {
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "boolean";
    case napi_number: return "number";
    case napi_string: return "string";
    case napi_symbol: return "symbol";
    case napi_object: return v.IsArray() ? "array" : "object";
    case napi_function: return "function";
    case napi_external: return "native handle";
    case napi_bigint: return "bigint";
  }
  return "value";
}
}  // namespace

bool Args::has(size_t i) const { return i < info_.Length() && !info_[i].IsUndefined() && !info_[i].IsNull(); }

std::string Args::where(size_t i) const { return std::string(fn_) + "(): argument " + std::to_string(i + 1); }

void Args::fail(size_t i, const std::string& expected) const {
  std::string got = i < info_.Length() ? jsTypeName(info_[i]) : "nothing";
  throw ArgumentError(where(i) + " must be " + expected + ", got " + got);
}

bool Args::isTensor(size_t i) const { return i < info_.Length() && isTensorHandle(info_[i]); }

const at::Tensor& Args::tensor(size_t i) const {
  if (!isTensor(i)) fail(i, "a Tensor");
  return unwrapTensor(info_[i], where(i));
}

std::optional<at::Tensor> Args::optTensor(size_t i) const {
  if (!has(i)) return std::nullopt;
  return tensor(i);
}

std::vector<at::Tensor> Args::tensorList(size_t i) const {
  if (!has(i) || !info_[i].IsArray()) fail(i, "an array of Tensors");
  auto arr = info_[i].As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value v = arr.Get(k);
    if (!isTensorHandle(v)) throw ArgumentError(where(i) + "[" + std::to_string(k) + "] must be a Tensor, got " + jsTypeName(v));
    out.push_back(unwrapTensor(v, where(i) + "[" + std::to_string(k) + "]"));
  }
  return out;
}

double Args::number(size_t i) const {
  if (i >= info_.Length() || !info_[i].IsNumber()) fail(i, "a number");
  return info_[i].As<Napi::Number>().DoubleValue();
}

std::optional<double> Args::optNumber(size_t i) const {
  if (!has(i)) return std::nullopt;
  return number(i);
}

int64_t int64FromJs(Napi::Value v, const std::string& context) {
  if (v.IsBigInt()) {
    bool lossless = false;
    int64_t r = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) throw ArgumentError(context + " is out of the int64 range");
    return r;
  }
  if (!v.IsNumber()) throw ArgumentError(context + " must be an integer, got " + jsTypeName(v));
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d) throw ArgumentError(context + " must be an integer, got " + std::to_string(d));
  return static_cast<int64_t>(d);
}

int64_t Args::int64(size_t i) const {
  if (i >= info_.Length()) fail(i, "an integer");
  return int64FromJs(info_[i], where(i));
}

std::optional<int64_t> Args::optInt64(size_t i) const {
  if (!has(i)) return std::nullopt;
  return int64(i);
}

bool Args::boolean(size_t i, bool fallback) const {
  if (!has(i)) return fallback;
  if (!info_[i].IsBoolean()) fail(i, "a boolean");
  return info_[i].As<Napi::Boolean>().Value();
}

std::string Args::string(size_t i) const {
  if (i >= info_.Length() || !info_[i].IsString()) fail(i, "a string");
  return info_[i].As<Napi::String>().Utf8Value();
}

std::optional<std::string> Args::optString(size_t i) const {
  if (!has(i)) return std::nullopt;
  return string(i);
}

std::vector<int64_t> Args::intList(size_t i) const {
  if (i < info_.Length() && info_[i].IsNumber()) return {int64(i)};
  if (!has(i) || !info_[i].IsArray()) fail(i, "an integer or an array of integers");
  auto arr = info_[i].As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) out[k] = int64FromJs(arr.Get(k), where(i) + "[" + std::to_string(k) + "]");
  return out;
}

std::optional<std::vector<int64_t>> Args::optIntList(size_t i) const {
  if (!has(i)) return std::nullopt;
  return intList(i);
}

at::Scalar scalarFromJs(Napi::Value v, const std::string& context) {
  if (v.IsBoolean()) return at::Scalar(v.As<Napi::Boolean>().Value());
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    // JavaScript has one number type; an integral value acts like a Python int (it does not
    // promote an integer tensor to float), anything else like a Python float.
    if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9007199254740992.0) return at::Scalar(static_cast<int64_t>(d));
    return at::Scalar(d);
  }
  if (v.IsBigInt()) return at::Scalar(int64FromJs(v, context));
  throw ArgumentError(context + " must be a number or boolean, got " + jsTypeName(v));
}

at::Scalar Args::scalar(size_t i) const {
  if (i >= info_.Length()) fail(i, "a number");
  return scalarFromJs(info_[i], where(i));
}

at::Tensor Args::tensorOrScalar(size_t i) const {
  if (isTensor(i)) return tensor(i);
  if (i >= info_.Length() || !(info_[i].IsNumber() || info_[i].IsBoolean() || info_[i].IsBigInt())) fail(i, "a Tensor, number or boolean");
  at::Tensor t = c10::scalar_to_tensor(scalar(i));
  t.unsafeGetTensorImpl()->set_wrapped_number(true);
  return t;
}

at::ScalarType Args::dtype(size_t i) const { return parseDtype(string(i)); }

std::optional<at::ScalarType> Args::optDtype(size_t i) const {
  if (!has(i)) return std::nullopt;
  return dtype(i);
}

c10::Device Args::device(size_t i) const { return parseDevice(string(i)); }

std::optional<c10::Device> Args::optDevice(size_t i) const {
  if (!has(i)) return std::nullopt;
  return device(i);
}

Napi::Object Args::object(size_t i) const {
  if (!has(i) || !info_[i].IsObject()) fail(i, "an object");
  return info_[i].As<Napi::Object>();
}

Napi::Function Args::function(size_t i) const {
  if (!has(i) || !info_[i].IsFunction()) fail(i, "a function");
  return info_[i].As<Napi::Function>();
}

Napi::Array intListToJs(Napi::Env env, at::IntArrayRef values) {
  Napi::Array arr = Napi::Array::New(env, values.size());
  for (size_t k = 0; k < values.size(); ++k) arr.Set(static_cast<uint32_t>(k), Napi::Number::New(env, static_cast<double>(values[k])));
  return arr;
}

}  // namespace medtune
