#include "models/rope.h"

#include <ATen/ATen.h>

#include <cmath>

#include "common/errors.h"

namespace medtune::models {

namespace {

// 1 / base ** (arange(0, dim, 2) / dim), in float32 exactly as transformers computes it.
at::Tensor baseInvFreq(double base, int64_t dim) {
  at::Tensor exponents = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(dim);
  return at::reciprocal(at::pow(at::Scalar(base), exponents));
}

double yarnMscale(double scale, double mscale) { return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

}  // namespace

RopeConfig RopeConfig::fromSpec(const Spec& s, int64_t headDim, int64_t maxPositionEmbeddings) {
  RopeConfig c;
  c.type = s.string("type", "default");
  c.theta = s.number("theta", 10000.0);
  c.headDim = headDim;
  c.maxPositionEmbeddings = maxPositionEmbeddings;
  c.factor = s.number("factor", 1.0);
  c.lowFreqFactor = s.number("lowFreqFactor", 1.0);
  c.highFreqFactor = s.number("highFreqFactor", 4.0);
  c.originalMaxPositionEmbeddings = s.integer("originalMaxPositionEmbeddings", maxPositionEmbeddings);
  c.attentionFactor = s.number("attentionFactor", -1.0);
  c.betaFast = s.number("betaFast", 32.0);
  c.betaSlow = s.number("betaSlow", 1.0);
  c.mscale = s.number("mscale", 0.0);
  c.mscaleAllDim = s.number("mscaleAllDim", 0.0);
  c.truncate = s.boolean("truncate", true);
  if (c.type != "default" && c.type != "linear" && c.type != "dynamic" && c.type != "llama3" && c.type != "yarn") {
    throw CodedError("MEDTUNE_UNSUPPORTED_MODEL", "rope_type '" + c.type + "' is not supported (default, linear, dynamic, llama3, yarn)");
  }
  return c;
}

Rope::Rope(RopeConfig config) : config_(std::move(config)), maxSeqLenCached_(config_.maxPositionEmbeddings) {
  original_ = invFreqFor(0);
  current_ = original_;
}

at::Tensor Rope::invFreqFor(int64_t seqLen) const {
  const RopeConfig& c = config_;
  const int64_t dim = c.headDim;
  if (c.type == "default") return baseInvFreq(c.theta, dim);
  if (c.type == "linear") return baseInvFreq(c.theta, dim) / c.factor;
  if (c.type == "dynamic") {
    double len = std::max<double>(static_cast<double>(seqLen), static_cast<double>(c.maxPositionEmbeddings));
    double base = c.theta * std::pow((c.factor * len / c.maxPositionEmbeddings) - (c.factor - 1), static_cast<double>(dim) / (dim - 2));
    return baseInvFreq(base, dim);
  }
  if (c.type == "llama3") {
    at::Tensor inv = baseInvFreq(c.theta, dim);
    const double oldContext = static_cast<double>(c.originalMaxPositionEmbeddings);
    const double lowWavelen = oldContext / c.lowFreqFactor;
    const double highWavelen = oldContext / c.highFreqFactor;
    at::Tensor wavelen = 2 * M_PI / inv;
    at::Tensor llama = at::where(wavelen > lowWavelen, inv / c.factor, inv);
    at::Tensor smooth = (oldContext / wavelen - c.lowFreqFactor) / (c.highFreqFactor - c.lowFreqFactor);
    at::Tensor smoothed = (1 - smooth) * llama / c.factor + smooth * llama;
    at::Tensor medium = at::logical_not(wavelen < highWavelen).logical_and(at::logical_not(wavelen > lowWavelen));
    return at::where(medium, smoothed, llama);
  }
  // yarn
  const double base = c.theta;
  const double originalMax = static_cast<double>(c.originalMaxPositionEmbeddings);
  auto correctionDim = [&](double rotations) { return (dim * std::log(originalMax / (rotations * 2 * M_PI))) / (2 * std::log(base)); };
  double low = correctionDim(c.betaFast), high = correctionDim(c.betaSlow);
  if (c.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;
  at::Tensor posFreqs = at::pow(at::Scalar(base), at::arange(0, dim, 2).to(at::kFloat) / static_cast<double>(dim));
  at::Tensor extrapolation = 1.0 / posFreqs;
  at::Tensor interpolation = 1.0 / (c.factor * posFreqs);
  at::Tensor ramp = at::clamp((at::arange(dim / 2, at::kFloat) - low) / (high - low), 0, 1);
  at::Tensor extrapolationFactor = 1 - ramp;
  return interpolation * (1 - extrapolationFactor) + extrapolation * extrapolationFactor;
}

std::pair<at::Tensor, at::Tensor> Rope::cosSin(const at::Tensor& positionIds, at::ScalarType dtype) {
  at::Tensor inv;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (config_.type == "dynamic") {
      // transformers' dynamic_frequency_update: grow when a longer sequence arrives, return to the
      // original frequencies when a short one follows.
      int64_t seqLen = positionIds.max().item<int64_t>() + 1;
      if (seqLen > maxSeqLenCached_) {
        current_ = invFreqFor(seqLen);
        maxSeqLenCached_ = seqLen;
      }
      if (seqLen < config_.maxPositionEmbeddings && maxSeqLenCached_ > config_.maxPositionEmbeddings) {
        current_ = original_;
        maxSeqLenCached_ = config_.maxPositionEmbeddings;
      }
    }
    inv = current_;
  }
  if (config_.type == "yarn") {
    attentionScaling_ = config_.attentionFactor >= 0 ? config_.attentionFactor
                        : (config_.mscale != 0 && config_.mscaleAllDim != 0)
                            ? yarnMscale(config_.factor, config_.mscale) / yarnMscale(config_.factor, config_.mscaleAllDim)
                            : yarnMscale(config_.factor, 1.0);
  }
  at::Tensor freqs = positionIds.to(at::kFloat).unsqueeze(-1) * inv.to(positionIds.device());  // (B, S, D/2)
  at::Tensor emb = at::cat({freqs, freqs}, -1);
  at::Tensor cos = emb.cos(), sin = emb.sin();
  if (attentionScaling_ != 1.0) {
    cos = cos * attentionScaling_;
    sin = sin * attentionScaling_;
  }
  return {cos.to(dtype), sin.to(dtype)};
}

at::Tensor applyRotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  at::Tensor rotated = at::cat({-x.narrow(-1, half, x.size(-1) - half), x.narrow(-1, 0, half)}, -1);
  return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
}

}  // namespace medtune::models
