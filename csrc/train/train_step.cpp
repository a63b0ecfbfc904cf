// One optimizer step of training as one job on the compute queue: forward and backward over the
// micro-batches of an accumulation window, then gradient clipping, the optimizer update and
// zero_grad. The host reads the device at most once, at the end, for the numbers it returns.
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
//
// Mixed precision: a model with a compute dtype (csrc/train/mixed_precision.cpp) runs each
// forward under autocast; with fp16 a GradScaler (torch.amp's semantics) scales the loss,
// unscales the gradients before clipping and skips the update on inf/NaN gradients.
//
// Host synchronisation: nothing in a step waits for the device. Token counts come from the host
// batches, batches are copied from pinned memory without blocking, a non-finite step is skipped
// on the device (fused optimizers), and the numbers are read back only when asked (read: true,
// the logged steps); otherwise they stay in a device tensor for readStepStatsAsync. The CPU
// single-tensor optimizers read the skip verdict on the host, which costs nothing there.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <napi.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <mutex>
#include <optional>
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
#include "runtime/autocast.h"
#include "runtime/compute_queue.h"
#include "runtime/step_stage.h"
#include "tensor/tensor_box.h"
#include "train/oom_guard.h"

namespace medtune::train {

namespace {

using models::TensorMap;

enum class LossScaling { Tokens, Batches };

// torch.amp.GradScaler's state and settings; the tensors live on the model's device and are
// updated in place (JavaScript holds them and saves them with checkpoints).
struct ScalerOptions {
  at::Tensor scale;          // float32, 0-dim
  at::Tensor growthTracker;  // int32, 0-dim
  double growthFactor = 2.0, backoffFactor = 0.5;
  int64_t growthInterval = 2000;
};

struct StepOptions {
  std::vector<double> lrs;  // per group; empty = leave as they are
  double maxGradNorm = 0;   // <= 0: no clipping (the norm is still measured)
  LossScaling scaling = LossScaling::Batches;
  std::optional<ScalerOptions> scaler;
  // A float32 0-dim flag on the device, set by the first step whose loss or gradient norm is not
  // finite; every step while it is set leaves the weights alone. So the host can read a step's
  // verdict later (at the next logged step) and still stop with the weights of the last good step.
  at::Tensor stopFlag;
  bool read = true;  // false: the numbers stay on the device (StepResult::stats)
};

// The numbers of a step, on the device: what `stats` holds, in this order.
enum Stat { kLoss, kGradNorm, kFinite, kApplied, kLossScale, kTokens, kSupervised, kStatCount };

struct StepResult {
  int64_t samples = 0;
  at::Tensor stats;  // float64 [kStatCount] on the model's device
  std::vector<double> host;  // stats read back (read = true)
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

// A count that is known on the host when its tensors are host tensors (reading them costs
// nothing) and stays on the device otherwise (reading it would wait for the device).
struct Count {
  double host = 0;
  at::Tensor device;
  bool any = false;
  void add(const at::Tensor& n) {
    any = true;
    if (n.is_cpu()) host += n.item<double>();
    else device = device.defined() ? device + n : n;
  }
  at::Tensor on(const c10::Device& d, at::ScalarType type) const {
    at::Scalar v = at::isIntegralType(type, false) ? at::Scalar(static_cast<int64_t>(std::llround(host))) : at::Scalar(host);
    at::Tensor h = at::full({}, v, at::TensorOptions().device(d).dtype(type));  // a fill, no transfer
    return device.defined() ? h + device.to(d, type) : h;
  }
};

// Batches to the model's device. On CUDA, host tensors are staged in pinned memory and copied
// without blocking, so the copies queue behind the device work instead of waiting for it (a
// pageable copy would synchronise); the caching host allocator keeps the staging block until the
// copy has run.
TensorMap toDevice(const TensorMap& micro, const c10::Device& device) {
  TensorMap batch = micro;
  for (auto& [name, t] : batch) {
    if (t.device() == device) continue;
    if (device.is_cuda() && t.is_cpu()) t = (t.is_pinned() ? t : t.pin_memory()).to(device, /*non_blocking=*/true);
    else t = t.to(device, /*non_blocking=*/true);
  }
  return batch;
}

// torch.amp.GradScaler.unscale_: grads *= 1 / scale per (device, dtype) group, and a float32
// flag on the scale's device that is non-zero when any gradient is inf or NaN.
at::Tensor unscaleGradients(const std::vector<at::Tensor>& params, const at::Tensor& scale) {
  at::NoGradGuard noGrad;
  at::Tensor invScale = scale.to(at::kDouble).reciprocal().to(at::kFloat);
  at::Tensor foundInf = at::zeros({}, scale.options().dtype(at::kFloat));
  std::vector<std::pair<std::pair<c10::Device, at::ScalarType>, std::vector<at::Tensor>>> groups;
  for (const at::Tensor& p : params) {
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    TORCH_CHECK(g.scalar_type() != at::kHalf, "loss scaling: float16 gradients cannot be unscaled (trainable tensors must be float32 masters)");
    std::pair<c10::Device, at::ScalarType> key{g.device(), g.scalar_type()};
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& e) { return e.first == key; });
    if (it == groups.end()) it = groups.insert(groups.end(), std::make_pair(key, std::vector<at::Tensor>{}));
    it->second.push_back(g);
  }
  for (auto& [key, grads] : groups) {
    at::Tensor found = key.first == foundInf.device() ? foundInf : at::zeros({}, foundInf.options().device(key.first));
    at::_amp_foreach_non_finite_check_and_unscale_(grads, found, invScale.to(key.first));
    if (!found.is_same(foundInf)) foundInf.add_(found.to(foundInf.device()));
  }
  return foundInf;
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

