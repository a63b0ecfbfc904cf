// Mixed precision for training, as PyTorch users run it (transformers' Trainer with bf16/fp16 on
// a model loaded in that dtype, under torch.autocast): frozen weights stay in the half dtype
// they were loaded in; every trainable tensor is a float32 master (the autograd leaf the
// optimizer updates, so AdamW's state is float32 too); every forward runs under autocast to the
// half dtype (runtime/autocast.h), which casts the masters to it where an op computes in it
// (linear, matmul, conv, attention) and keeps precision-sensitive ops in float32. The half
// copies of the masters are autocast's cast cache: made on first use in each forward, dropped at
// its end, so after every optimizer step the next forward computes with the updated weights.
// Gradients reach the masters through those casts, in float32, and accumulate in float32.
//
// LoRA / DoRA adapters of a half model are created in float32 already (peft's
// autocast_adapter_dtype); they are masters as they are.
#include <ATen/ATen.h>
#include <napi.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/args.h"
#include "common/errors.h"
#include "common/registry.h"
#include "models/model.h"
#include "models/model_ops.h"
#include "runtime/autocast.h"
#include "tensor/dtype.h"

namespace medtune::train {

namespace {

bool isHalf(at::ScalarType t) { return t == at::kBFloat16 || t == at::kHalf; }

// modelMixedPrecision(model, dtype?: 'bfloat16' | 'float16' | 'off') -> { computeDType, promoted }
// Without a dtype, the model's own half dtype is used (the dtype of its half-precision
// parameters); a float32 model then gets no mixed precision (computeDType null). Trainable half
// parameters become float32 masters (tied parameters stay tied). Call it after the tuning method
// set requiresGrad and before the optimizer is built: the optimizer holds the tensors it gets.
Napi::Value modelMixedPrecision(const Napi::CallbackInfo& info) {
  Args a(info, "mixedPrecision");
  auto model = models::unwrapModel(a, 0);
  models::ensureIdle(*model, "mixedPrecision()");
  std::optional<std::string> requested = a.optString(1);
  std::vector<modules::ParamRef> params = model->parameters();
  std::optional<at::ScalarType> dtype;
  if (requested && *requested == "off") {
    dtype = std::nullopt;
  } else if (requested) {
    at::ScalarType t = parseDtype(*requested);
    if (!isHalf(t)) throw ArgumentError("mixedPrecision(): the compute dtype must be 'bfloat16' or 'float16', got '" + *requested + "'");
    dtype = t;
  } else {
    for (const auto& p : params)
      if (p.slot->defined() && isHalf(p.slot->scalar_type())) {
        dtype = p.slot->scalar_type();
        break;
      }
  }
  std::vector<std::string> promoted;
  if (dtype) {
    const c10::Device device = models::modelDevice(*model);
    if (!runtime::autocastAvailable(device.type()))
      throw ArgumentError("mixedPrecision(): autocast is not available on " + deviceName(device));
    at::NoGradGuard noGrad;
    std::map<const void*, at::Tensor> masters;  // tied parameters share one master
    for (auto& p : params) {
      at::Tensor& t = *p.slot;
      if (!t.defined() || !t.requires_grad() || !isHalf(t.scalar_type())) continue;
      auto it = masters.find(t.unsafeGetTensorImpl());
      if (it == masters.end()) {
        at::Tensor master = t.detach().to(at::kFloat).requires_grad_(true);
        it = masters.emplace(t.unsafeGetTensorImpl(), master).first;
      }
      t = it->second;
      promoted.push_back(p.name);
    }
  }
  model->computeDType = dtype;
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("computeDType", dtype ? Napi::Value(Napi::String::New(env, dtypeName(*dtype))) : env.Null());
  Napi::Array names = Napi::Array::New(env, promoted.size());
  for (uint32_t i = 0; i < promoted.size(); ++i) names.Set(i, promoted[i]);
  out.Set("promoted", names);
  return out;
}

// modelComputeDType(model) -> 'bfloat16' | 'float16' | null
Napi::Value modelComputeDType(const Napi::CallbackInfo& info) {
  Args a(info, "computeDType");
  auto model = models::unwrapModel(a, 0);
  Napi::Env env = info.Env();
  return model->computeDType ? Napi::Value(Napi::String::New(env, dtypeName(*model->computeDType))) : env.Null();
}

void registerMixedPrecision(Napi::Env env, Napi::Object exports) {
  defineFunction<modelMixedPrecision>(env, exports, "modelMixedPrecision");
  defineFunction<modelComputeDType>(env, exports, "modelComputeDType");
}

}  // namespace

MEDTUNE_REGISTER(mixed_precision, registerMixedPrecision);

}  // namespace medtune::train
