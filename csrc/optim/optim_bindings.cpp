// JavaScript bindings of the optimizers and gradient clipping (lib/train/optimizer.ts types
// them). Synchronous: an optimizer step is cheap next to a forward/backward, and the training
// step (train/train_step.cpp) runs its own steps on the compute worker.
#include <napi.h>

#include <mutex>
#include <string>
#include <vector>

#include "common/args.h"
#include "common/errors.h"
#include "common/handle.h"
#include "common/registry.h"
#include "optim/clip_grad.h"
#include "optim/optimizer.h"
#include "optim/optimizer_handle.h"
#include "tensor/tensor_box.h"

namespace medtune::optim {

namespace {

double numberField(Napi::Object o, const char* key, double fallback, const std::string& where) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber()) throw ArgumentError(where + "." + key + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool boolField(Napi::Object o, const char* key, bool fallback, const std::string& where) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsBoolean()) throw ArgumentError(where + "." + key + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

Kind kindFromString(const std::string& s) {
  if (s == "adamw") return Kind::AdamW;
  if (s == "sgd") return Kind::SGD;
  throw ArgumentError("optimizer: unknown kind '" + s + "' (expected 'adamw' or 'sgd')");
}

Implementation implFromString(const std::string& s) {
  if (s == "auto") return Implementation::Auto;
  if (s == "single") return Implementation::SingleTensor;
  if (s == "fused") return Implementation::Fused;
  throw ArgumentError("optimizer: unknown implementation '" + s + "' (expected 'auto', 'single' or 'fused')");
}

// optimizerNew(kind, groups: [{name, params: Tensor[], names: string[], lr, weightDecay, beta1,
//   beta2, eps, amsgrad, momentum, dampening, nesterov}], implementation = 'auto')
Napi::Value optimizerNew(const Napi::CallbackInfo& info) {
  Args a(info, "optimizerNew");
  Kind kind = kindFromString(a.string(0));
  if (!a.has(1) || !a[1].IsArray()) a.fail(1, "an array of parameter groups");
  Implementation impl = implFromString(a.optString(2).value_or("auto"));
  auto arr = a[1].As<Napi::Array>();
  std::vector<ParamGroup> groups;
  for (uint32_t g = 0; g < arr.Length(); ++g) {
    std::string where = "optimizerNew(): group " + std::to_string(g);
    Napi::Value gv = arr.Get(g);
    if (!gv.IsObject()) throw ArgumentError(where + " must be an object");
    Napi::Object o = gv.As<Napi::Object>();
    ParamGroup group;
    Napi::Value nameV = o.Get("name");
    if (nameV.IsString()) group.name = nameV.As<Napi::String>().Utf8Value();
    Napi::Value paramsV = o.Get("params"), namesV = o.Get("names");
    if (!paramsV.IsArray()) throw ArgumentError(where + ".params must be an array of Tensors");
    if (!namesV.IsArray()) throw ArgumentError(where + ".names must be an array of strings");
    auto params = paramsV.As<Napi::Array>();
    auto names = namesV.As<Napi::Array>();
    if (names.Length() != params.Length()) throw ArgumentError(where + ": params and names differ in length");
    for (uint32_t i = 0; i < params.Length(); ++i) {
      Napi::Value nv = names.Get(i);
      if (!nv.IsString()) throw ArgumentError(where + ".names[" + std::to_string(i) + "] must be a string");
      group.paramNames.push_back(nv.As<Napi::String>().Utf8Value());
      group.params.push_back(unwrapTensor(params.Get(i), where + ".params[" + std::to_string(i) + "]"));
    }
    Hyper defaults;
    if (kind == Kind::AdamW) defaults.weightDecay = 1e-2;  // torch.optim.AdamW's default
    group.hyper.lr = numberField(o, "lr", defaults.lr, where);
    group.hyper.weightDecay = numberField(o, "weightDecay", defaults.weightDecay, where);
    group.hyper.beta1 = numberField(o, "beta1", defaults.beta1, where);
    group.hyper.beta2 = numberField(o, "beta2", defaults.beta2, where);
    group.hyper.eps = numberField(o, "eps", defaults.eps, where);
    group.hyper.amsgrad = boolField(o, "amsgrad", false, where);
    group.hyper.momentum = numberField(o, "momentum", 0.0, where);
    group.hyper.dampening = numberField(o, "dampening", 0.0, where);
    group.hyper.nesterov = boolField(o, "nesterov", false, where);
    groups.push_back(std::move(group));
  }
  auto opt = std::make_shared<Optimizer>(kind, std::move(groups), impl);
  return wrapHandle(info.Env(), opt, kOptimizerHandle);
}

std::vector<double> numberList(Napi::Value v, const std::string& where) {
  if (!v.IsArray()) throw ArgumentError(where + " must be an array of numbers");
  auto arr = v.As<Napi::Array>();
  std::vector<double> out;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value x = arr.Get(i);
    if (!x.IsNumber()) throw ArgumentError(where + "[" + std::to_string(i) + "] must be a number");
    out.push_back(x.As<Napi::Number>().DoubleValue());
  }
  return out;
}

// optimizerStep(opt, lrs?): sets the groups' learning rates when given, then steps.
Napi::Value optimizerStep(const Napi::CallbackInfo& info) {
  Args a(info, "optimizerStep");
  auto opt = unwrapOptimizer(a[0], a.where(0));
  std::lock_guard<std::mutex> lock(opt->mutex());
  if (a.has(1)) opt->setLearningRates(numberList(a[1], a.where(1)));
  opt->step();
  return info.Env().Undefined();
}

Napi::Value optimizerZeroGrad(const Napi::CallbackInfo& info) {
  Args a(info, "optimizerZeroGrad");
  auto opt = unwrapOptimizer(a[0], a.where(0));
  std::lock_guard<std::mutex> lock(opt->mutex());
  opt->zeroGrad(a.boolean(1, true));
  return info.Env().Undefined();
}

Napi::Value optimizerSetLearningRates(const Napi::CallbackInfo& info) {
  Args a(info, "optimizerSetLearningRates");
  auto opt = unwrapOptimizer(a[0], a.where(0));
  std::lock_guard<std::mutex> lock(opt->mutex());
  opt->setLearningRates(numberList(a[1], a.where(1)));
  return info.Env().Undefined();
}

// optimizerGroups(opt): the groups' names, parameter names and hyper-parameters.
Napi::Value optimizerGroups(const Napi::CallbackInfo& info) {
  Args a(info, "optimizerGroups");
  auto opt = unwrapOptimizer(a[0], a.where(0));
  std::lock_guard<std::mutex> lock(opt->mutex());
  Napi::Env env = info.Env();
  auto out = Napi::Array::New(env, opt->groups().size());
  for (size_t g = 0; g < opt->groups().size(); ++g) {
    const ParamGroup& group = opt->groups()[g];
    auto o = Napi::Object::New(env);
    o.Set("name", group.name);
    auto names = Napi::Array::New(env, group.paramNames.size());
    for (size_t i = 0; i < group.paramNames.size(); ++i) names.Set(static_cast<uint32_t>(i), group.paramNames[i]);
    o.Set("names", names);
    o.Set("lr", group.hyper.lr);
    o.Set("weightDecay", group.hyper.weightDecay);
    if (opt->kind() == Kind::AdamW) {
      o.Set("beta1", group.hyper.beta1);
      o.Set("beta2", group.hyper.beta2);
      o.Set("eps", group.hyper.eps);
      o.Set("amsgrad", group.hyper.amsgrad);
    } else {
      o.Set("momentum", group.hyper.momentum);
      o.Set("dampening", group.hyper.dampening);
      o.Set("nesterov", group.hyper.nesterov);
    }
    out.Set(static_cast<uint32_t>(g), o);
  }
  return out;
}

// optimizerState(opt): {"<param>.exp_avg": Tensor, ...} (copies, safe to keep).
Napi::Value optimizerState(const Napi::CallbackInfo& info) {
  Args a(info, "optimizerState");
  auto opt = unwrapOptimizer(a[0], a.where(0));
  std::lock_guard<std::mutex> lock(opt->mutex());
  auto out = Napi::Object::New(info.Env());
  for (auto& [name, t] : opt->stateTensors()) out.Set(name, wrapTensor(info.Env(), t.detach().clone()));
  return out;
}

// optimizerLoadState(opt, {name: Tensor}, source)
Napi::Value optimizerLoadState(const Napi::CallbackInfo& info) {
  Args a(info, "optimizerLoadState");
  auto opt = unwrapOptimizer(a[0], a.where(0));
  Napi::Object obj = a.object(1);
  std::string source = a.optString(2).value_or("optimizer state");
  NamedTensors tensors;
  Napi::Array keys = obj.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
    tensors.emplace_back(key, unwrapTensor(obj.Get(key), a.where(1) + "['" + key + "']"));
  }
  std::lock_guard<std::mutex> lock(opt->mutex());
  opt->loadState(tensors, source);
  return info.Env().Undefined();
}

