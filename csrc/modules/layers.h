// The layers the model families are built from. Each computes exactly what its PyTorch /
// transformers counterpart computes (RMSNorm in float32 then cast back, as LlamaRMSNorm does).
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <string>

#include "modules/adapter.h"
#include "modules/module.h"

namespace medtune::modules {

enum class Activation { Gelu, GeluTanh, QuickGelu, Silu, Relu, Tanh };
// HF's hidden_act names: gelu, gelu_new / gelu_pytorch_tanh, quick_gelu, silu / swish, relu, tanh.
Activation parseActivation(const std::string& name);
at::Tensor activate(const at::Tensor& x, Activation act);

at::Tensor dropout(const at::Tensor& x, double p, bool training);

class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias, Kind kind, Part part, const Init& init);
  at::Tensor forward(const at::Tensor& x) const;

  int64_t inFeatures() const { return in_; }
  int64_t outFeatures() const { return out_; }

  void attachAdapter(std::shared_ptr<LinearAdapter> adapter, const std::string& path);
  std::shared_ptr<LinearAdapter> detachAdapter();  // unmerges a merged adapter first
  const std::shared_ptr<LinearAdapter>& adapter() const { return adapter_; }
  void mergeAdapter();
  void unmergeAdapter();
  bool merged() const { return merged_; }

  at::Tensor weight;
  at::Tensor bias;

 protected:
  void collectExtraParameters(const std::string& prefix, std::vector<ParamRef>& out) override;
  void onTrainingChanged() override;
  void initialize(double std, at::Generator& generator) override;

 private:
  int64_t in_, out_;
  std::shared_ptr<LinearAdapter> adapter_;
  bool merged_ = false;
};

class LayerNorm : public Module {
 public:
  LayerNorm(int64_t dim, double eps, Part part, const Init& init, bool bias = true);
  at::Tensor forward(const at::Tensor& x) const;
  at::Tensor weight;
  at::Tensor bias;

 protected:
  void initialize(double std, at::Generator& generator) override;

 private:
  int64_t dim_;
  double eps_;
};

class RMSNorm : public Module {
 public:
  RMSNorm(int64_t dim, double eps, Part part, const Init& init);
  at::Tensor forward(const at::Tensor& x) const;
  at::Tensor weight;

 protected:
  void initialize(double std, at::Generator& generator) override;

 private:
  double eps_;
};

class Embedding : public Module {
 public:
  Embedding(int64_t num, int64_t dim, Kind kind, Part part, const Init& init);
  at::Tensor forward(const at::Tensor& ids) const;
  at::Tensor weight;

 protected:
  void initialize(double std, at::Generator& generator) override;
};

// The patch embedding of vision transformers: a Conv2d with kernel = stride = patch size.
class PatchConv : public Module {
 public:
  PatchConv(int64_t channels, int64_t dim, int64_t patch, bool bias, Part part, const Init& init);
  // (B, C, H, W) -> (B, H/p * W/p, dim)
  at::Tensor forward(const at::Tensor& pixels) const;
  at::Tensor weight;
  at::Tensor bias;
  int64_t patch() const { return patch_; }

 protected:
  void initialize(double std, at::Generator& generator) override;

 private:
  int64_t channels_;
  int64_t patch_;
};

// normal(0, std) drawn in float32 on the host, copied into t (any dtype, any device).
void normalInit(at::Tensor& t, double std, at::Generator& generator);
// Truncated normal on [-2 std, 2 std] (timm / HF trunc_normal_ for position embeddings).
void truncNormal(at::Tensor& t, double std, at::Generator& generator);

}  // namespace medtune::modules
