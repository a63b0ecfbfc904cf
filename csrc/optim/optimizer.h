// Optimizers with PyTorch's update rules (torch/optim/adam.py and sgd.py). On the CPU they run
// the same single-tensor ATen calls as torch.optim does for CPU tensors, with the same scalar
// arithmetic in double, so parameters agree bit for bit; when every parameter of a group is a
// CUDA tensor (or the fused implementation is asked for) they call libtorch's fused kernels
// (_fused_adamw_, _fused_sgd_), which is what torch.optim uses with fused=True.
//
// Parameters are addressed by name (the model's HF names): the saved state names its tensors
// "<param>.exp_avg" etc., so a resumed run finds its state even if groups are rebuilt.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace medtune::optim {

enum class Kind { AdamW, SGD };
// auto: fused kernels for groups whose parameters are all CUDA tensors, single-tensor otherwise.
enum class Implementation { Auto, SingleTensor, Fused };

struct Hyper {
  double lr = 1e-3;
  double weightDecay = 0.0;
  // AdamW
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  bool amsgrad = false;
  // SGD
  double momentum = 0.0, dampening = 0.0;
  bool nesterov = false;
};

struct ParamGroup {
  std::string name;  // for reports and saved state ("decay", "layer_3_no_decay" ...)
  std::vector<std::string> paramNames;
  std::vector<at::Tensor> params;
  Hyper hyper;
};

// Per-parameter state. `step` counts this parameter's updates (PyTorch keeps it per parameter
// and skips parameters whose grad is None); fused kernels need it as a tensor on the device.
struct ParamState {
  bool initialized = false;
  double step = 0;
  at::Tensor stepTensor;  // fused path only: float32 scalar on the parameter's device (the truth there)
  at::Tensor expAvg, expAvgSq, maxExpAvgSq;  // AdamW
  at::Tensor momentumBuffer;                 // SGD (undefined until the first step with momentum)
};

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

class Optimizer {
 public:
  Optimizer(Kind kind, std::vector<ParamGroup> groups, Implementation impl);

  Kind kind() const { return kind_; }
  const char* kindName() const { return kind_ == Kind::AdamW ? "adamw" : "sgd"; }
  Implementation implementation() const { return impl_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }
  std::vector<at::Tensor> parameters() const;

  // Sets every group's lr (one value per group).
  void setLearningRates(const std::vector<double>& lrs);
  // One update of every parameter that has a gradient (torch.optim's optimizer.step()).
  // foundInf (a 0-dim float tensor, fused groups only): when it is non-zero on the device the
  // fused kernels leave parameters and state as they were, so a caller can skip a non-finite
  // step without reading the device (torch's GradScaler protocol).
  void step(const std::optional<at::Tensor>& foundInf = std::nullopt);
  // Whether every group runs the fused kernels (then step(foundInf) needs no host check).
  bool allFused() const;
  // optimizer.zero_grad(set_to_none): drops (or zeroes) every parameter's gradient.
  void zeroGrad(bool setToNone = true);

  // The per-parameter state as named tensors ("<param>.step", "<param>.exp_avg", ...; shared
  // with the optimizer, not copied). loadState copies such tensors back in, after checking that
  // every name belongs to a parameter of this optimizer and every shape matches; `source`
  // (a file name) goes into the error messages.
  NamedTensors stateTensors() const;
  void loadState(const NamedTensors& tensors, const std::string& source);

  // Steps and state are not thread-safe on their own: the compute worker and the main thread
  // both lock this around whatever touches parameters or state.
  std::mutex& mutex() { return mutex_; }

 private:
  bool useFused(const ParamGroup& group) const;
  void stepAdamWSingle(ParamGroup& group, std::vector<ParamState>& states);
  void stepAdamWFused(ParamGroup& group, std::vector<ParamState>& states, const std::optional<at::Tensor>& foundInf);
  void stepSgdSingle(ParamGroup& group, std::vector<ParamState>& states);
  void stepSgdFused(ParamGroup& group, std::vector<ParamState>& states, const std::optional<at::Tensor>& foundInf);

  Kind kind_;
  Implementation impl_;
  std::vector<ParamGroup> groups_;
  std::vector<std::vector<ParamState>> state_;  // [group][param]
  std::mutex mutex_;
};

void validateHyper(Kind kind, const Hyper& h, const std::string& where);

}  // namespace medtune::optim
