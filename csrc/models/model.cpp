#include "models/model.h"

#include "common/errors.h"

namespace medtune::models {

namespace {
std::map<std::string, ModelFactory>& registry() {
  static std::map<std::string, ModelFactory> factories;
  return factories;
}
}  // namespace

FamilyRegistration::FamilyRegistration(const char* family, ModelFactory factory) { registry()[family] = std::move(factory); }

const ModelFactory* findFamily(const std::string& family) {
  auto it = registry().find(family);
  return it == registry().end() ? nullptr : &it->second;
}

std::vector<std::string> families() {
  std::vector<std::string> out;
  for (const auto& [name, f] : registry()) out.push_back(name);
  return out;
}

at::Tensor batchTensor(const TensorMap& batch, const std::string& name) {
  auto it = batch.find(name);
  return it == batch.end() ? at::Tensor() : it->second;
}

at::Tensor requireTensor(const TensorMap& batch, const std::string& name, const std::string& model) {
  at::Tensor t = batchTensor(batch, name);
  if (!t.defined()) throw ArgumentError("forward(): the " + model + " model needs '" + name + "' in the batch");
  return t;
}

}  // namespace medtune::models
