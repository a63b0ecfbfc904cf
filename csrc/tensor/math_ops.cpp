// Elementwise math, comparisons, matrix products and in-place updates. Scalars mix with tensors
// under PyTorch's promotion rules for Python numbers.
#include "common/args.h"
#include "common/op_table.h"
#include "common/registry.h"
#include "tensor/tensor_box.h"

namespace medtune {

namespace {

using Binary = at::Tensor (*)(const at::Tensor&, const at::Tensor&);
using Unary = at::Tensor (*)(const at::Tensor&);

Napi::Value binaryOp(const Napi::CallbackInfo& info) {
  const auto& op = opOf<Binary>(info);
  Args a(info, op.name);
  at::Tensor lhs = a.isTensor(0) ? a.tensor(0) : a.tensorOrScalar(0);
  if (!a.isTensor(0) && !a.isTensor(1)) a.fail(0, "a Tensor (at least one operand must be a Tensor)");
  return wrapTensor(info.Env(), op.fn(lhs, a.tensorOrScalar(1)));
}

Napi::Value unaryOp(const Napi::CallbackInfo& info) {
  const auto& op = opOf<Unary>(info);
  Args a(info, op.name);
  return wrapTensor(info.Env(), op.fn(a.tensor(0)));
}

// In-place: the tensor is updated and nothing new is returned.
using InPlace = void (*)(const at::Tensor&, const at::Tensor&);
Napi::Value inPlaceOp(const Napi::CallbackInfo& info) {
  const auto& op = opOf<InPlace>(info);
  Args a(info, op.name);
  op.fn(a.tensor(0), a.tensorOrScalar(1));
  return info.Env().Undefined();
}

#define BIN(js, expr) {js, [](const at::Tensor& a, const at::Tensor& b) -> at::Tensor { return expr; }}
const NamedOp<Binary> kBinary[] = {
    BIN("add", at::add(a, b)),
    BIN("sub", at::sub(a, b)),
    BIN("mul", at::mul(a, b)),
    BIN("div", at::div(a, b)),
    BIN("floorDivide", at::div(a, b, "floor")),
    BIN("pow", at::pow(a, b)),
    BIN("remainder", at::remainder(a, b)),
    BIN("fmod", at::fmod(a, b)),
    BIN("maximum", at::maximum(a, b)),
    BIN("minimum", at::minimum(a, b)),
    BIN("atan2", at::atan2(a, b)),
    BIN("eq", at::eq(a, b)),
    BIN("ne", at::ne(a, b)),
    BIN("lt", at::lt(a, b)),
    BIN("le", at::le(a, b)),
    BIN("gt", at::gt(a, b)),
    BIN("ge", at::ge(a, b)),
    BIN("logicalAnd", at::logical_and(a, b)),
    BIN("logicalOr", at::logical_or(a, b)),
    BIN("logicalXor", at::logical_xor(a, b)),
    BIN("matmul", at::matmul(a, b)),
    BIN("mm", at::mm(a, b)),
    BIN("bmm", at::bmm(a, b)),
    BIN("outer", at::outer(a, b)),
    BIN("dot", at::dot(a, b)),
};
#undef BIN

#define UN(js, expr) {js, [](const at::Tensor& t) -> at::Tensor { return expr; }}
const NamedOp<Unary> kUnary[] = {
    UN("neg", at::neg(t)),         UN("abs", at::abs(t)),           UN("exp", at::exp(t)),
    UN("log", at::log(t)),         UN("log1p", at::log1p(t)),       UN("expm1", at::expm1(t)),
    UN("log2", at::log2(t)),       UN("sqrt", at::sqrt(t)),         UN("rsqrt", at::rsqrt(t)),
    UN("square", at::square(t)),   UN("reciprocal", at::reciprocal(t)), UN("sign", at::sign(t)),
    UN("sin", at::sin(t)),         UN("cos", at::cos(t)),           UN("tan", at::tan(t)),
    UN("tanh", at::tanh(t)),       UN("sigmoid", at::sigmoid(t)),   UN("relu", at::relu(t)),
    UN("silu", at::silu(t)),       UN("erf", at::erf(t)),           UN("floor", at::floor(t)),
    UN("ceil", at::ceil(t)),       UN("round", at::round(t)),       UN("trunc", at::trunc(t)),
    UN("logicalNot", at::logical_not(t)), UN("isnan", at::isnan(t)), UN("isinf", at::isinf(t)),
    UN("isfinite", at::isfinite(t)), UN("clone", t.clone()),         UN("contiguous", t.contiguous()),
    UN("detach", t.detach()),
};
#undef UN

#define INPL(js, expr) {js, [](const at::Tensor& a, const at::Tensor& b) { expr; }}
const NamedOp<InPlace> kInPlace[] = {
    INPL("addInPlace", const_cast<at::Tensor&>(a).add_(b)),
    INPL("subInPlace", const_cast<at::Tensor&>(a).sub_(b)),
    INPL("mulInPlace", const_cast<at::Tensor&>(a).mul_(b)),
    INPL("divInPlace", const_cast<at::Tensor&>(a).div_(b)),
    INPL("copyInPlace", const_cast<at::Tensor&>(a).copy_(b)),
    INPL("fillInPlace", const_cast<at::Tensor&>(a).fill_(b)),
};
#undef INPL

Napi::Value zeroInPlace(const Napi::CallbackInfo& info) {
  Args a(info, "zero_");
  a.tensor(0).zero_();
  return info.Env().Undefined();
}

// clamp(t, min?, max?)
Napi::Value clamp(const Napi::CallbackInfo& info) {
  Args a(info, "clamp");
  std::optional<at::Scalar> lo, hi;
  if (a.has(1)) lo = a.scalar(1);
  if (a.has(2)) hi = a.scalar(2);
  if (!lo && !hi) throw ArgumentError("clamp(): give at least one of min and max");
  return wrapTensor(info.Env(), at::clamp(a.tensor(0), lo, hi));
}

// gelu(t, approximate: 'none' | 'tanh')
Napi::Value gelu(const Napi::CallbackInfo& info) {
  Args a(info, "gelu");
  std::string approx = a.optString(1).value_or("none");
  if (approx != "none" && approx != "tanh") throw ArgumentError("gelu(): approximate must be 'none' or 'tanh'");
  return wrapTensor(info.Env(), at::gelu(a.tensor(0), approx));
}

Napi::Value leakyRelu(const Napi::CallbackInfo& info) {
  Args a(info, "leakyRelu");
  return wrapTensor(info.Env(), at::leaky_relu(a.tensor(0), a.optNumber(1).value_or(0.01)));
}

// where(cond, a, b): a and b may be scalars.
Napi::Value where(const Napi::CallbackInfo& info) {
  Args a(info, "where");
  return wrapTensor(info.Env(), at::where(a.tensor(0), a.tensorOrScalar(1), a.tensorOrScalar(2)));
}

// allclose(a, b, rtol, atol)
Napi::Value allclose(const Napi::CallbackInfo& info) {
  Args a(info, "allclose");
  return Napi::Boolean::New(info.Env(), at::allclose(a.tensor(0), a.tensor(1), a.optNumber(2).value_or(1e-5), a.optNumber(3).value_or(1e-8)));
}

Napi::Value equal(const Napi::CallbackInfo& info) {
  Args a(info, "equal");
  return Napi::Boolean::New(info.Env(), at::equal(a.tensor(0), a.tensor(1)));
}

void registerTensorMath(Napi::Env env, Napi::Object exports) {
  defineOps<binaryOp>(env, exports, kBinary);
  defineOps<unaryOp>(env, exports, kUnary);
  defineOps<inPlaceOp>(env, exports, kInPlace);
  defineFunction<zeroInPlace>(env, exports, "zeroInPlace");
  defineFunction<clamp>(env, exports, "clamp");
  defineFunction<gelu>(env, exports, "gelu");
  defineFunction<leakyRelu>(env, exports, "leakyRelu");
  defineFunction<where>(env, exports, "where");
  defineFunction<allclose>(env, exports, "allclose");
  defineFunction<equal>(env, exports, "equal");
}

}  // namespace

MEDTUNE_REGISTER(tensor_math, registerTensorMath);

}  // namespace medtune