  // Token counts from the host batches, before they move: no device round trip.
  Count numItems, tokens;
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
      numItems.add(labels.narrow(-1, 1, labels.size(-1) - 1).ne(models::kIgnoreIndex).sum());
    }
  }
  if (haveMask)
    for (const TensorMap& b : window) tokens.add(b.at("attention_mask").sum());
  at::Tensor numItemsOnDevice = numItems.any ? numItems.on(device, at::kLong) : at::Tensor();

  // Every micro-batch's copy is queued up front; the first forward waits only for its own.
  std::vector<TensorMap> batches;
  for (const TensorMap& micro : window) batches.push_back(toDevice(micro, device));

  at::Tensor scale = o.scaler ? o.scaler->scale : at::Tensor();
  at::Tensor lossSum;
  for (size_t i = 0; i < batches.size(); ++i) {
    stage::beginMicroBatch(i, window.size(), window[i]);
    TensorMap& batch = batches[i];
    if (o.scaling == LossScaling::Tokens) batch["num_items_in_batch"] = numItemsOnDevice;
    at::Tensor loss;
    {
      // torch.autocast around the forward only; backward replays its dtypes outside it.
      runtime::AutocastScope autocast(device.type(), model.computeDType);
      stage::begin(stage::Stage::Forward);
      models::ForwardOptions forward;
      forward.logits = false;  // the loss is all a step needs: language models chunk it (no logits)
      TensorMap out = model.forward(batch, forward);
      auto it = out.find("loss");
      TORCH_CHECK(it != out.end() && it->second.defined(), "the model returned no loss: does the batch have 'labels'?");
      loss = o.scaling == LossScaling::Tokens ? it->second : it->second / k;
    }
    stage::begin(stage::Stage::Backward);
    // GradScaler.scale(loss): loss * scale, in float32.
    (scale.defined() ? loss.to(at::kFloat) * scale.to(loss.device()) : loss).backward();
    at::Tensor detached = loss.detach().to(at::kFloat);
    lossSum = lossSum.defined() ? lossSum + detached : detached;
    r.samples += batchSize(window[i]);
    batch.clear();  // the window's inputs are freed as soon as their step is done with them
  }
  r.forwardBackwardMs = msSince(t0);
  auto t1 = std::chrono::steady_clock::now();

  stage::begin(stage::Stage::Optimizer);
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
  // With a scaler, gradients are unscaled before clipping (accelerate's clip_grad_norm_ calls
  // GradScaler.unscale_ first), and the inf/NaN check happens there.
  at::Tensor foundInf = o.scaler ? unscaleGradients(params, scale) : at::Tensor();
  at::Tensor scaleBefore = scale.defined() ? scale.to(lossSum.device(), at::kDouble).clone() : at::full({}, -1.0, lossSum.options().dtype(at::kDouble));
  at::Tensor norm = o.maxGradNorm > 0 ? optim::clipGradNorm(params, o.maxGradNorm) : optim::totalGradNorm(params);
  at::Tensor finite = at::isfinite(lossSum).logical_and(at::isfinite(norm.to(lossSum.device())));
  // Whether this step skips the update: GradScaler's found_inf with a scaler (a skipped step is
  // normal there); otherwise a non-finite loss or norm, or an earlier one (the stop flag), and
  // the trainer stops when it reads the verdict.
  at::Tensor skip;
  if (o.scaler) {
    skip = foundInf.to(lossSum.device()).ne(0);
  } else {
    skip = at::logical_not(finite);
    if (o.stopFlag.defined()) {
      skip = skip.logical_or(o.stopFlag.to(skip.device()).ne(0));
      o.stopFlag.copy_(skip.to(o.stopFlag.device(), at::kFloat));
    }
  }
  if (!o.lrs.empty()) opt.setLearningRates(o.lrs);
  if (opt.allFused()) {
    // The fused kernels take the verdict as a device tensor and skip on the device: no sync.
    opt.step(skip.to(at::kFloat));
  } else if (!skip.item<bool>()) {
    // torch.optim's single-tensor path (CPU): reading the verdict costs nothing on the host.
    // (A CUDA model with implementation 'single' waits here, as GradScaler does for such optimizers.)
    opt.step();
  }
  opt.zeroGrad(true);
  if (o.scaler) {
    at::NoGradGuard noGrad;
    at::Tensor scaleState = o.scaler->scale, tracker = o.scaler->growthTracker;  // handles to the caller's tensors, updated in place
    at::_amp_update_scale_(scaleState, tracker, foundInf.to(scaleState.device()), o.scaler->growthFactor, o.scaler->backoffFactor,
                           o.scaler->growthInterval);
  }

  const auto dev = lossSum.device();
  std::vector<at::Tensor> stats(kStatCount);
  stats[kLoss] = lossSum.to(at::kDouble);
  stats[kGradNorm] = norm.to(dev, at::kDouble);
  stats[kFinite] = finite.to(at::kDouble);
  stats[kApplied] = at::logical_not(skip).to(dev, at::kDouble);
  stats[kLossScale] = scaleBefore.reshape({});
  stats[kTokens] = haveMask ? tokens.on(dev, at::kDouble) : at::full({}, -1.0, lossSum.options().dtype(at::kDouble));
  stats[kSupervised] = numItems.any ? numItems.on(dev, at::kDouble) : at::full({}, -1.0, lossSum.options().dtype(at::kDouble));
  r.stats = at::stack(stats);
  if (o.read) {
    // One transfer for every number the caller gets.
    at::Tensor host = r.stats.cpu();
    r.host.assign(host.data_ptr<double>(), host.data_ptr<double>() + kStatCount);
  }
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
  Napi::Value read = obj.Get("read");
  if (read.IsBoolean()) o.read = read.As<Napi::Boolean>().Value();
  Napi::Value stop = obj.Get("stopFlag");
  if (!stop.IsUndefined() && !stop.IsNull()) {
    o.stopFlag = unwrapTensor(stop, a.where(i) + ".stopFlag");
    if (o.stopFlag.numel() != 1 || o.stopFlag.scalar_type() != at::kFloat) throw ArgumentError(a.where(i) + ".stopFlag must be a float32 tensor of one element");
  }
  Napi::Value scaler = obj.Get("scaler");
  if (!scaler.IsUndefined() && !scaler.IsNull()) {
    if (!scaler.IsObject()) throw ArgumentError(a.where(i) + ".scaler must be an object");
    Napi::Object so = scaler.As<Napi::Object>();
    ScalerOptions sc;
    std::string where = a.where(i) + ".scaler";
    sc.scale = unwrapTensor(so.Get("scale"), where + ".scale");
    sc.growthTracker = unwrapTensor(so.Get("growthTracker"), where + ".growthTracker");
    if (sc.scale.numel() != 1 || sc.scale.scalar_type() != at::kFloat) throw ArgumentError(where + ".scale must be a float32 tensor of one element");
    if (sc.growthTracker.numel() != 1 || sc.growthTracker.scalar_type() != at::kInt) throw ArgumentError(where + ".growthTracker must be an int32 tensor of one element");
    if (sc.growthTracker.device() != sc.scale.device()) throw ArgumentError(where + ": scale and growthTracker must be on one device");
    auto num = [&](const char* key, double fallback) {
      Napi::Value v = so.Get(key);
      return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
    };
    sc.growthFactor = num("growthFactor", 2.0);
    sc.backoffFactor = num("backoffFactor", 0.5);
    sc.growthInterval = static_cast<int64_t>(num("growthInterval", 2000));
    if (!(sc.growthFactor > 1)) throw ArgumentError(where + ".growthFactor must be > 1");
    if (!(sc.backoffFactor > 0 && sc.backoffFactor < 1)) throw ArgumentError(where + ".backoffFactor must be in (0, 1)");
    if (sc.growthInterval < 1) throw ArgumentError(where + ".growthInterval must be a positive integer");
    o.scaler = sc;
  }
  return o;
}

