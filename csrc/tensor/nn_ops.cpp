// Functional neural-network ops for custom losses and inspection from TypeScript; the models'
// own forward passes call the same ATen functions in C++.
#include "common/args.h"
#include "common/errors.h"
#include "common/registry.h"
#include "tensor/tensor_box.h"

namespace medtune {

namespace {

int64_t reductionOf(const Args& a, size_t i) {
  std::string r = a.optString(i).value_or("mean");
  if (r == "mean") return at::Reduction::Mean;
  if (r == "sum") return at::Reduction::Sum;
  if (r == "none") return at::Reduction::None;
  throw ArgumentError(a.where(i) + ": reduction must be 'mean', 'sum' or 'none'");
}

// softmax/logSoftmax(t, dim, dtype?)
template <bool Log>
Napi::Value softmaxOp(const Napi::CallbackInfo& info) {
  Args a(info, Log ? "logSoftmax" : "softmax");
  const at::Tensor& t = a.tensor(0);
  int64_t dim = a.int64(1);
  auto dtype = a.optDtype(2);
  return wrapTensor(info.Env(), Log ? at::log_softmax(t, dim, dtype) : at::softmax(t, dim, dtype));
}

// crossEntropy(logits, target, weight?, reduction?, ignoreIndex?, labelSmoothing?)
Napi::Value crossEntropy(const Napi::CallbackInfo& info) {
  Args a(info, "crossEntropy");
  return wrapTensor(info.Env(), at::cross_entropy_loss(a.tensor(0), a.tensor(1), a.optTensor(2), reductionOf(a, 3),
                                                       a.optInt64(4).value_or(-100), a.optNumber(5).value_or(0.0)));
}

// nllLoss(logProbs, target, weight?, reduction?, ignoreIndex?)
Napi::Value nllLoss(const Napi::CallbackInfo& info) {
  Args a(info, "nllLoss");
  return wrapTensor(info.Env(), at::nll_loss_nd(a.tensor(0), a.tensor(1), a.optTensor(2), reductionOf(a, 3), a.optInt64(4).value_or(-100)));
}

// bceWithLogits(logits, target, weight?, posWeight?, reduction?)
Napi::Value bceWithLogits(const Napi::CallbackInfo& info) {
  Args a(info, "bceWithLogits");
  return wrapTensor(info.Env(), at::binary_cross_entropy_with_logits(a.tensor(0), a.tensor(1), a.optTensor(2), a.optTensor(3), reductionOf(a, 4)));
}

Napi::Value mseLoss(const Napi::CallbackInfo& info) {
  Args a(info, "mseLoss");
  return wrapTensor(info.Env(), at::mse_loss(a.tensor(0), a.tensor(1), reductionOf(a, 2)));
}

Napi::Value l1Loss(const Napi::CallbackInfo& info) {
  Args a(info, "l1Loss");
  return wrapTensor(info.Env(), at::l1_loss(a.tensor(0), a.tensor(1), reductionOf(a, 2)));
}

// linear(x, weight, bias?)
Napi::Value linear(const Napi::CallbackInfo& info) {
  Args a(info, "linear");
  return wrapTensor(info.Env(), at::linear(a.tensor(0), a.tensor(1), a.optTensor(2)));
}

// layerNorm(x, normalizedShape, weight?, bias?, eps?)
Napi::Value layerNorm(const Napi::CallbackInfo& info) {
  Args a(info, "layerNorm");
  return wrapTensor(info.Env(), at::layer_norm(a.tensor(0), a.intList(1), a.optTensor(2), a.optTensor(3), a.optNumber(4).value_or(1e-5)));
}

// rmsNorm(x, normalizedShape, weight?, eps?)
Napi::Value rmsNorm(const Napi::CallbackInfo& info) {
  Args a(info, "rmsNorm");
  return wrapTensor(info.Env(), at::rms_norm(a.tensor(0), a.intList(1), a.optTensor(2), a.optNumber(3)));
}

// dropout(x, p, train, generator-free: uses the global generator)
Napi::Value dropout(const Napi::CallbackInfo& info) {
  Args a(info, "dropout");
  return wrapTensor(info.Env(), at::dropout(a.tensor(0), a.number(1), a.boolean(2, true)));
}

// embedding(weight, indices)
Napi::Value embedding(const Napi::CallbackInfo& info) {
  Args a(info, "embedding");
  return wrapTensor(info.Env(), at::embedding(a.tensor(0), a.tensor(1)));
}

// conv2d(x, weight, bias?, stride?, padding?, dilation?, groups?)
Napi::Value conv2d(const Napi::CallbackInfo& info) {
  Args a(info, "conv2d");
  return wrapTensor(info.Env(), at::conv2d(a.tensor(0), a.tensor(1), a.optTensor(2), a.optIntList(3).value_or(std::vector<int64_t>{1}),
                                           a.optIntList(4).value_or(std::vector<int64_t>{0}), a.optIntList(5).value_or(std::vector<int64_t>{1}),
                                           a.optInt64(6).value_or(1)));
}

// sdpa(q, k, v, mask?, dropoutP?, isCausal?, scale?, enableGqa?)
Napi::Value sdpa(const Napi::CallbackInfo& info) {
  Args a(info, "scaledDotProductAttention");
  return wrapTensor(info.Env(), at::scaled_dot_product_attention(a.tensor(0), a.tensor(1), a.tensor(2), a.optTensor(3), a.optNumber(4).value_or(0.0),
                                                                 a.boolean(5, false), a.optNumber(6), a.boolean(7, false)));
}

// interpolate(x, size, mode: 'bilinear'|'bicubic'|'nearest', alignCorners?, antialias?)
Napi::Value interpolate(const Napi::CallbackInfo& info) {
  Args a(info, "interpolate");
  const at::Tensor& x = a.tensor(0);
  auto size = a.intList(1);
  std::string mode = a.string(2);
  bool align = a.boolean(3, false);
  bool antialias = a.boolean(4, false);
  if (x.dim() != 4 || size.size() != 2) throw ArgumentError("interpolate(): expects a 4-D (N, C, H, W) input and a 2-element size");
  if (mode == "bilinear") return wrapTensor(info.Env(), antialias ? at::_upsample_bilinear2d_aa(x, size, align) : at::upsample_bilinear2d(x, size, align));
  if (mode == "bicubic") return wrapTensor(info.Env(), antialias ? at::_upsample_bicubic2d_aa(x, size, align) : at::upsample_bicubic2d(x, size, align));
  if (mode == "nearest") return wrapTensor(info.Env(), at::upsample_nearest2d(x, size));
  throw ArgumentError("interpolate(): mode must be 'bilinear', 'bicubic' or 'nearest'");
}

// pad(x, pads, mode?, value?)
Napi::Value pad(const Napi::CallbackInfo& info) {
  Args a(info, "pad");
  std::string mode = a.optString(2).value_or("constant");
  return wrapTensor(info.Env(), at::pad(a.tensor(0), a.intList(1), mode, a.optNumber(3)));
}

Napi::Value oneHot(const Napi::CallbackInfo& info) {
  Args a(info, "oneHot");
  return wrapTensor(info.Env(), at::one_hot(a.tensor(0), a.optInt64(1).value_or(-1)));
}

void registerTensorNN(Napi::Env env, Napi::Object exports) {
  defineFunction<softmaxOp<false>>(env, exports, "softmax");
  defineFunction<softmaxOp<true>>(env, exports, "logSoftmax");
  defineFunction<crossEntropy>(env, exports, "crossEntropy");
  defineFunction<nllLoss>(env, exports, "nllLoss");
  defineFunction<bceWithLogits>(env, exports, "bceWithLogits");
  defineFunction<mseLoss>(env, exports, "mseLoss");
  defineFunction<l1Loss>(env, exports, "l1Loss");
  defineFunction<linear>(env, exports, "linear");
  defineFunction<layerNorm>(env, exports, "layerNorm");
  defineFunction<rmsNorm>(env, exports, "rmsNorm");
  defineFunction<dropout>(env, exports, "dropout");
  defineFunction<embedding>(env, exports, "embedding");
  defineFunction<conv2d>(env, exports, "conv2d");
  defineFunction<sdpa>(env, exports, "scaledDotProductAttention");
  defineFunction<interpolate>(env, exports, "interpolate");
  defineFunction<pad>(env, exports, "pad");
  defineFunction<oneHot>(env, exports, "oneHot");
}

}  // namespace

MEDTUNE_REGISTER(tensor_nn, registerTensorNN);

}  // namespace medtune
