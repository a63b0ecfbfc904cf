#include "models/beam_search.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "common/errors.h"

namespace medtune::models {

namespace {

// transformers' RepetitionPenaltyLogitsProcessor and MinLengthLogitsProcessor, on (rows, vocab).
at::Tensor processScores(at::Tensor scores, const at::Tensor& tokens, const DecodeOptions& o) {
  if (o.repetitionPenalty != 1.0) {
    at::Tensor picked = scores.gather(1, tokens);
    picked = at::where(picked < 0, picked * o.repetitionPenalty, picked / o.repetitionPenalty);
    scores = scores.scatter(1, tokens, picked);
  }
  if (o.minLength > 0 && tokens.size(1) < o.minLength && !o.eos.empty()) {
    scores = scores.clone();
    for (int64_t id : o.eos) scores.select(1, id).fill_(-std::numeric_limits<double>::infinity());
  }
  return scores;
}

at::Tensor eosTensor(const DecodeOptions& o, c10::Device device) {
  return at::tensor(o.eos, at::TensorOptions().dtype(at::kLong)).to(device);
}

// Selects, along dim 1, the beams `index` (B, k) of a (B, beams, ...) tensor.
at::Tensor gatherBeams(const at::Tensor& t, at::Tensor index) {
  while (index.dim() < t.dim()) index = index.unsqueeze(-1);
  return at::take_along_dim(t, index, 1);
}

void checkOptions(const at::Tensor& prompt, const DecodeOptions& o, int64_t vocab) {
  if (o.maxLength <= prompt.size(1)) {
    throw ArgumentError("generate(): maxLength " + std::to_string(o.maxLength) + " leaves no room after the " + std::to_string(prompt.size(1)) +
                        "-token prompt (maxLength counts the prompt, as transformers' max_length)");
  }
  for (int64_t id : o.eos)
    if (id < 0 || id >= vocab) throw ArgumentError("generate(): EOS id " + std::to_string(id) + " is outside the vocabulary (" + std::to_string(vocab) + ")");
}

}  // namespace

DecodeResult beamSearch(DecodingSession& session, const at::Tensor& prompt, const DecodeOptions& o) {
  at::NoGradGuard noGrad;
  const int64_t K = o.numBeams, B = prompt.size(0), P = prompt.size(1), L = o.maxLength;
  if (K < 1) throw ArgumentError("generate(): numBeams must be at least 1");
  const auto device = prompt.device();
  const auto longs = at::TensorOptions().dtype(at::kLong).device(device);
  const auto floats = at::TensorOptions().dtype(at::kFloat).device(device);
  const auto bools = at::TensorOptions().dtype(at::kBool).device(device);
  const int64_t keep = std::max<int64_t>(2, 1 + static_cast<int64_t>(o.eos.size())) * K;
  at::Tensor topBeamMask = at::cat({at::ones({K}, bools), at::zeros({keep - K}, bools)});
  const at::Tensor eos = eosTensor(o, device);

  at::Tensor running = at::full({B, K, L}, o.pad, longs);
  running.narrow(2, 0, P).copy_(prompt.to(device).repeat_interleave(K, 0).view({B, K, P}));
  at::Tensor sequences = running.clone();
  at::Tensor runningScores = at::zeros({B, K}, floats);
  runningScores.narrow(1, 1, K - 1).fill_(-1e9);
  at::Tensor beamScores = at::full({B, K}, -1e9, floats);
  at::Tensor finished = at::zeros({B, K}, bools);
  at::Tensor unsatisfied = at::ones({B, 1}, bools);  // an open beam may still beat a finished one
  at::Tensor hits = at::zeros({B, K}, bools);
  at::Tensor runningIndices = at::full({B, K, L - P}, -1, at::TensorOptions().dtype(at::kInt).device(device));
  at::Tensor beamIndices = runningIndices.clone();
  const at::Tensor batchOffset = at::arange(B, longs).view({-1, 1}) * K;

  int64_t cur = P;
  bool first = true;
  while (true) {
    at::Tensor flat = running.narrow(2, 0, cur).reshape({B * K, cur});
    at::Tensor logits = session.nextLogits(flat).to(at::kFloat);
    if (first) checkOptions(prompt, o, logits.size(-1)), first = false;
    const int64_t V = logits.size(-1);
    at::Tensor logProbs = processScores(at::log_softmax(logits, -1), flat, o);
    logProbs = (logProbs.view({B, K, V}) + runningScores.unsqueeze(2)).reshape({B, K * V});

    // The best 2K continuations over all beams (transformers' _get_top_k_continuations).
    auto [topLogProbs, topFlat] = at::topk(logProbs, keep);
    at::Tensor fromBeam = topFlat.div(V, "floor");
    at::Tensor topIds = topFlat.remainder(V);
    at::Tensor topIndices = gatherBeams(runningIndices, fromBeam);
    at::Tensor topSequences = gatherBeams(running, fromBeam);
    topSequences.select(2, cur).copy_(topIds);
    topIndices.select(2, cur - P).copy_((fromBeam + batchOffset).to(at::kInt));

    // Which of them stop here: EOS, or the length limit.
    hits = cur + 1 >= L ? at::ones({B, keep}, bools) : (eos.numel() ? at::isin(topIds, eos) : at::zeros({B, keep}, bools));

    // The best K that did not stop run on (_get_running_beams_for_next_iteration).
    at::Tensor topRunningLogProbs = topLogProbs + hits.to(at::kFloat) * -1.0e9;
    at::Tensor next = std::get<1>(at::topk(topRunningLogProbs, K));
    running = gatherBeams(topSequences, next);
    runningScores = gatherBeams(topRunningLogProbs, next);
    runningIndices = gatherBeams(topIndices, next);

    // Stopped ones among the top K join the finished set if they beat it (_update_finished_beams).
    at::Tensor justFinished = hits & topBeamMask.unsqueeze(0);
    at::Tensor scored = topLogProbs / std::pow(static_cast<double>(cur + 1 - P), o.lengthPenalty);
    at::Tensor full = o.earlyStopping == EarlyStopping::Always ? finished.all(-1, true) : at::zeros({B, 1}, bools);
    scored = scored + full.to(at::kFloat) * -1.0e9;
    scored = scored + (~unsatisfied).to(at::kFloat) * -1.0e9;
    scored = scored + (~justFinished).to(at::kFloat) * -1.0e9;
    at::Tensor mergedScores = at::cat({beamScores, scored}, 1);
    at::Tensor best = std::get<1>(at::topk(mergedScores, K));
    sequences = gatherBeams(at::cat({sequences, topSequences}, 1), best);
    beamScores = gatherBeams(mergedScores, best);
    beamIndices = gatherBeams(at::cat({beamIndices, topIndices}, 1), best);
    finished = gatherBeams(at::cat({finished, justFinished}, 1), best);

    session.reorder(runningIndices.select(2, cur - P).reshape({-1}).to(at::kLong));
    cur += 1;

    // Can an open beam still beat the worst finished one (_check_early_stop_heuristic)?
    const double bestLength = (o.earlyStopping == EarlyStopping::Never && o.lengthPenalty > 0) ? static_cast<double>(L - P) : static_cast<double>(cur - P);
    at::Tensor bestPossible = runningScores.narrow(1, 0, 1) / std::pow(bestLength, o.lengthPenalty);
    at::Tensor worstFinished = at::where(finished, std::get<0>(beamScores.min(1, true)), at::scalar_tensor(-1.0e9, floats));
    unsatisfied = unsatisfied & (bestPossible > worstFinished).any(-1, true);
    const bool improvementPossible = unsatisfied.any().item<bool>();
    const bool openBeam = !(finished.all().item<bool>() && o.earlyStopping == EarlyStopping::Always);
    const bool validContinuations = !hits.all().item<bool>();
    if (!(improvementPossible && openBeam && validContinuations)) break;
  }

  at::Tensor bestIndices = beamIndices.select(1, 0);
  const int64_t generated = (bestIndices + 1).to(at::kBool).sum(1).max().item<int64_t>();
  return {sequences.select(1, 0).narrow(1, 0, P + generated).contiguous(), beamScores.select(1, 0).contiguous()};
}

DecodeResult greedySearch(DecodingSession& session, const at::Tensor& prompt, const DecodeOptions& o) {
  at::NoGradGuard noGrad;
  const auto device = prompt.device();
  const at::Tensor eos = eosTensor(o, device);
  at::Tensor sequences = prompt.to(device).to(at::kLong);
  at::Tensor unfinished = at::ones({prompt.size(0)}, sequences.options());
  bool first = true;
  while (true) {
    at::Tensor logits = session.nextLogits(sequences).to(at::kFloat);
    if (first) checkOptions(prompt, o, logits.size(-1)), first = false;
    at::Tensor next = processScores(logits, sequences, o).argmax(-1);
    next = next * unfinished + o.pad * (1 - unfinished);
    sequences = at::cat({sequences, next.unsqueeze(1)}, 1);
    at::Tensor stop = sequences.size(1) >= o.maxLength ? at::ones_like(unfinished, at::kBool)
                                                       : (eos.numel() ? at::isin(next, eos) : at::zeros_like(unfinished, at::kBool));
    unfinished = unfinished * (~stop).to(at::kLong);
    if (unfinished.max().item<int64_t>() == 0) break;
  }
  return {sequences, at::Tensor()};
}

}  // namespace medtune::models
