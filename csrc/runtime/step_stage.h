// Where a training / evaluation step is (loading the batch, the forward pass and which layer,
// the loss, the backward pass, the optimizer update), so that an out-of-memory error can say
// which stage ran out (train/oom_guard.h). Process-wide, not thread-local: on CUDA the backward
// pass (and the layer recomputation of activation checkpointing in it) runs on libtorch's
// device threads, while only one step runs at a time (the compute queue is one thread).
//
// Test-only fault injection: MEDTUNE_INJECT_OOM=<stage> makes the named stage throw a real
// c10::OutOfMemoryError where it begins, so that OOM handling can be tested without a GPU.
// <stage> is one of load | forward | forward.<part>.<N> (e.g. forward.language.1: layer 1 of
// the language model; 'forward' alone: the first layer reached) | loss | backward | optimizer.
// MEDTUNE_INJECT_OOM_MIN_BATCH=<n> limits it to micro-batches of at least n examples, as a real
// memory limit would (a smaller batch then passes). Never set these outside tests.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace medtune::stage {

enum class Stage { None, Load, Forward, Loss, Backward, Optimizer };

// Starts a job (a training step or a forward): forgets the previous job's stage and batch.
void resetJob();
// The micro-batch about to run: index (0-based) of count, its tensors (for the error message)
// and its number of examples. Also begins Stage::Load.
void beginMicroBatch(size_t index, size_t count, const std::map<std::string, at::Tensor>& batch);
// Enters a stage; Stage::Forward resets the per-part layer counters. May inject (see above).
void begin(Stage stage);
// A transformer layer starts in the forward pass: returns its index within its part ('vision',
// 'language', ...) in this pass. May inject.
int64_t enterLayer(const char* part, const std::string& typeName);
// Activation checkpointing recomputes a layer during the backward pass.
void recomputeLayer(const char* part, int64_t index, const std::string& typeName);

Stage current();
// 'the backward pass (recomputing language layer 3, MistralDecoderLayer)'
std::string describe();
// 'backward' / 'forward layer 3 (language)' : the short tag the error message starts with.
std::string tag();
// 'micro-batch 2 of 2 (input_ids [4, 1024], pixel_values [4, 3, 336, 336])', or '' outside a step.
std::string batchDescription();

}  // namespace medtune::stage
