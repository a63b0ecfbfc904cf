// One optimizer step of training as one job on the compute queue: forward and backward over the
// micro-batches of an accumulation window, then gradient clipping, the optimizer update and
// zero_grad. The host waits on the device once, at the end, for the numbers it returns.
//
// Loss scaling with gradient accumulation follows the HF Trainer (transformers 5):
// - 'tokens' (language models): every micro-batch's loss is its sum over supervised tokens
//   divided by the number of supervised tokens in the whole window (`num_items_in_batch`, counted
//   over labels[..., 1:] != -100), so the accumulated gradient is the gradient of the window's
//   token mean, independent of how tokens fall into micro-batches;
// - 'batches' (classifiers, whose loss is a mean over the micro-batch's logits): every micro-
//   batch's loss is divided by the number of micro-batches in the window (loss / accum_iter, as
//   the MAE fine-tuning code and the Trainer do for models without num_items_in_batch).
// The reported loss is the sum of the scaled micro-batch losses: the window's mean loss.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <napi.h>
#include <torch/csrc/autograd/autograd.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/args.h"
#include "common/errors.h"
#include "common/registry.h"
#include "models/losses.h"
#include "models/model.h"
#include "models/model_ops.h"
#include "optim/clip_grad.h"
#include "optim/optimizer.h"
#include "optim/optimizer_handle.h"
#include "runtime/compute_queue.h"
#include "tensor/tensor_box.h"

