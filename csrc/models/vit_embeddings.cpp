#include "models/vit_embeddings.h"

#include <ATen/ATen.h>

#include <cmath>

#include "common/errors.h"

namespace medtune::models {

using modules::Kind;

VitEmbeddingNames VitEmbeddingNames::hfVit() { return {"cls_token", "position_embeddings", "patch_embeddings.projection"}; }
VitEmbeddingNames VitEmbeddingNames::timm() { return {"cls_token", "pos_embed", "patch_embed.proj"}; }
VitEmbeddingNames VitEmbeddingNames::hfBlip() { return {"class_embedding", "position_embedding", "patch_embedding"}; }

VitEmbeddings::VitEmbeddings(const VitEmbeddingConfig& c, const VitEmbeddingNames& names, const modules::Init& init)
    : Module("ViTEmbeddings", Kind::Other, c.part), config_(c) {
  if (c.patch <= 0 || c.image % c.patch != 0) {
    throw ArgumentError("vision spec: image size " + std::to_string(c.image) + " is not a multiple of the patch size " + std::to_string(c.patch));
  }
  const int64_t patches = grid() * grid();
  if (c.classToken) cls = init.empty({1, 1, c.dim});
  pos = init.empty({1, patches + extraPositions(), c.dim});
  addParameter(names.cls, &cls);
  addParameter(names.pos, &pos, Kind::PositionEmbedding);
  proj = addChild(names.proj, std::make_shared<modules::PatchConv>(c.channels, c.dim, c.patch, c.patchBias, c.part, init));
}

at::Tensor VitEmbeddings::forward(const at::Tensor& pixels) const {
  if (pixels.dim() == 4 && (pixels.size(2) != config_.image || pixels.size(3) != config_.image)) {
    throw ArgumentError("pixel_values are " + std::to_string(pixels.size(2)) + "x" + std::to_string(pixels.size(3)) + " but the model takes " +
                        std::to_string(config_.image) + "x" + std::to_string(config_.image) + " images");
  }
  at::Tensor x = proj->forward(pixels);
  const int64_t B = x.size(0);
  if (config_.noEmbedClass) {
    x = x + pos;
    if (config_.classToken) x = at::cat({cls.expand({B, -1, -1}), x}, 1);
    return x;
  }
  if (config_.classToken) x = at::cat({cls.expand({B, -1, -1}), x}, 1);
  return x + pos;
}

std::optional<at::Tensor> VitEmbeddings::adaptCheckpointTensor(const at::Tensor* slot, const at::Tensor& source, std::string& note) const {
  if (slot != &pos || source.dim() != 3 || source.size(0) != 1 || source.size(2) != pos.size(2)) return std::nullopt;
  const int64_t extra = extraPositions();
  const int64_t rows = source.size(1) - extra;
  const auto oldGrid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(std::max<int64_t>(rows, 0)))));
  if (rows <= 0 || oldGrid * oldGrid != rows) return std::nullopt;
  note = std::to_string(oldGrid) + "x" + std::to_string(oldGrid) + " -> " + std::to_string(grid()) + "x" + std::to_string(grid()) +
         " patch grid (bicubic)";
  return interpolatePositionEmbedding(source, extra, grid());
}

void VitEmbeddings::initialize(double std, at::Generator& generator) {
  modules::truncNormal(pos, std, generator);
  if (cls.defined()) modules::truncNormal(cls, std, generator);
}

at::Tensor interpolatePositionEmbedding(const at::Tensor& pos, int64_t extra, int64_t newGrid) {
  at::NoGradGuard noGrad;
  const int64_t D = pos.size(2);
  const auto oldGrid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(pos.size(1) - extra))));
  at::Tensor src = pos.to(at::kFloat);
  at::Tensor extraRows = src.narrow(1, 0, extra);
  at::Tensor patches = src.narrow(1, extra, oldGrid * oldGrid).reshape({1, oldGrid, oldGrid, D}).permute({0, 3, 1, 2});
  patches = at::upsample_bicubic2d(patches, {newGrid, newGrid}, /*align_corners=*/false);
  patches = patches.permute({0, 2, 3, 1}).flatten(1, 2);
  return at::cat({extraRows, patches}, 1).to(pos.scalar_type());
}

}  // namespace medtune::models
