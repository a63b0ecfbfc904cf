#include "modules/activation_checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/variable.h>

#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/step_stage.h"

namespace medtune::modules {

namespace {

using torch::autograd::variable_list;

// The default generators a layer can draw from (dropout, drop-path, LoRA dropout): the CPU one
// and, for a CUDA layer, its device's (through ATen's hooks, so a CPU build needs no CUDA).
struct RngState {
  at::Tensor cpu, device;
  std::optional<c10::Device> deviceOf;

  static at::Generator generator(c10::Device d) {
    return d.is_cpu() ? at::detail::getDefaultCPUGenerator() : at::globalContext().defaultGenerator(d);
  }
  static at::Tensor get(at::Generator g) {
    std::lock_guard<std::mutex> lock(g.mutex());
    return g.get_state();
  }
  static void set(at::Generator g, const at::Tensor& s) {
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_state(s);
  }
  static RngState capture(c10::Device d) {
    RngState r;
    r.cpu = get(generator(c10::Device(c10::kCPU)));
    if (!d.is_cpu()) {
      r.deviceOf = d;
      r.device = get(generator(d));
    }
    return r;
  }
  void restore() const {
    set(generator(c10::Device(c10::kCPU)), cpu);
    if (deviceOf) set(generator(*deviceOf), device);
  }
};

// Autocast settings of the forward pass, re-applied for the recomputation (the backward pass
// may run on another thread, with other thread-local settings).
struct AutocastState {
  struct One {
    at::DeviceType type;
    bool enabled;
    at::ScalarType dtype;
  };
  std::vector<One> devices;

  static AutocastState capture() {
    AutocastState s;
    for (at::DeviceType t : {at::kCPU, at::kCUDA}) s.devices.push_back({t, at::autocast::is_autocast_enabled(t), at::autocast::get_autocast_dtype(t)});
    return s;
  }
  void apply() const {
    for (const One& d : devices) {
      at::autocast::set_autocast_enabled(d.type, d.enabled);
      at::autocast::set_autocast_dtype(d.type, d.dtype);
    }
  }
};

class AutocastScope {
 public:
  explicit AutocastScope(const AutocastState& want) : saved_(AutocastState::capture()) { want.apply(); }
  ~AutocastScope() { saved_.apply(); }

 private:
  AutocastState saved_;
};

class CheckpointBackward : public torch::autograd::Node {
 public:
  CheckpointBackward(std::function<at::Tensor(const at::Tensor&)> body, at::Tensor input, bool inputNeedsGrad, std::vector<at::Tensor> params,
                     std::optional<RngState> rng, AutocastState autocast, std::string part, int64_t index, std::string typeName)
      : body_(std::move(body)), input_(std::move(input)), inputNeedsGrad_(inputNeedsGrad), params_(std::move(params)), rng_(std::move(rng)),
        autocast_(std::move(autocast)), part_(std::move(part)), index_(index), typeName_(std::move(typeName)) {}

  std::string name() const override { return "medtune::CheckpointBackward"; }

  variable_list apply(variable_list&& grads) override {
    TORCH_CHECK(body_, "activation checkpointing of ", part_, " layer ", index_,
                ": this layer's saved input was already released by an earlier backward pass (backward twice through a checkpointed layer needs retain_graph)");
    variable_list out(1 + params_.size());
    const at::Tensor& gy = grads.at(0);
    if (!gy.defined()) return out;
    stage::recomputeLayer(part_.c_str(), index_, typeName_);

    at::Tensor x = input_.detach();
    x.requires_grad_(inputNeedsGrad_);
    at::Tensor y;
    {
      at::AutoGradMode grad(true);
      AutocastScope autocast(autocast_);
      std::optional<RngState> now;
      if (rng_) {
        // The recomputation draws the same dropout masks as the forward pass did; the streams
        // then continue where they were.
        now = RngState::capture(rng_->deviceOf.value_or(c10::Device(c10::kCPU)));
        rng_->restore();
      }
      try {
        y = body_(x);
      } catch (...) {
        if (now) now->restore();
        throw;
      }
      if (now) now->restore();
    }
    variable_list inputs;
    if (inputNeedsGrad_) inputs.push_back(x);
    for (const at::Tensor& p : params_) inputs.push_back(p);
    variable_list g = torch::autograd::grad({y}, inputs, {gy}, /*retain_graph=*/false, /*create_graph=*/false, /*allow_unused=*/true);
    size_t k = 0;
    if (inputNeedsGrad_) out[0] = g[k++];
    for (size_t i = 0; i < params_.size(); ++i) out[1 + i] = g[k++];
    return out;
  }

  void release_variables() override {
    body_ = nullptr;
    input_.reset();
  }

 private:
  std::function<at::Tensor(const at::Tensor&)> body_;
  at::Tensor input_;
  bool inputNeedsGrad_;
  std::vector<at::Tensor> params_;
  std::optional<RngState> rng_;
  AutocastState autocast_;
  std::string part_;
  int64_t index_;
  std::string typeName_;
};

}  // namespace

at::Tensor checkpointLayer(Module& layer, int64_t index, const at::Tensor& hidden, const std::function<at::Tensor(const at::Tensor&)>& body) {
  std::vector<at::Tensor> params;
  for (const ParamRef& p : layer.parameters())
    if (p.slot->defined() && p.slot->requires_grad()) params.push_back(*p.slot);
  const bool inputNeedsGrad = hidden.requires_grad();
  if (!inputNeedsGrad && params.empty()) return body(hidden);  // nothing here needs a gradient

  torch::autograd::edge_list edges;
  edges.push_back(inputNeedsGrad ? torch::autograd::impl::gradient_edge(hidden) : torch::autograd::Edge());
  for (const at::Tensor& p : params) edges.push_back(torch::autograd::impl::gradient_edge(p));

  // Dropout draws only in training mode; a layer in eval mode needs no RNG bookkeeping.
  std::optional<RngState> rng;
  if (layer.training()) rng = RngState::capture(hidden.device());
  at::Tensor y;
  {
    at::AutoGradMode noGrad(false);
    y = body(hidden);
  }
  auto node = c10::make_intrusive<CheckpointBackward>(body, hidden.detach(), inputNeedsGrad, std::move(params), std::move(rng), AutocastState::capture(),
                                                      partName(layer.part()), index, layer.typeName());
  node->set_next_edges(std::move(edges));
  torch::autograd::set_history(y, node);
  return y;
}

}  // namespace medtune::modules