// clipGradNorm(params, maxNorm, normType = 2, errorIfNonfinite = false) -> total norm (Tensor)
Napi::Value clipGradNormJs(const Napi::CallbackInfo& info) {
  Args a(info, "clipGradNorm");
  auto params = a.tensorList(0);
  double maxNorm = a.number(1);
  double normType = a.optNumber(2).value_or(2.0);
  return wrapTensor(info.Env(), clipGradNorm(params, maxNorm, normType, a.boolean(3, false)));
}

// totalGradNorm(params, normType = 2) -> Tensor
Napi::Value totalGradNormJs(const Napi::CallbackInfo& info) {
  Args a(info, "totalGradNorm");
  return wrapTensor(info.Env(), totalGradNorm(a.tensorList(0), a.optNumber(1).value_or(2.0)));
}

void registerOptim(Napi::Env env, Napi::Object exports) {
  defineFunction<optimizerNew>(env, exports, "optimizerNew");
  defineFunction<optimizerStep>(env, exports, "optimizerStep");
  defineFunction<optimizerZeroGrad>(env, exports, "optimizerZeroGrad");
  defineFunction<optimizerSetLearningRates>(env, exports, "optimizerSetLearningRates");
  defineFunction<optimizerGroups>(env, exports, "optimizerGroups");
  defineFunction<optimizerState>(env, exports, "optimizerState");
  defineFunction<optimizerLoadState>(env, exports, "optimizerLoadState");
  defineFunction<clipGradNormJs>(env, exports, "clipGradNorm");
  defineFunction<totalGradNormJs>(env, exports, "totalGradNorm");
}

}  // namespace

MEDTUNE_REGISTER(optim, registerOptim);

}  // namespace medtune::optim
