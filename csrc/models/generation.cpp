// Generation with a KV cache, batched with left padding, following transformers' generate():
// prompt positions from the attention mask (cumsum - 1), float32 next-token logits, greedy argmax
// or sampling through temperature -> top-k -> top-p -> softmax -> multinomial, finished rows
// continued with the pad token, stop when every row has produced an EOS or after max_new_tokens.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <limits>

#include "common/args.h"
#include "common/errors.h"
#include "common/registry.h"
#include "models/llama.h"
#include "models/model_ops.h"
#include "runtime/autocast.h"
#include "runtime/compute_queue.h"
#include "tensor/tensor_box.h"

namespace medtune::models {

namespace {

struct GenerateOptions {
  int64_t maxNewTokens = 20;
  bool doSample = false;
  double temperature = 1.0;
  int64_t topK = 50;
  double topP = 1.0;
  std::vector<int64_t> eos;
  int64_t pad = 0;
  std::optional<uint64_t> seed;
};

at::Tensor processScores(at::Tensor scores, const GenerateOptions& o) {
  const double inf = std::numeric_limits<double>::infinity();
  if (o.temperature != 1.0) scores = scores / o.temperature;
  if (o.topK > 0) {
    int64_t k = std::min<int64_t>(o.topK, scores.size(-1));
    at::Tensor kth = std::get<0>(at::topk(scores, k)).narrow(-1, k - 1, 1);
    scores = scores.masked_fill(scores < kth, -inf);
  }
  if (o.topP < 1.0) {
    auto [sorted, indices] = at::sort(scores, -1, false);
    at::Tensor cumulative = sorted.softmax(-1).cumsum(-1);
    at::Tensor remove = cumulative <= (1 - o.topP);
    remove.narrow(-1, remove.size(-1) - 1, 1).fill_(false);  // keep at least one token
    scores = scores.masked_fill(remove.scatter(1, indices, remove), -inf);
  }
  return scores;
}

struct GenerateResult {
  at::Tensor sequences;  // input_ids followed by the new tokens
  at::Tensor tokens;     // the new tokens only
};

GenerateResult generate(Model& model, const TensorMap& batch, const GenerateOptions& o) {
  CausalLM* lm = model.causalLM();
  if (!lm) throw ArgumentError("generate(): the " + model.typeName() + " model does not generate text");
  at::NoGradGuard noGrad;
  LanguageModel& language = lm->languageModel();
  Prompt prompt = lm->preparePrompt(batch);
  const int64_t B = prompt.embeds.size(0), S = prompt.embeds.size(1);
  KVCache cache = language.decoder->newCache(B, S + o.maxNewTokens);
  auto device = prompt.embeds.device();
  at::Tensor mask = prompt.attentionMask.to(at::kLong);

  std::optional<at::Generator> generator;
  if (o.doSample && o.seed) {
    if (device.is_cpu()) generator = at::make_generator<at::CPUGeneratorImpl>(*o.seed);
    else at::manual_seed(*o.seed);
  }

  DecoderInput in;
  in.embeds = prompt.embeds;
  in.attentionMask = mask;
  in.positionIds = prompt.positionIds;
  in.cache = &cache;
  at::Tensor hidden = language.decoder->forward(in);
  at::Tensor lastPositions = prompt.positionIds.select(1, S - 1);

  at::Tensor eos = at::tensor(o.eos, at::TensorOptions().dtype(at::kLong)).to(device);
  at::Tensor unfinished = at::ones({B}, at::TensorOptions().dtype(at::kLong).device(device));
  std::vector<at::Tensor> tokens;
  for (int64_t step = 0; step < o.maxNewTokens; ++step) {
    at::Tensor scores = language.logits(hidden.select(1, hidden.size(1) - 1)).to(at::kFloat);
    at::Tensor next;
    if (o.doSample) {
      at::Tensor probs = processScores(scores, o).softmax(-1);
      next = at::multinomial(probs, 1, false, generator).squeeze(1);
    } else {
      next = scores.argmax(-1);
    }
    if (!o.eos.empty()) next = next * unfinished + o.pad * (1 - unfinished);
    tokens.push_back(next);
    if (!o.eos.empty()) {
      unfinished = unfinished.logical_and(at::isin(next, eos).logical_not()).to(at::kLong);
      if (unfinished.max().item<int64_t>() == 0) break;
    }
    if (step + 1 == o.maxNewTokens) break;
    mask = at::cat({mask, at::ones({B, 1}, mask.options())}, 1);
    lastPositions = lastPositions + 1;
    in.embeds = language.decoder->embed(next.unsqueeze(1));
    in.attentionMask = mask;
    in.positionIds = lastPositions.unsqueeze(1);
    hidden = language.decoder->forward(in);
  }
  GenerateResult result;
  result.tokens = tokens.empty() ? at::empty({B, 0}, at::TensorOptions().dtype(at::kLong).device(device)) : at::stack(tokens, 1);
  at::Tensor ids = batchTensor(batch, "input_ids");
  result.sequences = ids.defined() ? at::cat({ids.to(device).to(at::kLong), result.tokens}, 1) : result.tokens;
  return result;
}

// modelGenerateAsync(handle, batch, { maxNewTokens, doSample, temperature, topK, topP, eosTokenIds, padTokenId, seed })
//   -> Promise<{ sequences, tokens }>
Napi::Value modelGenerateAsync(const Napi::CallbackInfo& info) {
  Args a(info, "generate");
  auto model = unwrapModel(a, 0);
  TensorMap batch = batchFromJs(a, 1);
  Napi::Object opts = a.object(2);
  GenerateOptions o;
  auto num = [&](const char* key, double fallback) {
    Napi::Value v = opts.Get(key);
    return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
  };
  o.maxNewTokens = static_cast<int64_t>(num("maxNewTokens", 20));
  o.doSample = opts.Get("doSample").ToBoolean().Value();
  o.temperature = num("temperature", 1.0);
  o.topK = static_cast<int64_t>(num("topK", 50));
  o.topP = num("topP", 1.0);
  o.pad = static_cast<int64_t>(num("padTokenId", 0));
  if (opts.Get("seed").IsNumber()) o.seed = static_cast<uint64_t>(opts.Get("seed").As<Napi::Number>().Int64Value());
  Napi::Value eos = opts.Get("eosTokenIds");
  if (eos.IsArray()) {
    auto arr = eos.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) o.eos.push_back(arr.Get(i).As<Napi::Number>().Int64Value());
  }
  if (o.maxNewTokens < 1) throw ArgumentError("generate(): maxNewTokens must be at least 1");
  if (o.temperature <= 0) throw ArgumentError("generate(): temperature must be positive (use doSample: false for greedy)");
  if (o.topP <= 0 || o.topP > 1) throw ArgumentError("generate(): topP must be in (0, 1]");
  auto guard = std::make_shared<BusyGuard>(model);
  return computeQueue(info.Env()).submit(info.Env(), [guard, batch, o]() -> Finisher {
    Model& m = *guard->model;
    c10::Device device = modelDevice(m);
    TensorMap onDevice;
    for (const auto& [k, t] : batch) onDevice[k] = t.device() == device ? t : t.to(device);
    runtime::AutocastScope autocast(device.type(), m.computeDType);
    auto result = std::make_shared<GenerateResult>(generate(m, onDevice, o));
    return [result](Napi::Env env) -> Napi::Value {
      Napi::Object out = Napi::Object::New(env);
      out.Set("sequences", wrapTensor(env, result->sequences));
      out.Set("tokens", wrapTensor(env, result->tokens));
      return out;
    };
  });
}

void registerGeneration(Napi::Env env, Napi::Object exports) { defineFunction<modelGenerateAsync>(env, exports, "modelGenerateAsync"); }

}  // namespace

MEDTUNE_REGISTER(generation, registerGeneration);

}  // namespace medtune::models
