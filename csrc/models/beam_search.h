// Beam search and greedy decoding over any model that can give next-token logits for growing
// sequences, following transformers' generate() (the vectorised beam search of transformers >=
// 4.50 / 5.x): log-softmax scores in float32, logits processors (min length, repetition penalty)
// applied to them, 2 * num_beams candidates per step so that finished hypotheses never starve
// the running beams, finished hypotheses scored by sum of log-probs / generated_length **
// length_penalty, the early-stopping heuristic of early_stopping=False / True / "never", and
// the best hypothesis per input returned. The same inputs give the same tokens as
// generate(num_beams=..., max_length=...) in PyTorch.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "models/model.h"

namespace medtune::models {

enum class EarlyStopping { Heuristic, Always, Never };  // early_stopping False, True, "never"

struct DecodeOptions {
  int64_t numBeams = 1;
  int64_t maxLength = 20;  // total length, prompt included (transformers' max_length)
  int64_t minLength = 0;   // total length before which EOS is forbidden (min_length)
  double lengthPenalty = 1.0;
  EarlyStopping earlyStopping = EarlyStopping::Heuristic;
  double repetitionPenalty = 1.0;
  std::vector<int64_t> eos;
  int64_t pad = 0;
};

// A decoding session over (batch * numBeams) rows: the model keeps its own cache.
class DecodingSession {
 public:
  virtual ~DecodingSession() = default;
  // Logits (rows, vocab) for the next token after `tokens` (rows, length). The first call sees
  // the whole prompt; later calls have one more token per row than the call before.
  virtual at::Tensor nextLogits(const at::Tensor& tokens) = 0;
  // After a step, row i continues the hypothesis that was row index[i].
  virtual void reorder(const at::Tensor& index) = 0;
};

// Models that generate text conditioned on an encoded input (BLIP's decoder over the question or
// the image) implement this next to Model.
class ConditionalGenerator {
 public:
  virtual ~ConditionalGenerator() = default;
  // Encodes `batch` and returns a session whose rows are each input repeated `rowsPerInput` times
  // (beams of one input are consecutive, as repeat_interleave), and the prompt ids (B, S).
  virtual std::unique_ptr<DecodingSession> startDecoding(const TensorMap& batch, int64_t rowsPerInput, at::Tensor& promptIds) = 0;
};

struct DecodeResult {
  at::Tensor sequences;  // (B, prompt + generated), rows that ended early padded with `pad`
  at::Tensor scores;     // (B) beam score of the returned hypothesis (beam search), else undefined
};

DecodeResult beamSearch(DecodingSession& session, const at::Tensor& promptIds, const DecodeOptions& options);
DecodeResult greedySearch(DecodingSession& session, const at::Tensor& promptIds, const DecodeOptions& options);

}  // namespace medtune::models
