// The input side of every vision transformer: class token, patch projection (a Conv2d with
// kernel = stride = patch) and learned position embeddings. HF ViT, timm / MAE and BLIP's vision
// tower (HF and original layouts) compute the same thing under different parameter names, so the
// names are data. A checkpoint trained at another image size is adapted on load by interpolating
// the position embeddings over the patch grid, as MAE's and BLIP's interpolate_pos_embed do.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <optional>
#include <string>

#include "modules/layers.h"

namespace medtune::models {

struct VitEmbeddingNames {
  std::string cls, pos, proj;

  static VitEmbeddingNames hfVit();   // cls_token, position_embeddings, patch_embeddings.projection
  static VitEmbeddingNames timm();    // cls_token, pos_embed, patch_embed.proj (also BLIP's visual_encoder)
  static VitEmbeddingNames hfBlip();  // class_embedding, position_embedding, patch_embedding
};

struct VitEmbeddingConfig {
  int64_t dim = 0;
  int64_t channels = 3;
  int64_t patch = 16;
  int64_t image = 224;
  bool classToken = true;
  bool noEmbedClass = false;  // timm: position embeddings for patches only, class token added after
  bool patchBias = true;
  modules::Part part = modules::Part::Vision;
};

class VitEmbeddings : public modules::Module {
 public:
  VitEmbeddings(const VitEmbeddingConfig& config, const VitEmbeddingNames& names, const modules::Init& init);
  // (B, C, H, W) -> (B, tokens, dim); the image must have the configured size.
  at::Tensor forward(const at::Tensor& pixels) const;

  int64_t grid() const { return config_.image / config_.patch; }
  // Rows of the position embedding that are not patches (the class token's, unless noEmbedClass).
  int64_t extraPositions() const { return config_.classToken && !config_.noEmbedClass ? 1 : 0; }

  std::optional<at::Tensor> adaptCheckpointTensor(const at::Tensor* slot, const at::Tensor& source, std::string& note) const override;

  at::Tensor cls, pos;
  std::shared_ptr<modules::PatchConv> proj;

 protected:
  void initialize(double std, at::Generator& generator) override;

 private:
  VitEmbeddingConfig config_;
};

// MAE's / BLIP's interpolate_pos_embed: `pos` (1, extra + g*g, D) -> (1, extra + newGrid^2, D).
// The first `extra` rows (class token) are kept; the patch rows are resized on the grid with
// bicubic interpolation (align_corners false), in float32, and returned in pos's dtype.
at::Tensor interpolatePositionEmbedding(const at::Tensor& pos, int64_t extra, int64_t newGrid);

}  // namespace medtune::models
