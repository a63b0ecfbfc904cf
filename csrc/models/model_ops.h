// Helpers for native functions that take a model handle (generation, and the PEFT layer's
// training step): unwrapping, the busy guard, batches to and from JavaScript.
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "common/args.h"
#include "models/model.h"

namespace medtune::models {

constexpr const char* kModelKind = "Model";

std::shared_ptr<Model> unwrapModel(const Args& a, size_t i);

// Throws MEDTUNE_MODEL_BUSY when a queued job still uses the model.
void ensureIdle(Model& model, const std::string& what);

// Marks the model busy for the lifetime of a queued job (capture it in the job).
struct BusyGuard {
  explicit BusyGuard(std::shared_ptr<Model> model);
  ~BusyGuard();
  BusyGuard(const BusyGuard&) = delete;
  BusyGuard& operator=(const BusyGuard&) = delete;
  std::shared_ptr<Model> model;
};

c10::Device modelDevice(Model& model);

// A { name: Tensor } object (null/undefined entries skipped).
TensorMap batchFromJs(const Args& a, size_t i);
Napi::Object tensorMapToJs(Napi::Env env, const TensorMap& map);

}  // namespace medtune::models
