#include "modules/layers.h"

#include <ATen/ATen.h>

#include <cmath>

#include "common/errors.h"

namespace medtune::modules {

Activation parseActivation(const std::string& name) {
  if (name == "gelu") return Activation::Gelu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast" || name == "gelu_tanh") return Activation::GeluTanh;
  if (name == "quick_gelu") return Activation::QuickGelu;
  if (name == "silu" || name == "swish") return Activation::Silu;
  if (name == "relu") return Activation::Relu;
  if (name == "tanh") return Activation::Tanh;
  throw CodedError("MEDTUNE_UNSUPPORTED_MODEL",
                   "unsupported activation '" + name + "' (supported: gelu, gelu_new, gelu_pytorch_tanh, quick_gelu, silu, relu, tanh)");
}

at::Tensor activate(const at::Tensor& x, Activation act) {
  switch (act) {
    case Activation::Gelu: return at::gelu(x);
    case Activation::GeluTanh: return at::gelu(x, "tanh");
    case Activation::QuickGelu: return x * at::sigmoid(x * 1.702);
    case Activation::Silu: return at::silu(x);
    case Activation::Relu: return at::relu(x);
    case Activation::Tanh: return at::tanh(x);
  }
  return x;
}

at::Tensor dropout(const at::Tensor& x, double p, bool training) {
  if (!training || p <= 0.0) return x;
  return at::dropout(x, p, true);
}

void normalInit(at::Tensor& t, double std, at::Generator& generator) {
  // Drawn in float32 on the host with the seeded generator, then copied: a seed gives the same
  // model whatever the dtype and device, and only one tensor is staged at a time.
  at::Tensor cpu = at::empty(t.sizes(), at::TensorOptions().dtype(at::kFloat));
  cpu.normal_(0.0, std, generator);
  t.copy_(cpu);
}

void truncNormal(at::Tensor& t, double std, at::Generator& generator) {
  // Sample in float32 and clamp-resample like torch.nn.init.trunc_normal_'s inverse-CDF method.
  at::Tensor u = at::empty(t.sizes(), t.options().dtype(at::kFloat).device(c10::kCPU));
  const double a = -2.0, b = 2.0;  // in units of std
  auto cdf = [](double x) { return (1.0 + std::erf(x / std::sqrt(2.0))) / 2.0; };
  u.uniform_(2 * cdf(a) - 1, 2 * cdf(b) - 1, generator);
  u.erfinv_().mul_(std * std::sqrt(2.0)).clamp_(a * std, b * std);
  t.copy_(u);
}

// ---- Linear ------------------------------------------------------------------------------------

Linear::Linear(int64_t in, int64_t out, bool hasBias, Kind kind, Part part, const Init& init)
    : Module("Linear", kind, part), in_(in), out_(out) {
  weight = init.empty({out, in});
  addParameter("weight", &weight);
  if (hasBias) bias = init.empty({out});
  addParameter("bias", &bias);
}

at::Tensor Linear::forward(const at::Tensor& x) const {
  at::Tensor y = at::linear(x, weight, bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt);
  if (adapter_ && !merged_) return adapter_->forward(*this, x, y);
  return y;
}

void Linear::attachAdapter(std::shared_ptr<LinearAdapter> adapter, const std::string& path) {
  if (adapter_) throw ArgumentError("attachAdapter(): " + path + " already has a '" + adapter_->kind() + "' adapter; detach it first");
  adapter_ = std::move(adapter);
  merged_ = false;
  adapter_->setTraining(training_);
}

std::shared_ptr<LinearAdapter> Linear::detachAdapter() {
  if (adapter_ && merged_) unmergeAdapter();
  auto out = std::move(adapter_);
  adapter_.reset();
  return out;
}

void Linear::mergeAdapter() {
  if (!adapter_ || merged_) return;
  at::NoGradGuard noGrad;
  adapter_->merge(*this);
  merged_ = true;
}

void Linear::unmergeAdapter() {
  if (!adapter_ || !merged_) return;
  at::NoGradGuard noGrad;
  adapter_->unmerge(*this);
  merged_ = false;
}

void Linear::collectExtraParameters(const std::string& prefix, std::vector<ParamRef>& out) {
  if (!adapter_) return;
  for (auto& [name, slot] : adapter_->parameters()) out.push_back(ParamRef{join(prefix, name), slot, Kind::Adapter, part(), this, false});
}

void Linear::onTrainingChanged() {
  if (adapter_) adapter_->setTraining(training_);
}

void Linear::initialize(double std, at::Generator& generator) {
  normalInit(weight, std, generator);
  if (bias.defined()) bias.zero_();
}

// ---- norms ---------------------------------------------------------------------------------------

LayerNorm::LayerNorm(int64_t dim, double eps, Part part, const Init& init, bool hasBias)
    : Module("LayerNorm", Kind::Norm, part), dim_(dim), eps_(eps) {
  weight = init.empty({dim});
  addParameter("weight", &weight);
  if (hasBias) bias = init.empty({dim});
  addParameter("bias", &bias);
}

at::Tensor LayerNorm::forward(const at::Tensor& x) const {
  return at::layer_norm(x, {dim_}, weight, bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt, eps_);
}

void LayerNorm::initialize(double, at::Generator&) {
  weight.fill_(1.0);
  if (bias.defined()) bias.zero_();
}

RMSNorm::RMSNorm(int64_t dim, double eps, Part part, const Init& init) : Module("RMSNorm", Kind::Norm, part), eps_(eps) {
  weight = init.empty({dim});
  addParameter("weight", &weight);
}

at::Tensor RMSNorm::forward(const at::Tensor& x) const {
  // LlamaRMSNorm: normalise in float32, cast back to the input dtype, then scale.
  at::Tensor h = x.to(at::kFloat);
  at::Tensor variance = h.pow(2).mean(-1, true);
  h = h * at::rsqrt(variance + eps_);
  return weight * h.to(x.scalar_type());
}

void RMSNorm::initialize(double, at::Generator&) { weight.fill_(1.0); }

// ---- embeddings ----------------------------------------------------------------------------------

Embedding::Embedding(int64_t num, int64_t dim, Kind kind, Part part, const Init& init) : Module("Embedding", kind, part) {
  weight = init.empty({num, dim});
  addParameter("weight", &weight);
}

at::Tensor Embedding::forward(const at::Tensor& ids) const { return at::embedding(weight, ids); }

void Embedding::initialize(double std, at::Generator& generator) { normalInit(weight, std, generator); }

PatchConv::PatchConv(int64_t channels, int64_t dim, int64_t patch, bool hasBias, Part part, const Init& init)
    : Module("Conv2d", Kind::PatchEmbedding, part), channels_(channels), patch_(patch) {
  weight = init.empty({dim, channels, patch, patch});
  addParameter("weight", &weight);
  if (hasBias) bias = init.empty({dim});
  addParameter("bias", &bias);
}

at::Tensor PatchConv::forward(const at::Tensor& pixels) const {
  if (pixels.dim() != 4 || pixels.size(1) != channels_) {
    throw ArgumentError("pixel_values must have shape (batch, " + std::to_string(channels_) + ", height, width), got " +
                        c10::str(pixels.sizes()));
  }
  at::Tensor x = at::conv2d(pixels.to(weight.scalar_type()), weight, bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt,
                            {patch_, patch_});
  return x.flatten(2).transpose(1, 2);
}

void PatchConv::initialize(double std, at::Generator& generator) {
  normalInit(weight, std, generator);
  if (bias.defined()) bias.zero_();
}

}  // namespace medtune::modules
