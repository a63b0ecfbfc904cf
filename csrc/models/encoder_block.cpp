#include "models/encoder_block.h"

#include <ATen/ATen.h>

namespace medtune::models {

using modules::Kind;
using modules::Linear;

EncoderBlockNames EncoderBlockNames::hfVit() {
  EncoderBlockNames n;
  n.norm1 = "layernorm_before";
  n.norm2 = "layernorm_after";
  n.q = "attention.attention.query";
  n.k = "attention.attention.key";
  n.v = "attention.attention.value";
  n.out = "attention.output.dense";
  n.fc1 = "intermediate.dense";
  n.fc2 = "output.dense";
  return n;
}

EncoderBlockNames EncoderBlockNames::timm() {
  EncoderBlockNames n;
  n.norm1 = "norm1";
  n.norm2 = "norm2";
  n.qkv = "attn.qkv";
  n.out = "attn.proj";
  n.fc1 = "mlp.fc1";
  n.fc2 = "mlp.fc2";
  n.ls1 = "ls1";
  n.ls2 = "ls2";
  return n;
}

EncoderBlockNames EncoderBlockNames::clip() {
  EncoderBlockNames n;
  n.norm1 = "layer_norm1";
  n.norm2 = "layer_norm2";
  n.q = "self_attn.q_proj";
  n.k = "self_attn.k_proj";
  n.v = "self_attn.v_proj";
  n.out = "self_attn.out_proj";
  n.fc1 = "mlp.fc1";
  n.fc2 = "mlp.fc2";
  return n;
}

LayerScale::LayerScale(int64_t dim, modules::Part part, const modules::Init& init) : Module("LayerScale", Kind::Other, part) {
  gamma = init.empty({dim});
  addParameter("gamma", &gamma);
}

void LayerScale::initialize(double, at::Generator&) { gamma.fill_(1e-5); }

EncoderBlock::EncoderBlock(const EncoderBlockConfig& c, const EncoderBlockNames& names, const modules::Init& init, const std::string& typeName)
    : Module(typeName, Kind::Other, c.part), config_(c) {
  norm1_ = addChild(names.norm1, std::make_shared<modules::LayerNorm>(c.dim, c.eps, c.part, init));
  if (c.fusedQkv) {
    qkv_ = addChild(names.qkv, std::make_shared<Linear>(c.dim, 3 * c.dim, c.qkvBias, Kind::Attention, c.part, init));
  } else {
    q_ = addChild(names.q, std::make_shared<Linear>(c.dim, c.dim, c.qkvBias, Kind::Attention, c.part, init));
    k_ = addChild(names.k, std::make_shared<Linear>(c.dim, c.dim, c.qkvBias, Kind::Attention, c.part, init));
    v_ = addChild(names.v, std::make_shared<Linear>(c.dim, c.dim, c.qkvBias, Kind::Attention, c.part, init));
  }
  out_ = addChild(names.out, std::make_shared<Linear>(c.dim, c.dim, true, Kind::Attention, c.part, init));
  if (c.layerScale) ls1_ = addChild(names.ls1, std::make_shared<LayerScale>(c.dim, c.part, init));
  norm2_ = addChild(names.norm2, std::make_shared<modules::LayerNorm>(c.dim, c.eps, c.part, init));
  fc1_ = addChild(names.fc1, std::make_shared<Linear>(c.dim, c.mlpDim, true, Kind::Mlp, c.part, init));
  fc2_ = addChild(names.fc2, std::make_shared<Linear>(c.mlpDim, c.dim, true, Kind::Mlp, c.part, init));
  if (c.layerScale) ls2_ = addChild(names.ls2, std::make_shared<LayerScale>(c.dim, c.part, init));
}

at::Tensor EncoderBlock::attention(const at::Tensor& x) const {
  const int64_t B = x.size(0), N = x.size(1), H = config_.heads, D = config_.dim / config_.heads;
  at::Tensor q, k, v;
  if (qkv_) {
    // timm: reshape(B, N, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    at::Tensor qkv = qkv_->forward(x).reshape({B, N, 3, H, D}).permute({2, 0, 3, 1, 4});
    q = qkv[0];
    k = qkv[1];
    v = qkv[2];
  } else {
    q = q_->forward(x).view({B, N, H, D}).transpose(1, 2);
    k = k_->forward(x).view({B, N, H, D}).transpose(1, 2);
    v = v_->forward(x).view({B, N, H, D}).transpose(1, 2);
  }
  double p = training_ ? config_.attentionDropout : 0.0;
  at::Tensor o = at::scaled_dot_product_attention(q, k, v, std::nullopt, p, false);
  return out_->forward(o.transpose(1, 2).reshape({B, N, H * D}));
}

at::Tensor EncoderBlock::dropPath(const at::Tensor& x) const {
  if (!training_ || config_.dropPath <= 0) return x;
  // timm's DropPath: one Bernoulli draw per sample, survivors scaled by 1 / keep.
  double keep = 1.0 - config_.dropPath;
  std::vector<int64_t> shape(x.dim(), 1);
  shape[0] = x.size(0);
  at::Tensor mask = at::empty(shape, x.options()).bernoulli_(keep).div_(keep);
  return x * mask;
}

at::Tensor EncoderBlock::forward(const at::Tensor& x) const {
  at::Tensor h = attention(norm1_->forward(x));
  h = modules::dropout(h, config_.hiddenDropout, training_);
  if (ls1_) h = h * ls1_->gamma;
  at::Tensor y = x + dropPath(h);
  h = fc1_->forward(norm2_->forward(y));
  h = modules::activate(h, config_.activation);
  h = modules::dropout(h, config_.mlpDropout, training_);
  h = fc2_->forward(h);
  h = modules::dropout(h, config_.mlpDropout, training_);
  h = modules::dropout(h, config_.hiddenDropout, training_);
  if (ls2_) h = h * ls2_->gamma;
  return y + dropPath(h);
}

}  // namespace medtune::models
