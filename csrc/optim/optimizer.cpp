#include "optim/optimizer.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>
#include <sstream>
#include <tuple>
#include <map>
#include <set>
#include <unordered_map>

#include "common/errors.h"

namespace medtune::optim {

namespace {

std::string fmt(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// Parameters of one (device, dtype) bucket, as torch.optim groups them for foreach/fused calls
// (in order of first appearance, which is the order the kernels see them).
struct Bucket {
  std::vector<size_t> index;  // into the group's params
};

std::vector<Bucket> bucketsWithGrad(const ParamGroup& group) {
  std::vector<Bucket> buckets;
  std::vector<std::pair<c10::Device, at::ScalarType>> keys;
  for (size_t i = 0; i < group.params.size(); ++i) {
    const at::Tensor& p = group.params[i];
    if (!p.grad().defined()) continue;
    std::pair<c10::Device, at::ScalarType> key{p.device(), p.scalar_type()};
    size_t k = 0;
    while (k < keys.size() && keys[k] != key) ++k;
    if (k == keys.size()) {
      keys.push_back(key);
      buckets.emplace_back();
    }
    buckets[k].index.push_back(i);
  }
  return buckets;
}

}  // namespace

void validateHyper(Kind kind, const Hyper& h, const std::string& where) {
  auto bad = [&](const std::string& what) { throw ArgumentError(where + ": " + what); };
  if (!(h.lr >= 0) || !std::isfinite(h.lr)) bad("invalid learning rate " + fmt(h.lr));
  if (!(h.weightDecay >= 0) || !std::isfinite(h.weightDecay)) bad("invalid weight_decay " + fmt(h.weightDecay));
  if (kind == Kind::AdamW) {
    if (!(h.eps >= 0)) bad("invalid epsilon " + fmt(h.eps));
    if (!(h.beta1 >= 0 && h.beta1 < 1)) bad("invalid beta1 " + fmt(h.beta1) + " (must be in [0, 1))");
    if (!(h.beta2 >= 0 && h.beta2 < 1)) bad("invalid beta2 " + fmt(h.beta2) + " (must be in [0, 1))");
  } else {
    if (!(h.momentum >= 0)) bad("invalid momentum " + fmt(h.momentum));
    if (h.nesterov && (h.momentum <= 0 || h.dampening != 0)) bad("Nesterov momentum requires a momentum and zero dampening");
  }
}

Optimizer::Optimizer(Kind kind, std::vector<ParamGroup> groups, Implementation impl)
    : kind_(kind), impl_(impl), groups_(std::move(groups)) {
  std::set<std::string> names;
  std::set<const void*> seen;
  for (size_t g = 0; g < groups_.size(); ++g) {
    ParamGroup& group = groups_[g];
    std::string where = "optimizer group " + (group.name.empty() ? std::to_string(g) : "'" + group.name + "'");
    validateHyper(kind_, group.hyper, where);
    if (group.paramNames.size() != group.params.size()) throw ArgumentError(where + ": one name per parameter is needed");
    for (size_t i = 0; i < group.params.size(); ++i) {
      const at::Tensor& p = group.params[i];
      const std::string& name = group.paramNames[i];
      if (!p.defined()) throw ArgumentError(where + ": parameter '" + name + "' is undefined");
      if (!p.is_leaf()) throw ArgumentError(where + ": can't optimize a non-leaf Tensor ('" + name + "')");
      if (!at::isFloatingType(p.scalar_type())) throw ArgumentError(where + ": parameter '" + name + "' is not floating point");
      if (!names.insert(name).second) throw ArgumentError(where + ": parameter name '" + name + "' appears twice");
      if (!seen.insert(p.unsafeGetTensorImpl()).second)
        throw ArgumentError(where + ": some parameters appear in more than one parameter group ('" + name + "')");
    }
    if (impl_ == Implementation::Fused)
      for (const at::Tensor& p : group.params)
        if (!(p.is_cuda() || p.is_cpu())) throw ArgumentError(where + ": the fused implementation needs CPU or CUDA tensors");
    state_.emplace_back(group.params.size());
  }
}

std::vector<at::Tensor> Optimizer::parameters() const {
  std::vector<at::Tensor> out;
  for (const auto& g : groups_) out.insert(out.end(), g.params.begin(), g.params.end());
  return out;
}

void Optimizer::setLearningRates(const std::vector<double>& lrs) {
  if (lrs.size() != groups_.size())
    throw ArgumentError("optimizer: " + std::to_string(lrs.size()) + " learning rates for " + std::to_string(groups_.size()) + " parameter groups");
  for (size_t g = 0; g < lrs.size(); ++g) {
    Hyper h = groups_[g].hyper;
    h.lr = lrs[g];
    validateHyper(kind_, h, "optimizer group " + std::to_string(g));
    groups_[g].hyper.lr = lrs[g];
  }
}

bool Optimizer::useFused(const ParamGroup& group) const {
  if (impl_ == Implementation::Fused) return true;
  if (impl_ == Implementation::SingleTensor || group.params.empty()) return false;
  for (const at::Tensor& p : group.params)
    if (!p.is_cuda()) return false;
  return true;
}

bool Optimizer::allFused() const {
  for (const auto& group : groups_)
    if (!useFused(group)) return false;
  return true;
}

void Optimizer::step(const std::optional<at::Tensor>& foundInf) {
  at::NoGradGuard noGrad;
  TORCH_CHECK(!foundInf || allFused(), "optimizer.step(foundInf) needs the fused implementation for every group");
  for (size_t g = 0; g < groups_.size(); ++g) {
    ParamGroup& group = groups_[g];
    bool fused = useFused(group);
    if (kind_ == Kind::AdamW) {
      fused ? stepAdamWFused(group, state_[g], foundInf) : stepAdamWSingle(group, state_[g]);
    } else {
      fused ? stepSgdFused(group, state_[g], foundInf) : stepSgdSingle(group, state_[g]);
    }
  }
}

// torch/optim/adam.py, _single_tensor_adam with decoupled_weight_decay=True (AdamW), real
// tensors, not capturable: the same ATen calls with the same double-precision scalars.
void Optimizer::stepAdamWSingle(ParamGroup& group, std::vector<ParamState>& states) {
  const Hyper& h = group.hyper;
  for (size_t i = 0; i < group.params.size(); ++i) {
    at::Tensor& param = group.params[i];
    at::Tensor grad = param.grad();
    if (!grad.defined()) continue;
    TORCH_CHECK(!grad.is_sparse(), "AdamW does not support sparse gradients ('", group.paramNames[i], "')");
    ParamState& s = states[i];
    if (!s.initialized) {
      s.expAvg = at::zeros_like(param, at::MemoryFormat::Preserve);
      s.expAvgSq = at::zeros_like(param, at::MemoryFormat::Preserve);
      if (h.amsgrad) s.maxExpAvgSq = at::zeros_like(param, at::MemoryFormat::Preserve);
      s.initialized = true;
    }
    s.step += 1;
    if (h.weightDecay != 0) param.mul_(1 - h.lr * h.weightDecay);
    s.expAvg.lerp_(grad, 1 - h.beta1);
    s.expAvgSq.mul_(h.beta2).addcmul_(grad, grad, 1 - h.beta2);
    double biasCorrection1 = 1 - std::pow(h.beta1, s.step);
    double biasCorrection2 = 1 - std::pow(h.beta2, s.step);
    double stepSize = h.lr / biasCorrection1;
    double biasCorrection2Sqrt = std::pow(biasCorrection2, 0.5);
    at::Tensor denom;
    if (h.amsgrad) {
      at::maximum_out(s.maxExpAvgSq, s.maxExpAvgSq, s.expAvgSq);
      denom = (s.maxExpAvgSq.sqrt() / biasCorrection2Sqrt).add_(h.eps);
    } else {
      denom = (s.expAvgSq.sqrt() / biasCorrection2Sqrt).add_(h.eps);
    }
    param.addcdiv_(s.expAvg, denom, -stepSize);
  }
}

// torch/optim/adam.py, _fused_adam with decoupled_weight_decay=True: per (device, dtype) bucket,
// step counters (float32 tensors on the device) += 1, then one fused kernel.
void Optimizer::stepAdamWFused(ParamGroup& group, std::vector<ParamState>& states, const std::optional<at::Tensor>& foundInf) {
  const Hyper& h = group.hyper;
  for (const Bucket& bucket : bucketsWithGrad(group)) {
    std::vector<at::Tensor> params, grads, expAvgs, expAvgSqs, maxExpAvgSqs, steps;
    for (size_t i : bucket.index) {
      at::Tensor& param = group.params[i];
      ParamState& s = states[i];
      if (!s.initialized) {
        s.expAvg = at::zeros_like(param, at::MemoryFormat::Preserve);
        s.expAvgSq = at::zeros_like(param, at::MemoryFormat::Preserve);
        if (h.amsgrad) s.maxExpAvgSq = at::zeros_like(param, at::MemoryFormat::Preserve);
        s.initialized = true;
      }
      if (!s.stepTensor.defined()) s.stepTensor = at::full({}, s.step, param.options().dtype(at::kFloat));
      params.push_back(param);
      grads.push_back(param.grad());
      expAvgs.push_back(s.expAvg);
      expAvgSqs.push_back(s.expAvgSq);
      if (h.amsgrad) maxExpAvgSqs.push_back(s.maxExpAvgSq);
      steps.push_back(s.stepTensor);
      s.step += 1;  // host mirror, so saving and reporting never read the device
    }
    std::optional<at::Tensor> inf;
    if (foundInf) inf = foundInf->to(params.front().device(), at::kFloat);
    at::_foreach_add_(steps, 1);
    at::_fused_adamw_(params, grads, expAvgs, expAvgSqs, maxExpAvgSqs, steps, h.lr, h.beta1, h.beta2, h.weightDecay,
                      h.eps, h.amsgrad, /*maximize=*/false, /*grad_scale=*/std::nullopt, inf);
    // A skipped step does not count (torch's _fused_adam does the same).
    if (inf) at::_foreach_sub_(steps, std::vector<at::Tensor>(steps.size(), *inf));
  }
}

// torch/optim/sgd.py, _single_tensor_sgd.
void Optimizer::stepSgdSingle(ParamGroup& group, std::vector<ParamState>& states) {
  const Hyper& h = group.hyper;
  for (size_t i = 0; i < group.params.size(); ++i) {
    at::Tensor& param = group.params[i];
    at::Tensor grad = param.grad();
    if (!grad.defined()) continue;
    ParamState& s = states[i];
    s.initialized = true;
    s.step += 1;
    if (h.weightDecay != 0) grad = grad.add(param, h.weightDecay);
    if (h.momentum != 0) {
      if (!s.momentumBuffer.defined()) {
        s.momentumBuffer = grad.detach().clone();
      } else {
        s.momentumBuffer.mul_(h.momentum).add_(grad, 1 - h.dampening);
      }
      grad = h.nesterov ? grad.add(s.momentumBuffer, h.momentum) : s.momentumBuffer;
    }
    param.add_(grad, -h.lr);
  }
}

// torch/optim/sgd.py, _fused_sgd. The kernel's first step (is_first_step) initialises the
// momentum buffers from the gradients, as the single-tensor path's `buf = grad.clone()`; a
// parameter whose first gradient comes later than the others' gets the same treatment in a
// call of its own, so both paths agree whatever the pattern of missing gradients.
void Optimizer::stepSgdFused(ParamGroup& group, std::vector<ParamState>& states, const std::optional<at::Tensor>& foundInf) {
  const Hyper& h = group.hyper;
  for (const Bucket& bucket : bucketsWithGrad(group)) {
    std::vector<bool> fresh;
    for (size_t i : bucket.index) fresh.push_back(h.momentum != 0 && !states[i].momentumBuffer.defined());
    for (bool first : {true, false}) {
      std::vector<at::Tensor> params, grads, buffers;
      for (size_t k = 0; k < bucket.index.size(); ++k) {
        size_t i = bucket.index[k];
        ParamState& s = states[i];
        bool isNew = fresh[k];
        if (isNew != first) continue;
        at::Tensor& param = group.params[i];
        params.push_back(param);
        grads.push_back(param.grad());
        if (h.momentum != 0) {
          // Zeros, not empty: a step the kernel skips (foundInf) must not leave garbage behind.
          if (isNew) s.momentumBuffer = at::zeros_like(param.grad());
          buffers.push_back(s.momentumBuffer);
        }
        s.initialized = true;
        s.step += 1;
      }
      if (params.empty()) continue;
      std::optional<at::Tensor> inf;
      if (foundInf) inf = foundInf->to(params.front().device(), at::kFloat);
      at::_fused_sgd_(params, grads, buffers, h.weightDecay, h.momentum, h.lr, h.dampening, h.nesterov,
                      /*maximize=*/false, /*is_first_step=*/first && h.momentum != 0, /*grad_scale=*/std::nullopt, inf);
    }
  }
}

void Optimizer::zeroGrad(bool setToNone) {
  for (auto& group : groups_) {
    for (at::Tensor& p : group.params) {
      at::Tensor g = p.grad();
      if (!g.defined()) continue;
      if (setToNone) {
        p.mutable_grad() = at::Tensor();
      } else {
        if (g.grad_fn()) {
          g = g.detach();
          p.mutable_grad() = g;
        } else {
          g.requires_grad_(false);
        }
        g.zero_();
      }
    }
  }
}

NamedTensors Optimizer::stateTensors() const {
  NamedTensors out;
  for (size_t g = 0; g < groups_.size(); ++g) {
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      const ParamState& s = state_[g][i];
      if (!s.initialized) continue;
      const std::string& name = groups_[g].paramNames[i];
      // PyTorch keeps `step` as a float32 scalar tensor; so do the saved files.
      // The fused path counts on the device (a skipped step is not counted there).
      if (s.stepTensor.defined()) out.emplace_back(name + ".step", s.stepTensor.detach().to(at::kCPU, at::kFloat).reshape({}));
      else out.emplace_back(name + ".step", at::full({}, s.step, at::TensorOptions().dtype(at::kFloat)));
      if (s.expAvg.defined()) out.emplace_back(name + ".exp_avg", s.expAvg);
      if (s.expAvgSq.defined()) out.emplace_back(name + ".exp_avg_sq", s.expAvgSq);
      if (s.maxExpAvgSq.defined()) out.emplace_back(name + ".max_exp_avg_sq", s.maxExpAvgSq);
      if (s.momentumBuffer.defined()) out.emplace_back(name + ".momentum_buffer", s.momentumBuffer);
    }
  }
  return out;
}

void Optimizer::loadState(const NamedTensors& tensors, const std::string& source) {
  struct Slot {
    size_t group, index;
  };
  std::unordered_map<std::string, Slot> byName;
  for (size_t g = 0; g < groups_.size(); ++g)
    for (size_t i = 0; i < groups_[g].params.size(); ++i) byName[groups_[g].paramNames[i]] = {g, i};

  static const char* kFields[] = {".step", ".exp_avg_sq", ".max_exp_avg_sq", ".exp_avg", ".momentum_buffer"};
  const bool adam = kind_ == Kind::AdamW;
  // Validate everything before touching any state, so a bad file leaves the optimizer as it was.
  std::vector<std::tuple<Slot, std::string, at::Tensor>> parsed;
  for (const auto& [key, value] : tensors) {
    std::string field, param;
    for (const char* f : kFields) {
      std::string suffix(f);
      if (key.size() > suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0) {
        field = suffix.substr(1);
        param = key.substr(0, key.size() - suffix.size());
        break;
      }
    }
    if (field.empty()) throw CodedError("MEDTUNE_BAD_OPTIMIZER_STATE", source + ": unknown optimizer state tensor '" + key + "'");
    bool fieldFits = field == "step" || (adam ? field != "momentum_buffer" : field == "momentum_buffer");
    if (!fieldFits)
      throw CodedError("MEDTUNE_BAD_OPTIMIZER_STATE", source + ": '" + key + "' is not state of a " + kindName() + " optimizer");
    auto it = byName.find(param);
    if (it == byName.end())
      throw CodedError("MEDTUNE_BAD_OPTIMIZER_STATE", source + ": state for '" + param + "', which is not a trainable parameter of this run");
    const at::Tensor& p = groups_[it->second.group].params[it->second.index];
    if (field == "step") {
      if (value.numel() != 1) throw CodedError("MEDTUNE_BAD_OPTIMIZER_STATE", source + ": '" + key + "' must hold one number");
    } else if (value.sizes() != p.sizes()) {
      std::ostringstream msg;
      msg << source << ": '" << key << "' has shape " << value.sizes() << " but the parameter has " << p.sizes();
      throw CodedError("MEDTUNE_BAD_OPTIMIZER_STATE", msg.str());
    }
    parsed.emplace_back(it->second, field, value);
  }
  if (adam) {
    std::map<std::pair<size_t, size_t>, std::set<std::string>> present;
    for (auto& [slot, field, value] : parsed) present[{slot.group, slot.index}].insert(field);
    for (auto& [key, fields] : present) {
      bool amsgrad = groups_[key.first].hyper.amsgrad;
      if (!fields.count("step") || !fields.count("exp_avg") || !fields.count("exp_avg_sq") || (amsgrad && !fields.count("max_exp_avg_sq")))
        throw CodedError("MEDTUNE_BAD_OPTIMIZER_STATE",
                         source + ": incomplete AdamW state for '" + groups_[key.first].paramNames[key.second] + "'");
    }
  }

  for (auto& group : state_)
    for (auto& s : group) s = ParamState{};
  at::NoGradGuard noGrad;
  for (auto& [slot, field, value] : parsed) {
    const at::Tensor& p = groups_[slot.group].params[slot.index];
    ParamState& s = state_[slot.group][slot.index];
    s.initialized = true;
    auto like = [&](const at::Tensor& v) {
      // Same memory format, dtype and device as zeros_like(param) would give, holding the saved values.
      at::Tensor t = at::empty_like(p, at::MemoryFormat::Preserve);
      t.copy_(v);
      return t;
    };
    if (field == "step") s.step = value.to(at::kDouble).item<double>();
    else if (field == "exp_avg") s.expAvg = like(value);
    else if (field == "exp_avg_sq") s.expAvgSq = like(value);
    else if (field == "max_exp_avg_sq") s.maxExpAvgSq = like(value);
    else s.momentumBuffer = like(value);
  }
}

}  // namespace medtune::optim
