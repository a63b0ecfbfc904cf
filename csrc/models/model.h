// A whole model: a Module whose forward takes a name -> tensor batch (HF forward argument names:
// input_ids, attention_mask, pixel_values, labels, position_ids) and returns a name -> tensor
// output (always `logits`, plus `loss` when labels are given, with HF's loss semantics), so one
// generic training step drives every family. Families register a factory by name.
#pragma once
#include <ATen/ATen.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/spec.h"
#include "modules/module.h"

namespace medtune::models {

using TensorMap = std::map<std::string, at::Tensor>;

struct ForwardOptions {
  bool outputHiddenStates = false;  // adds hidden_states.0 .. hidden_states.N
  // false: the caller needs the loss only (training and evaluation steps), so a language model
  // may compute it in chunks without materialising logits (LanguageModel::setLossChunkTokens);
  // `logits` is then absent from the output.
  bool logits = true;
};

class CausalLM;

class Model : public modules::Module {
 public:
  Model(std::string typeName, std::string family, modules::Part part) : Module(std::move(typeName), modules::Kind::Other, part), family_(std::move(family)) {}

  const std::string& family() const { return family_; }
  virtual TensorMap forward(const TensorMap& batch, const ForwardOptions& options) = 0;
  // Decoder-only language models (and LLaVA) expose the pieces generation needs.
  virtual CausalLM* causalLM() { return nullptr; }
  // Checkpoint keys this model knows and deliberately does not load (ViTModel's pooler when the
  // config has none, say), so that they are not reported as unexpected.
  virtual bool ignoresKey(const std::string& name) const { return false; }
  // Keys that are another parameter under a second name (tied lm_head): not loaded, not saved.
  virtual bool isTiedKey(const std::string& name) const { return false; }

  // Set while a job on the compute queue uses the model; changes from JavaScript wait for it.
  std::atomic<int> busy{0};
  // Mixed precision (csrc/train/mixed_precision.cpp): when set, every forward, generation and
  // training step runs under autocast to this dtype (runtime/autocast.h); frozen weights are held
  // in it, trainable ones as float32 masters.
  std::optional<at::ScalarType> computeDType;

 private:
  std::string family_;
};

using ModelFactory = std::function<std::shared_ptr<Model>(const Spec& spec, const modules::Init& init)>;

struct FamilyRegistration {
  FamilyRegistration(const char* family, ModelFactory factory);
};
const ModelFactory* findFamily(const std::string& family);
std::vector<std::string> families();

// Tensor from the batch, or an undefined tensor.
at::Tensor batchTensor(const TensorMap& batch, const std::string& name);
// Tensor from the batch that must be there; the error names the key and the model.
at::Tensor requireTensor(const TensorMap& batch, const std::string& name, const std::string& model);

}  // namespace medtune::models

#define MEDTUNE_MODEL_FAMILY(ident, family, factory) \
  static ::medtune::models::FamilyRegistration medtune_model_family_##ident(family, factory)
