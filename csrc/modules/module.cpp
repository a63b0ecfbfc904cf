#include "modules/module.h"

#include <c10/core/GradMode.h>

#include "modules/activation_checkpoint.h"
#include "runtime/step_stage.h"

namespace medtune::modules {

const char* kindName(Kind kind) {
  switch (kind) {
    case Kind::Norm: return "norm";
    case Kind::Attention: return "attention";
    case Kind::Mlp: return "mlp";
    case Kind::Embedding: return "embedding";
    case Kind::Head: return "head";
    case Kind::Projector: return "projector";
    case Kind::PatchEmbedding: return "patch_embedding";
    case Kind::PositionEmbedding: return "position_embedding";
    case Kind::Adapter: return "adapter";
    case Kind::Other: return "other";
  }
  return "other";
}

const char* partName(Part part) {
  switch (part) {
    case Part::Vision: return "vision";
    case Part::Language: return "language";
    case Part::Projector: return "projector";
    case Part::Head: return "head";
    case Part::Decoder: return "decoder";
  }
  return "other";
}

std::string Module::join(const std::string& prefix, const std::string& name) {
  if (prefix.empty()) return name;
  if (name.empty()) return prefix;
  return prefix + "." + name;
}

void Module::addParameter(const std::string& name, at::Tensor* slot, std::optional<Kind> kind) {
  params_.push_back(Slot{name, slot, kind});
}

void Module::collectParameters(const std::string& prefix, std::vector<ParamRef>& out) {
  for (auto& p : params_) {
    if (!p.tensor->defined()) continue;  // optional parameters that this configuration lacks
    out.push_back(ParamRef{join(prefix, p.name), p.tensor, p.kind.value_or(kind_), part_, this, true});
  }
  collectExtraParameters(prefix, out);
  for (auto& [path, child] : children_) child->collectParameters(join(prefix, path), out);
}

std::vector<ParamRef> Module::parameters() {
  std::vector<ParamRef> out;
  collectParameters("", out);
  return out;
}

void Module::visitModules(const std::string& prefix, const std::function<void(const std::string&, Module&)>& fn) {
  fn(prefix, *this);
  for (auto& [path, child] : children_) child->visitModules(join(prefix, path), fn);
}

Module* Module::findModule(const std::string& path) {
  Module* found = nullptr;
  visitModules("", [&](const std::string& p, Module& m) {
    if (!found && p == path) found = &m;
  });
  return found;
}

void Module::setTraining(bool training) {
  training_ = training;
  onTrainingChanged();
  for (auto& [path, child] : children_) child->setTraining(training);
}

void Module::initializeAll(double std, at::Generator& generator) {
  at::NoGradGuard noGrad;
  initialize(std, generator);
  for (auto& [path, child] : children_) child->initializeAll(std, generator);
}

int64_t Module::setCheckpointing(bool on) {
  int64_t n = 0;
  visitModules("", [&](const std::string&, Module& m) {
    m.checkpointed_ = on && m.checkpointable();
    n += m.checkpointed_ ? 1 : 0;
  });
  return n;
}

at::Tensor runLayer(Module& layer, const at::Tensor& hidden, const std::function<at::Tensor(const at::Tensor&)>& body) {
  const int64_t index = stage::enterLayer(partName(layer.part()), layer.typeName());
  if (layer.checkpointed() && at::GradMode::is_enabled()) return checkpointLayer(layer, index, hidden, body);
  return body(hidden);
}

}  // namespace medtune::modules
