#include "runtime/step_stage.h"

#include <c10/util/Exception.h>

#include <cstdlib>
#include <mutex>

namespace medtune::stage {

namespace {

struct State {
  Stage stage = Stage::None;
  std::string layerPart, layerType;
  int64_t layerIndex = -1;
  bool recomputing = false;
  std::map<std::string, int64_t> counters;  // layers entered per part in this forward pass
  size_t micro = 0, microCount = 0;
  int64_t rows = -1;
  std::string shapes;
};

std::mutex mutex;
State state;

const char* stageKey(Stage s) {
  switch (s) {
    case Stage::Load: return "load";
    case Stage::Forward: return "forward";
    case Stage::Loss: return "loss";
    case Stage::Backward: return "backward";
    case Stage::Optimizer: return "optimizer";
    case Stage::None: break;
  }
  return "";
}

// Test-only: see the header. Called with `mutex` not held.
void maybeInject(const std::string& key, int64_t rows) {
  const char* want = std::getenv("MEDTUNE_INJECT_OOM");
  if (!want || !*want) return;
  const std::string w(want);
  const bool match = w == key || (w == "forward" && key.rfind("forward.", 0) == 0);
  if (!match) return;
  if (const char* min = std::getenv("MEDTUNE_INJECT_OOM_MIN_BATCH"); min && *min) {
    if (rows < std::atoll(min)) return;
  }
  throw c10::OutOfMemoryError(c10::SourceLocation{__func__, __FILE__, static_cast<uint32_t>(__LINE__)},
                              "out of memory (injected by MEDTUNE_INJECT_OOM=" + w + " for testing; tried to allocate 1.00 GiB)");
}

}  // namespace

void resetJob() {
  std::lock_guard<std::mutex> lock(mutex);
  state = State{};
}

void beginMicroBatch(size_t index, size_t count, const std::map<std::string, at::Tensor>& batch) {
  int64_t rows = -1;
  {
    std::lock_guard<std::mutex> lock(mutex);
    state.micro = index;
    state.microCount = count;
    state.shapes.clear();
    for (const auto& [name, t] : batch) {
      if (!t.defined()) continue;
      state.shapes += (state.shapes.empty() ? "" : ", ") + name + " " + c10::str(t.sizes());
      if (rows < 0 && t.dim() > 0 && (name == "input_ids" || name == "pixel_values" || name == "labels")) rows = t.size(0);
    }
    for (const auto& [name, t] : batch)
      if (rows < 0 && t.defined() && t.dim() > 0) rows = t.size(0);
    state.rows = rows;
  }
  begin(Stage::Load);
}

void begin(Stage s) {
  int64_t rows;
  {
    std::lock_guard<std::mutex> lock(mutex);
    state.stage = s;
    state.recomputing = false;
    state.layerIndex = -1;
    if (s == Stage::Forward) state.counters.clear();
    rows = state.rows;
  }
  if (s != Stage::Forward) maybeInject(stageKey(s), rows);  // forward injects at its layers
}

int64_t enterLayer(const char* part, const std::string& typeName) {
  int64_t index, rows;
  {
    std::lock_guard<std::mutex> lock(mutex);
    index = state.counters[part]++;
    if (state.stage == Stage::Forward || state.stage == Stage::None) {
      state.layerPart = part;
      state.layerType = typeName;
      state.layerIndex = index;
    }
    rows = state.rows;
  }
  maybeInject(std::string("forward.") + part + "." + std::to_string(index), rows);
  return index;
}

void recomputeLayer(const char* part, int64_t index, const std::string& typeName) {
  std::lock_guard<std::mutex> lock(mutex);
  state.recomputing = true;
  state.layerPart = part;
  state.layerType = typeName;
  state.layerIndex = index;
}

Stage current() {
  std::lock_guard<std::mutex> lock(mutex);
  return state.stage;
}

std::string describe() {
  std::lock_guard<std::mutex> lock(mutex);
  const std::string layer = state.layerIndex >= 0 ? state.layerPart + " layer " + std::to_string(state.layerIndex) + ", " + state.layerType : "";
  switch (state.stage) {
    case Stage::Load: return "loading the batch onto the device";
    case Stage::Forward: return "the forward pass" + (layer.empty() ? std::string() : " (" + layer + ")");
    case Stage::Loss: return "the loss (output head and loss function)";
    case Stage::Backward:
      return "the backward pass" + (state.recomputing && !layer.empty() ? " (recomputing " + layer + " for activation checkpointing)" : std::string());
    case Stage::Optimizer: return "the optimizer step (gradient clipping and parameter update)";
    case Stage::None: break;
  }
  return "the step";
}

std::string tag() {
  std::lock_guard<std::mutex> lock(mutex);
  switch (state.stage) {
    case Stage::Load: return "load";
    case Stage::Forward:
      return state.layerIndex >= 0 ? "forward layer " + std::to_string(state.layerIndex) + " (" + state.layerPart + ")" : "forward";
    case Stage::Loss: return "loss";
    case Stage::Backward: return "backward";
    case Stage::Optimizer: return "optimizer step";
    case Stage::None: break;
  }
  return "step";
}

std::string batchDescription() {
  std::lock_guard<std::mutex> lock(mutex);
  if (state.shapes.empty()) return "";
  std::string out = state.microCount > 1 ? "micro-batch " + std::to_string(state.micro + 1) + " of " + std::to_string(state.microCount) + " " : "batch ";
  return out + "(" + state.shapes + ")";
}

}  // namespace medtune::stage