Napi::Object statsToJs(Napi::Env env, const double* v) {
  auto o = Napi::Object::New(env);
  o.Set("loss", v[kLoss]);
  o.Set("gradNorm", v[kGradNorm]);
  o.Set("finite", v[kFinite] != 0);
  o.Set("applied", v[kApplied] != 0);
  if (v[kLossScale] >= 0) o.Set("lossScale", v[kLossScale]);
  if (v[kTokens] >= 0) o.Set("tokens", v[kTokens]);
  if (v[kSupervised] >= 0) o.Set("supervisedTokens", v[kSupervised]);
  return o;
}

// trainStepAsync(model, optimizer, microBatches: {name: Tensor}[], { lrs, maxGradNorm,
//   lossScaling: 'tokens' | 'batches', read?, stopFlag?, scaler? }) -> Promise<{ loss, gradNorm,
//   finite, applied, lossScale?, tokens?, supervisedTokens?, samples, forwardBackwardMs,
//   optimizerMs, startedAtMs, endedAtMs }>; with read: false the numbers stay on the device: { stats: Tensor, samples,
//   forwardBackwardMs, optimizerMs } (readStepStatsAsync reads many at once).
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
    // An out-of-memory error anywhere in the step names its stage and leaves the model usable.
    StepResult r = guardStep(*guard->model, GuardOptions{"training step", true}, [&] { return runStep(*guard->model, *opt, window, options); });
    return [r](Napi::Env env) -> Napi::Value {
      Napi::Object o = r.host.empty() ? Napi::Object::New(env) : statsToJs(env, r.host.data());
      if (r.host.empty()) o.Set("stats", wrapTensor(env, r.stats));
      o.Set("samples", static_cast<double>(r.samples));
      o.Set("forwardBackwardMs", r.forwardBackwardMs);
      o.Set("optimizerMs", r.optimizerMs);
      o.Set("startedAtMs", r.startedAtMs);
      o.Set("endedAtMs", r.endedAtMs);
      return o;
    };
  });
}