namespace medtune::train {

namespace {

using models::TensorMap;

enum class LossScaling { Tokens, Batches };

struct StepOptions {
  std::vector<double> lrs;  // per group; empty = leave as they are
  double maxGradNorm = 0;   // <= 0: no clipping (the norm is still measured)
  LossScaling scaling = LossScaling::Batches;
};

struct StepResult {
  double loss = 0, gradNorm = 0;
  int64_t samples = 0;
  double tokens = -1, supervisedTokens = -1;  // -1: the batches have no attention_mask / labels
  bool finite = true;
  double forwardBackwardMs = 0, optimizerMs = 0;
  // When runStep began and ended on the steady clock (CLOCK_MONOTONIC, the clock of Node's
  // process.hrtime), in ms: the caller subtracts its own timestamps to see the dispatch overhead
  // (argument reading and queue wake-up before, hand-off back to JavaScript after).
  double startedAtMs = 0, endedAtMs = 0;
};

int64_t batchSize(const TensorMap& batch) {
  for (const char* key : {"labels", "input_ids", "pixel_values"}) {
    auto it = batch.find(key);
    if (it != batch.end() && it->second.dim() > 0) return it->second.size(0);
  }
  for (const auto& [k, t] : batch)
    if (t.dim() > 0) return t.size(0);
  return 0;
}

double msSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

double clockMs(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(t.time_since_epoch()).count();
}

StepResult runStep(models::Model& model, optim::Optimizer& opt, const std::vector<TensorMap>& window, const StepOptions& o) {
  auto t0 = std::chrono::steady_clock::now();
  at::AutoGradMode grad(true);
  const c10::Device device = models::modelDevice(model);
  StepResult r;
  const double k = static_cast<double>(window.size());

  // Counted on the device; read back with the other numbers at the end.
  at::Tensor numItems, tokens;
  bool haveLabels = true, haveMask = true;
  for (const TensorMap& b : window) {
    haveLabels = haveLabels && b.count("labels");
    haveMask = haveMask && b.count("attention_mask");
  }
  if (o.scaling == LossScaling::Tokens) {
    TORCH_CHECK(haveLabels, "token loss scaling needs 'labels' in every micro-batch");
    for (const TensorMap& b : window) {
      const at::Tensor& labels = b.at("labels");
      TORCH_CHECK(labels.dim() >= 1 && labels.size(-1) >= 1, "labels must have a sequence dimension");
      at::Tensor n = labels.narrow(-1, 1, labels.size(-1) - 1).ne(models::kIgnoreIndex).sum().to(device);
      numItems = numItems.defined() ? numItems + n : n;
    }
  }
  if (haveMask)
    for (const TensorMap& b : window) {
      at::Tensor n = b.at("attention_mask").sum().to(device);
      tokens = tokens.defined() ? tokens + n : n;
    }

  at::Tensor lossSum;
  for (const TensorMap& micro : window) {
    TensorMap batch = micro;
    for (auto& [name, t] : batch)
      if (t.device() != device) t = t.to(device, /*non_blocking=*/true);
    if (o.scaling == LossScaling::Tokens) batch["num_items_in_batch"] = numItems;
    TensorMap out = model.forward(batch, models::ForwardOptions{});
    auto it = out.find("loss");
    TORCH_CHECK(it != out.end() && it->second.defined(), "the model returned no loss: does the batch have 'labels'?");
    at::Tensor loss = o.scaling == LossScaling::Tokens ? it->second : it->second / k;
    loss.backward();
    at::Tensor detached = loss.detach().to(at::kFloat);
    lossSum = lossSum.defined() ? lossSum + detached : detached;
    r.samples += batchSize(micro);
  }
  r.forwardBackwardMs = msSince(t0);
  auto t1 = std::chrono::steady_clock::now();

  std::lock_guard<std::mutex> lock(opt.mutex());
  // The optimizer's parameters in the model's order: clip_grad_norm_(model.parameters()) stacks
  // the per-tensor norms in that order, and so does this, bit for bit.
  std::vector<at::Tensor> params;
  {
    std::unordered_set<const void*> inOptimizer;
    for (const at::Tensor& p : opt.parameters()) inOptimizer.insert(p.unsafeGetTensorImpl());
    for (const auto& ref : model.parameters())
      if (inOptimizer.count(ref.slot->unsafeGetTensorImpl())) params.push_back(*ref.slot);
  }
  at::Tensor norm = o.maxGradNorm > 0 ? optim::clipGradNorm(params, o.maxGradNorm) : optim::totalGradNorm(params);
  // The update is applied only when loss and gradient norm are finite, so a NaN step leaves the
  // parameters as they were (the trainer stops and reports it). Fused optimizers (CUDA) take
  // the verdict as a device tensor and skip on the device: no synchronisation. The CPU path
  // reads it, which costs nothing there.
  at::Tensor finite = at::isfinite(lossSum).logical_and(at::isfinite(norm.to(lossSum.device())));
  if (!o.lrs.empty()) opt.setLearningRates(o.lrs);
  if (opt.allFused()) {
    opt.step(at::logical_not(finite).to(at::kFloat));
  } else if (finite.item<bool>()) {
    opt.step();
  }
  opt.zeroGrad(true);

  // One transfer for every number the caller gets.
  std::vector<at::Tensor> numbers = {lossSum.to(at::kDouble).reshape({1}), norm.to(lossSum.device(), at::kDouble).reshape({1}),
                                     finite.to(at::kDouble).reshape({1})};
  if (tokens.defined()) numbers.push_back(tokens.to(lossSum.device(), at::kDouble).reshape({1}));
  if (numItems.defined()) numbers.push_back(numItems.to(lossSum.device(), at::kDouble).reshape({1}));
  at::Tensor host = at::cat(numbers).cpu();
  const double* v = host.data_ptr<double>();
  r.loss = v[0];
  r.gradNorm = v[1];
  r.finite = v[2] != 0;
  size_t next = 3;
  if (tokens.defined()) r.tokens = v[next++];
  if (numItems.defined()) r.supervisedTokens = v[next++];
  r.optimizerMs = msSince(t1);
  r.startedAtMs = clockMs(t0);
  r.endedAtMs = clockMs(std::chrono::steady_clock::now());
  return r;
}

StepOptions readOptions(const Args& a, size_t i) {
  StepOptions o;
  if (!a.has(i)) return o;
  Napi::Object obj = a.object(i);
  Napi::Value lrs = obj.Get("lrs");
  if (lrs.IsArray()) {
    auto arr = lrs.As<Napi::Array>();
    for (uint32_t k = 0; k < arr.Length(); ++k) {
      Napi::Value x = arr.Get(k);
      if (!x.IsNumber()) throw ArgumentError(a.where(i) + ".lrs[" + std::to_string(k) + "] must be a number");
      o.lrs.push_back(x.As<Napi::Number>().DoubleValue());
    }
  }
  Napi::Value clip = obj.Get("maxGradNorm");
  if (clip.IsNumber()) o.maxGradNorm = clip.As<Napi::Number>().DoubleValue();
  Napi::Value scaling = obj.Get("lossScaling");
  if (scaling.IsString()) {
    std::string s = scaling.As<Napi::String>().Utf8Value();
    if (s == "tokens") o.scaling = LossScaling::Tokens;
    else if (s == "batches") o.scaling = LossScaling::Batches;
    else throw ArgumentError(a.where(i) + ".lossScaling must be 'tokens' or 'batches', got '" + s + "'");
  }
  return o;
}

// trainStepAsync(model, optimizer, microBatches: {name: Tensor}[], { lrs, maxGradNorm,
//   lossScaling: 'tokens' | 'batches' }) -> Promise<{ loss, gradNorm, samples, tokens?,
//   supervisedTokens?, finite, forwardBackwardMs, optimizerMs, startedAtMs, endedAtMs }>
Napi::Value trainStepAsync(const Napi::CallbackInfo& info) {
  Args a(info, "trainStep");
  auto model = models::unwrapModel(a, 0);
  auto opt = optim::unwrapOptimizer(a[1], a.where(1));
  if (!a.has(2) || !a[2].IsArray()) a.fail(2, "an array of micro-batches");
  auto arr = a[2].As<Napi::Array>();
  if (arr.Length() == 0) throw ArgumentError("trainStep(): argument 3 must hold at least one micro-batch");
  // Read every batch now, on the main thread: the job owns references to the tensors, so
  // JavaScript may dispose its handles as soon as this returns.
  std::vector<TensorMap> window;
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value v = arr.Get(k);
    if (!v.IsObject()) throw ArgumentError("trainStep(): micro-batch " + std::to_string(k) + " must be an object of Tensors");
    TensorMap batch;
    Napi::Object obj = v.As<Napi::Object>();
    Napi::Array keys = obj.GetPropertyNames();
    for (uint32_t j = 0; j < keys.Length(); ++j) {
      std::string key = keys.Get(j).As<Napi::String>().Utf8Value();
      Napi::Value t = obj.Get(key);
      if (t.IsUndefined() || t.IsNull()) continue;
      batch[key] = unwrapTensor(t, "trainStep(): micro-batch " + std::to_string(k) + "['" + key + "']");
    }
    window.push_back(std::move(batch));
  }
  StepOptions options = readOptions(a, 3);
  auto guard = std::make_shared<models::BusyGuard>(model);
  return computeQueue(info.Env()).submit(info.Env(), [guard, opt, window = std::move(window), options]() -> Finisher {
    StepResult r = runStep(*guard->model, *opt, window, options);
    return [r](Napi::Env env) -> Napi::Value {
      auto o = Napi::Object::New(env);
      o.Set("loss", r.loss);
      o.Set("gradNorm", r.gradNorm);
      o.Set("samples", static_cast<double>(r.samples));
      if (r.tokens >= 0) o.Set("tokens", r.tokens);
      if (r.supervisedTokens >= 0) o.Set("supervisedTokens", r.supervisedTokens);
      o.Set("finite", r.finite);
      o.Set("forwardBackwardMs", r.forwardBackwardMs);
      o.Set("optimizerMs", r.optimizerMs);
      o.Set("startedAtMs", r.startedAtMs);
      o.Set("endedAtMs", r.endedAtMs);
      return o;
    };
  });
}

void registerTrainStep(Napi::Env env, Napi::Object exports) { defineFunction<trainStepAsync>(env, exports, "trainStepAsync"); }

}  // namespace

MEDTUNE_REGISTER(train_step, registerTrainStep);

}  // namespace medtune::train
