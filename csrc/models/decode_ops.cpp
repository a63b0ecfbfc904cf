// Beam search and greedy decoding from JavaScript for models that generate text from an encoded
// input (ConditionalGenerator: BLIP), on the compute queue.
#include "common/args.h"
#include "common/errors.h"
#include "common/registry.h"
#include "models/beam_search.h"
#include "models/model_ops.h"
#include "runtime/autocast.h"
#include "runtime/compute_queue.h"
#include "tensor/tensor_box.h"

namespace medtune::models {

namespace {

DecodeOptions readDecodeOptions(const Args& a, size_t i) {
  DecodeOptions o;
  Napi::Object obj = a.object(i);
  auto integer = [&](const char* key, int64_t& dst) {
    if (obj.Has(key) && !obj.Get(key).IsUndefined()) dst = int64FromJs(obj.Get(key), a.where(i) + "." + key);
  };
  auto number = [&](const char* key, double& dst) {
    if (!obj.Has(key) || obj.Get(key).IsUndefined()) return;
    if (!obj.Get(key).IsNumber()) throw ArgumentError(a.where(i) + "." + key + " must be a number");
    dst = obj.Get(key).As<Napi::Number>().DoubleValue();
  };
  integer("numBeams", o.numBeams);
  integer("maxLength", o.maxLength);
  integer("minLength", o.minLength);
  integer("padTokenId", o.pad);
  number("lengthPenalty", o.lengthPenalty);
  number("repetitionPenalty", o.repetitionPenalty);
  if (obj.Has("earlyStopping")) {
    Napi::Value v = obj.Get("earlyStopping");
    if (v.IsBoolean()) o.earlyStopping = v.As<Napi::Boolean>().Value() ? EarlyStopping::Always : EarlyStopping::Heuristic;
    else if (v.IsString() && v.As<Napi::String>().Utf8Value() == "never") o.earlyStopping = EarlyStopping::Never;
    else if (!v.IsUndefined()) throw ArgumentError(a.where(i) + ".earlyStopping must be true, false or 'never'");
  }
  if (obj.Has("eosTokenIds") && obj.Get("eosTokenIds").IsArray()) {
    auto arr = obj.Get("eosTokenIds").As<Napi::Array>();
    for (uint32_t k = 0; k < arr.Length(); ++k) o.eos.push_back(int64FromJs(arr.Get(k), a.where(i) + ".eosTokenIds"));
  }
  if (o.numBeams < 1) throw ArgumentError(a.where(i) + ".numBeams must be at least 1");
  if (o.repetitionPenalty <= 0) throw ArgumentError(a.where(i) + ".repetitionPenalty must be positive");
  return o;
}

// modelDecodeAsync(handle, batch, { numBeams, maxLength, minLength, lengthPenalty, earlyStopping,
//   repetitionPenalty, eosTokenIds, padTokenId }) -> Promise<{ sequences, scores }>
// numBeams 1 is greedy decoding, as transformers' generate() does.
Napi::Value modelDecodeAsync(const Napi::CallbackInfo& info) {
  Args a(info, "generate");
  auto model = unwrapModel(a, 0);
  if (!dynamic_cast<ConditionalGenerator*>(model.get())) {
    throw ArgumentError("generate(): the " + model->typeName() + " model does not decode from an encoded input (beam search here is for BLIP-style models)");
  }
  TensorMap batch = batchFromJs(a, 1);
  DecodeOptions options = readDecodeOptions(a, 2);
  auto guard = std::make_shared<BusyGuard>(model);
  return computeQueue(info.Env()).submit(info.Env(), [guard, batch, options]() -> Finisher {
    at::NoGradGuard noGrad;
    Model& m = *guard->model;
    c10::Device device = modelDevice(m);
    TensorMap onDevice;
    for (const auto& [k, t] : batch) onDevice[k] = t.device() == device ? t : t.to(device);
    runtime::AutocastScope autocast(device.type(), m.computeDType);
    at::Tensor prompt;
    auto session = dynamic_cast<ConditionalGenerator&>(m).startDecoding(onDevice, options.numBeams, prompt);
    auto result = std::make_shared<DecodeResult>(options.numBeams > 1 ? beamSearch(*session, prompt, options) : greedySearch(*session, prompt, options));
    return [result](Napi::Env env) -> Napi::Value {
      Napi::Object out = Napi::Object::New(env);
      out.Set("sequences", wrapTensor(env, result->sequences));
      out.Set("scores", result->scores.defined() ? wrapTensor(env, result->scores) : env.Null());
      return out;
    };
  });
}

void registerDecodeOps(Napi::Env env, Napi::Object exports) { defineFunction<modelDecodeAsync>(env, exports, "modelDecodeAsync"); }

}  // namespace

MEDTUNE_REGISTER(decode_ops, registerDecodeOps);

}  // namespace medtune::models
