#include "train/oom_guard.h"

#include <c10/util/Exception.h>

#include "common/errors.h"
#include "models/model_ops.h"
#include "runtime/step_stage.h"
#ifdef MEDTUNE_WITH_CUDA
#include "cuda/device_info.h"
#endif

namespace medtune::train {

namespace {

bool mentionsOutOfMemory(const std::string& text) {
  return text.find("out of memory") != std::string::npos || text.find("CUBLAS_STATUS_ALLOC_FAILED") != std::string::npos;
}

std::string firstLine(std::string text) {
  auto nl = text.find('\n');
  if (nl != std::string::npos) text.resize(nl);
  return text;
}

void clearGradients(models::Model& model) {
  for (auto& p : model.parameters())
    if (p.slot->defined() && p.slot->grad().defined()) p.slot->mutable_grad().reset();
}

}  // namespace

void beginGuardedJob() { stage::resetJob(); }

void rethrowStepFailure(models::Model& model, const GuardOptions& options) {
  std::string libtorch;
  bool oom = false;
  try {
    throw;
  } catch (const c10::OutOfMemoryError& e) {
    oom = true;
    libtorch = e.what_without_backtrace();
  } catch (const c10::Error& e) {
    oom = mentionsOutOfMemory(e.what_without_backtrace());
    libtorch = e.what_without_backtrace();
  } catch (...) {
  }
  // Whatever went wrong, the step is abandoned: its partial gradients must not leak into the
  // next one (the optimizer's zero_grad at the end of the step never ran).
  if (options.clearGrads) clearGradients(model);
  if (!oom) throw;

  const stage::Stage where = stage::current();
  std::string device = "the device";
  try {
    device = models::modelDevice(model).str();
  } catch (...) {
  }
#ifdef MEDTUNE_WITH_CUDA
  if (cudaStatus().deviceCount > 0) cudaEmptyCache();
#endif
  const std::string batch = stage::batchDescription();
  std::string message = "out of memory [" + stage::tag() + "] on " + device + " in " + stage::describe() + " of a " + options.job +
                        (batch.empty() ? "" : ", " + batch) + ". ";
  if (where == stage::Stage::Optimizer) {
    message += "The step was stopped during the optimizer update: parameters it had already updated keep their new values "
               "(resume from the last checkpoint to undo it); ";
  } else {
    message += "The step was abandoned before updating any weight: the weights and optimizer state are as before it";
    message += options.clearGrads ? ", its gradients were cleared" : "";
    message += "; ";
  }
  message += "training can continue with a smaller batch. Try a smaller --batch-size (with a larger --grad-accum to keep the "
             "effective batch size), shorter sequences (fewer tokens per example), or --gradient-checkpointing. (libtorch: " +
             firstLine(libtorch) + ")";
  throw CodedError("MEDTUNE_OUT_OF_MEMORY", message);
}

}  // namespace medtune::train
