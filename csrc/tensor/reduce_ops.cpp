// Reductions (whole tensor or along dims), arg-reductions, sorting and cumulative ops.
#include "common/args.h"
#include "common/registry.h"
#include "tensor/tensor_box.h"

namespace medtune {

namespace {

Napi::Value pair(Napi::Env env, const std::tuple<at::Tensor, at::Tensor>& r) {
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, wrapTensor(env, std::get<0>(r)));
  out.Set(1u, wrapTensor(env, std::get<1>(r)));
  return out;
}

// sum/mean(t, dims?, keepdim?, dtype?): no dims reduces everything.
Napi::Value sum(const Napi::CallbackInfo& info) {
  Args a(info, "sum");
  const at::Tensor& t = a.tensor(0);
  auto dims = a.optIntList(1);
  return wrapTensor(info.Env(), dims ? at::sum(t, *dims, a.boolean(2, false), a.optDtype(3)) : at::sum(t, a.optDtype(3)));
}

Napi::Value mean(const Napi::CallbackInfo& info) {
  Args a(info, "mean");
  const at::Tensor& t = a.tensor(0);
  auto dims = a.optIntList(1);
  return wrapTensor(info.Env(), dims ? at::mean(t, *dims, a.boolean(2, false), a.optDtype(3)) : at::mean(t, a.optDtype(3)));
}

Napi::Value prod(const Napi::CallbackInfo& info) {
  Args a(info, "prod");
  const at::Tensor& t = a.tensor(0);
  auto dim = a.optInt64(1);
  return wrapTensor(info.Env(), dim ? at::prod(t, *dim, a.boolean(2, false)) : at::prod(t));
}

// amax/amin(t, dims?, keepdim?)
template <bool Max>
Napi::Value extremum(const Napi::CallbackInfo& info) {
  Args a(info, Max ? "amax" : "amin");
  const at::Tensor& t = a.tensor(0);
  std::vector<int64_t> dims = a.optIntList(1).value_or(std::vector<int64_t>{});
  bool keep = a.boolean(2, false);
  return wrapTensor(info.Env(), Max ? at::amax(t, dims, keep) : at::amin(t, dims, keep));
}

// maxDim/minDim(t, dim, keepdim?) -> [values, indices]
template <bool Max>
Napi::Value extremumDim(const Napi::CallbackInfo& info) {
  Args a(info, Max ? "max" : "min");
  const at::Tensor& t = a.tensor(0);
  int64_t dim = a.int64(1);
  bool keep = a.boolean(2, false);
  return pair(info.Env(), Max ? at::max(t, dim, keep) : at::min(t, dim, keep));
}

template <bool Max>
Napi::Value argExtremum(const Napi::CallbackInfo& info) {
  Args a(info, Max ? "argmax" : "argmin");
  const at::Tensor& t = a.tensor(0);
  auto dim = a.optInt64(1);
  bool keep = a.boolean(2, false);
  return wrapTensor(info.Env(), Max ? at::argmax(t, dim, keep) : at::argmin(t, dim, keep));
}

// std/var(t, dims?, correction?, keepdim?)
template <bool Std>
Napi::Value spread(const Napi::CallbackInfo& info) {
  Args a(info, Std ? "std" : "var");
  const at::Tensor& t = a.tensor(0);
  auto dims = a.optIntList(1);
  at::OptionalIntArrayRef dimRef = dims ? at::OptionalIntArrayRef(*dims) : at::OptionalIntArrayRef();
  std::optional<at::Scalar> correction = at::Scalar(a.optNumber(2).value_or(1.0));
  bool keep = a.boolean(3, false);
  return wrapTensor(info.Env(), Std ? at::std(t, dimRef, correction, keep) : at::var(t, dimRef, correction, keep));
}

// norm(t, p?, dims?, keepdim?)
Napi::Value norm(const Napi::CallbackInfo& info) {
  Args a(info, "norm");
  const at::Tensor& t = a.tensor(0);
  double p = a.optNumber(1).value_or(2.0);
  auto dims = a.optIntList(2);
  return wrapTensor(info.Env(), at::linalg_vector_norm(t, p, dims ? at::OptionalIntArrayRef(*dims) : at::OptionalIntArrayRef(), a.boolean(3, false)));
}

Napi::Value logsumexp(const Napi::CallbackInfo& info) {
  Args a(info, "logsumexp");
  return wrapTensor(info.Env(), at::logsumexp(a.tensor(0), a.intList(1), a.boolean(2, false)));
}

// all/any(t, dim?, keepdim?)
template <bool All>
Napi::Value truth(const Napi::CallbackInfo& info) {
  Args a(info, All ? "all" : "any");
  const at::Tensor& t = a.tensor(0);
  auto dim = a.optInt64(1);
  bool keep = a.boolean(2, false);
  if (!dim) return wrapTensor(info.Env(), All ? at::all(t) : at::any(t));
  return wrapTensor(info.Env(), All ? at::all(t, *dim, keep) : at::any(t, *dim, keep));
}

Napi::Value cumsum(const Napi::CallbackInfo& info) {
  Args a(info, "cumsum");
  return wrapTensor(info.Env(), at::cumsum(a.tensor(0), a.int64(1), a.optDtype(2)));
}

// topk(t, k, dim?, largest?, sorted?) -> [values, indices]
Napi::Value topk(const Napi::CallbackInfo& info) {
  Args a(info, "topk");
  return pair(info.Env(), at::topk(a.tensor(0), a.int64(1), a.optInt64(2).value_or(-1), a.boolean(3, true), a.boolean(4, true)));
}

// sort(t, dim?, descending?, stable?) -> [values, indices]
Napi::Value sort(const Napi::CallbackInfo& info) {
  Args a(info, "sort");
  return pair(info.Env(), at::sort(a.tensor(0), a.boolean(3, true), a.optInt64(1).value_or(-1), a.boolean(2, false)));
}

Napi::Value argsort(const Napi::CallbackInfo& info) {
  Args a(info, "argsort");
  return wrapTensor(info.Env(), at::argsort(a.tensor(0), a.boolean(3, true), a.optInt64(1).value_or(-1), a.boolean(2, false)));
}

Napi::Value countNonzero(const Napi::CallbackInfo& info) {
  Args a(info, "countNonzero");
  auto dim = a.optInt64(1);
  return wrapTensor(info.Env(), dim ? at::count_nonzero(a.tensor(0), std::optional<int64_t>(*dim)) : at::count_nonzero(a.tensor(0)));
}

void registerTensorReduce(Napi::Env env, Napi::Object exports) {
  defineFunction<sum>(env, exports, "sum");
  defineFunction<mean>(env, exports, "mean");
  defineFunction<prod>(env, exports, "prod");
  defineFunction<extremum<true>>(env, exports, "amax");
  defineFunction<extremum<false>>(env, exports, "amin");
  defineFunction<extremumDim<true>>(env, exports, "maxDim");
  defineFunction<extremumDim<false>>(env, exports, "minDim");
  defineFunction<argExtremum<true>>(env, exports, "argmax");
  defineFunction<argExtremum<false>>(env, exports, "argmin");
  defineFunction<spread<true>>(env, exports, "std");
  defineFunction<spread<false>>(env, exports, "var");
  defineFunction<norm>(env, exports, "norm");
  defineFunction<logsumexp>(env, exports, "logsumexp");
  defineFunction<truth<true>>(env, exports, "all");
  defineFunction<truth<false>>(env, exports, "any");
  defineFunction<cumsum>(env, exports, "cumsum");
  defineFunction<topk>(env, exports, "topk");
  defineFunction<sort>(env, exports, "sort");
  defineFunction<argsort>(env, exports, "argsort");
  defineFunction<countNonzero>(env, exports, "countNonzero");
}

}  // namespace

MEDTUNE_REGISTER(tensor_reduce, registerTensorReduce);

}  // namespace medtune