// readStepStatsAsync(stats: Tensor[]) -> Promise<{ loss, gradNorm, finite, applied, ... }[]>:
// the numbers of steps run with read: false, in one transfer (the logged step's one wait).
Napi::Value readStepStatsAsync(const Napi::CallbackInfo& info) {
  Args a(info, "readStepStats");
  std::vector<at::Tensor> stats = a.tensorList(0);
  for (size_t i = 0; i < stats.size(); ++i)
    if (stats[i].dim() != 1 || stats[i].size(0) != kStatCount || stats[i].scalar_type() != at::kDouble)
      throw ArgumentError("readStepStats(): element " + std::to_string(i) + " is not a training step's stats tensor");
  return computeQueue(info.Env()).submit(info.Env(), [stats]() -> Finisher {
    at::Tensor host;
    if (!stats.empty()) {
      std::vector<at::Tensor> same;
      for (const at::Tensor& t : stats) same.push_back(t.to(stats.front().device()));
      host = at::stack(same).cpu().contiguous();
    }
    return [host](Napi::Env env) -> Napi::Value {
      const int64_t n = host.defined() ? host.size(0) : 0;
      Napi::Array out = Napi::Array::New(env, n);
      for (int64_t i = 0; i < n; ++i) out.Set(static_cast<uint32_t>(i), statsToJs(env, host.data_ptr<double>() + i * kStatCount));
      return out;
    };
  });
}

void registerTrainStep(Napi::Env env, Napi::Object exports) {
  defineFunction<trainStepAsync>(env, exports, "trainStepAsync");
  defineFunction<readStepStatsAsync>(env, exports, "readStepStatsAsync");
}

}  // namespace

MEDTUNE_REGISTER(train_step, registerTrainStep);

}  // namespace medtune::train
