// Out-of-memory errors of training and evaluation steps, made actionable. A CUDA out-of-memory
// error (c10::OutOfMemoryError, or a CUDA "out of memory" c10::Error from cuBLAS/cuDNN)
// anywhere in a step becomes a JavaScript Error with code MEDTUNE_OUT_OF_MEMORY whose message
// says which stage ran out (runtime/step_stage.h: load / forward layer N / loss / backward /
// optimizer step), the batch's shapes, and what to change (--batch-size, sequence length,
// --gradient-checkpointing). The process survives: the step's partial gradients are cleared and
// the CUDA caching allocator's free blocks are returned, so the next step (with a smaller batch)
// starts from the weights and optimizer state as they were before the failed step.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "models/model.h"

namespace medtune::train {

struct GuardOptions {
  std::string job;          // 'training step', 'forward pass'
  bool clearGrads = true;   // a training step owns the gradients it was accumulating
};

// Must be called inside a catch block. Rethrows the exception in flight: an out-of-memory error
// as CodedError(MEDTUNE_OUT_OF_MEMORY) after cleaning up, anything else unchanged (after
// clearing the step's gradients when options.clearGrads: a failed step leaves none behind).
[[noreturn]] void rethrowStepFailure(models::Model& model, const GuardOptions& options);

// Resets the stage tracker for a new job.
void beginGuardedJob();

// Runs fn() as one guarded job (resets the stage tracker first).
template <class F>
auto guardStep(models::Model& model, const GuardOptions& options, F&& fn) -> decltype(fn()) {
  beginGuardedJob();
  try {
    return fn();
  } catch (...) {
    rethrowStepFailure(model, options);
  }
}

}  // namespace medtune::train
