// Models from TypeScript: create (random init) and load (from checkpoint files) on the compute
// queue, enumerate parameters and modules, forward a batch, switch train/eval, attach adapters,
// save. A model used by a pending job refuses changes (MEDTUNE_MODEL_BUSY) until it is done.
#include <ATen/CPUGeneratorImpl.h>

#include <set>

#include "common/args.h"
#include "common/errors.h"
#include "common/handle.h"
#include "common/registry.h"
#include "models/checkpoint.h"
#include "models/llama.h"
#include "models/model.h"
#include "models/model_ops.h"
#include "modules/layers.h"
#include "runtime/autocast.h"
#include "runtime/compute_queue.h"
#include "runtime/step_stage.h"
#include "train/oom_guard.h"
#include "tensor/dtype.h"
#include "tensor/tensor_box.h"

namespace medtune::models {

std::shared_ptr<Model> unwrapModel(const Args& a, size_t i) { return unwrapHandle<Model>(a[i], kModelKind, a.where(i)); }

void ensureIdle(Model& model, const std::string& what) {
  if (model.busy.load() > 0) {
    throw CodedError("MEDTUNE_MODEL_BUSY", what + ": the model is in use by a pending forward/generate/training job; await it first");
  }
}

BusyGuard::BusyGuard(std::shared_ptr<Model> m) : model(std::move(m)) { model->busy.fetch_add(1); }
BusyGuard::~BusyGuard() { model->busy.fetch_sub(1); }

c10::Device modelDevice(Model& model) {
  for (auto& p : model.parameters())
    if (p.slot->defined()) return p.slot->device();
  return c10::Device(c10::kCPU);
}

TensorMap batchFromJs(const Args& a, size_t i) {
  TensorMap batch;
  Napi::Object obj = a.object(i);
  Napi::Array keys = obj.GetPropertyNames();
  for (uint32_t k = 0; k < keys.Length(); ++k) {
    std::string key = keys.Get(k).As<Napi::String>().Utf8Value();
    Napi::Value v = obj.Get(key);
    if (v.IsUndefined() || v.IsNull()) continue;
    if (!isTensorHandle(v)) throw ArgumentError(a.where(i) + ": batch['" + key + "'] must be a Tensor");
    batch[key] = unwrapTensor(v, a.where(i) + ": batch['" + key + "']");
  }
  return batch;
}

Napi::Object tensorMapToJs(Napi::Env env, const TensorMap& map) {
  Napi::Object out = Napi::Object::New(env);
  for (const auto& [k, t] : map) out.Set(k, wrapTensor(env, t));
  return out;
}

namespace {

struct BuildArgs {
  std::string family;
  Spec spec;
  modules::Init init;
  double initStd = 0.02;
  uint64_t seed = 0;
  bool mmap = false;
};

BuildArgs readBuildArgs(const Args& a, size_t specIndex, size_t optionsIndex) {
  BuildArgs b;
  b.spec = Spec::fromJs(a.object(specIndex));
  b.family = b.spec.string("family");
  if (!findFamily(b.family)) {
    std::string known;
    for (const auto& f : families()) known += (known.empty() ? "" : ", ") + f;
    throw ArgumentError("unknown model family '" + b.family + "' (native families: " + known + ")");
  }
  at::ScalarType dtype = at::kFloat;
  c10::Device device(c10::kCPU);
  if (a.has(optionsIndex)) {
    Napi::Object o = a.object(optionsIndex);
    if (o.Has("dtype") && o.Get("dtype").IsString()) dtype = parseDtype(o.Get("dtype").As<Napi::String>().Utf8Value());
    if (o.Has("device") && o.Get("device").IsString()) device = parseDevice(o.Get("device").As<Napi::String>().Utf8Value());
    if (o.Has("initStd") && o.Get("initStd").IsNumber()) b.initStd = o.Get("initStd").As<Napi::Number>().DoubleValue();
    if (o.Has("seed") && o.Get("seed").IsNumber()) b.seed = static_cast<uint64_t>(o.Get("seed").As<Napi::Number>().Int64Value());
    if (o.Has("mmap") && o.Get("mmap").IsBoolean()) b.mmap = o.Get("mmap").As<Napi::Boolean>().Value();
  }
  if (!at::isFloatingType(dtype)) throw ArgumentError("a model's dtype must be a floating type, got " + dtypeName(dtype));
  b.init.options = at::TensorOptions().dtype(dtype).device(device);
  return b;
}

std::shared_ptr<Model> build(const BuildArgs& b) {
  std::shared_ptr<Model> model = (*findFamily(b.family))(b.spec, b.init);
  model->setTraining(false);  // like from_pretrained: eval mode until train(true)
  return model;
}

void makeTrainable(Model& model) {
  for (auto& p : model.parameters()) p.slot->requires_grad_(true);
}

// modelCreateAsync(spec, { dtype, device, seed, initStd }) -> Promise<handle>
Napi::Value modelCreateAsync(const Napi::CallbackInfo& info) {
  Args a(info, "createModel");
  BuildArgs b = readBuildArgs(a, 0, 1);
  return computeQueue(info.Env()).submit(info.Env(), [b]() -> Finisher {
    auto model = build(b);
    auto generator = at::make_generator<at::CPUGeneratorImpl>(b.seed);
    model->initializeAll(b.initStd, generator);
    makeTrainable(*model);
    return [model](Napi::Env env) { return wrapHandle(env, model, kModelKind); };
  });
}

// modelLoadAsync(spec, sources: [{ path, prefix } | { path, prefix, names, tensors }], { dtype, device, seed, initStd })
//   -> Promise<{ model, unexpected, initialized, adapted }>
Napi::Value modelLoadAsync(const Napi::CallbackInfo& info) {
  Args a(info, "loadModel");
  BuildArgs b = readBuildArgs(a, 0, 2);
  if (!a.has(1) || !a[1].IsArray()) a.fail(1, "an array of checkpoint sources");
  std::vector<CheckpointSource> sources;
  auto arr = a[1].As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value v = arr.Get(i);
    if (!v.IsObject()) throw ArgumentError(a.where(1) + "[" + std::to_string(i) + "] must be { path, prefix }");
    Napi::Object o = v.As<Napi::Object>();
    CheckpointSource s;
    s.path = o.Get("path").ToString().Utf8Value();
    if (o.Has("prefix") && o.Get("prefix").IsString()) s.prefix = o.Get("prefix").As<Napi::String>().Utf8Value();
    // { path, names, tensors }: tensors already in memory (a .pth read by lib/io); path names them.
    if (o.Has("tensors")) {
      const std::string where = a.where(1) + "[" + std::to_string(i) + "]";
      if (!o.Get("tensors").IsArray() || !o.Get("names").IsArray()) throw ArgumentError(where + ": names and tensors must be arrays");
      auto names = o.Get("names").As<Napi::Array>();
      auto tensors = o.Get("tensors").As<Napi::Array>();
      if (names.Length() != tensors.Length()) throw ArgumentError(where + ": names and tensors differ in length");
      s.inMemory = true;
      for (uint32_t k = 0; k < names.Length(); ++k) {
        std::string name = names.Get(k).ToString().Utf8Value();
        s.tensors.emplace_back(name, unwrapTensor(tensors.Get(k), where + ".tensors['" + name + "']"));
      }
    }
    sources.push_back(std::move(s));
  }
  return computeQueue(info.Env()).submit(info.Env(), [b, sources]() -> Finisher {
    auto checkpoint = Checkpoint::open(sources);
    auto model = build(b);
    LoadReport report = loadCheckpoint(*model, *checkpoint, b.initStd, b.seed, b.mmap);
    makeTrainable(*model);
    return [model, report](Napi::Env env) -> Napi::Value {
      Napi::Object out = Napi::Object::New(env);
      out.Set("model", wrapHandle(env, model, kModelKind));
      Napi::Array unexpected = Napi::Array::New(env, report.unexpected.size());
      for (uint32_t i = 0; i < report.unexpected.size(); ++i) unexpected.Set(i, report.unexpected[i]);
      Napi::Array initialized = Napi::Array::New(env, report.initialized.size());
      for (uint32_t i = 0; i < report.initialized.size(); ++i) initialized.Set(i, report.initialized[i]);
      Napi::Array adapted = Napi::Array::New(env, report.adapted.size());
      for (uint32_t i = 0; i < report.adapted.size(); ++i) adapted.Set(i, report.adapted[i]);
      out.Set("unexpected", unexpected);
      out.Set("initialized", initialized);
      out.Set("adapted", adapted);
      return out;
    };
  });
}

// modelParameters(handle) -> [{ name, shape, dtype, device, kind, part, module, requiresGrad, persistent }]
Napi::Value modelParameters(const Napi::CallbackInfo& info) {
  Args a(info, "parameters");
  auto model = unwrapModel(a, 0);
  Napi::Env env = info.Env();
  auto params = model->parameters();
  Napi::Array out = Napi::Array::New(env, params.size());
  for (uint32_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", p.name);
    o.Set("shape", intListToJs(env, p.slot->sizes()));
    o.Set("dtype", dtypeName(p.slot->scalar_type()));
    o.Set("device", deviceName(p.slot->device()));
    o.Set("kind", modules::kindName(p.kind));
    o.Set("part", modules::partName(p.part));
    o.Set("module", p.owner->typeName());
    o.Set("requiresGrad", p.slot->requires_grad());
    o.Set("persistent", p.persistent);
    out.Set(i, o);
  }
  return out;
}

// modelModules(handle) -> [{ path, type, kind, part }]
Napi::Value modelModules(const Napi::CallbackInfo& info) {
  Args a(info, "modules");
  auto model = unwrapModel(a, 0);
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  model->visitModules("", [&](const std::string& path, modules::Module& m) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("path", path);
    o.Set("type", m.typeName());
    o.Set("kind", modules::kindName(m.kind()));
    o.Set("part", modules::partName(m.part()));
    out.Set(i++, o);
  });
  return out;
}

modules::ParamRef findParam(Model& model, const std::string& name, const std::string& context) {
  for (auto& p : model.parameters())
    if (p.name == name) return p;
  throw CodedError("MEDTUNE_NOT_FOUND", context + ": the model has no parameter named '" + name + "'");
}

// modelParameter(handle, name) -> Tensor (the parameter itself: same storage, same autograd leaf)
Napi::Value modelParameter(const Napi::CallbackInfo& info) {
  Args a(info, "parameter");
  auto model = unwrapModel(a, 0);
  return wrapTensor(info.Env(), *findParam(*model, a.string(1), "parameter()").slot);
}

// modelSetRequiresGrad(handle, names | null, flag) -> number of parameters changed
Napi::Value modelSetRequiresGrad(const Napi::CallbackInfo& info) {
  Args a(info, "setRequiresGrad");
  auto model = unwrapModel(a, 0);
  ensureIdle(*model, "setRequiresGrad()");
  bool flag = a.boolean(2, true);
  auto params = model->parameters();
  int64_t changed = 0;
  if (!a.has(1)) {
    for (auto& p : params) p.slot->requires_grad_(flag), ++changed;
  } else {
    if (!a[1].IsArray()) a.fail(1, "an array of parameter names or null for all");
    auto arr = a[1].As<Napi::Array>();
    std::set<std::string> wanted;
    for (uint32_t i = 0; i < arr.Length(); ++i) wanted.insert(arr.Get(i).ToString().Utf8Value());
    for (auto& p : params)
      if (wanted.erase(p.name)) p.slot->requires_grad_(flag), ++changed;
    if (!wanted.empty()) throw CodedError("MEDTUNE_NOT_FOUND", "setRequiresGrad(): the model has no parameter named '" + *wanted.begin() + "'");
  }
  return Napi::Number::New(info.Env(), static_cast<double>(changed));
}

// modelForwardAsync(handle, batch, { outputHiddenStates, grad }) -> Promise<{ name: Tensor }>
Napi::Value modelForwardAsync(const Napi::CallbackInfo& info) {
  Args a(info, "forward");
  auto model = unwrapModel(a, 0);
  TensorMap batch = batchFromJs(a, 1);
  ForwardOptions options;
  std::optional<bool> grad;
  if (a.has(2)) {
    Napi::Object o = a.object(2);
    options.outputHiddenStates = o.Has("outputHiddenStates") && o.Get("outputHiddenStates").ToBoolean().Value();
    if (o.Has("logits") && o.Get("logits").IsBoolean()) options.logits = o.Get("logits").As<Napi::Boolean>().Value();
    if (o.Has("grad") && o.Get("grad").IsBoolean()) grad = o.Get("grad").As<Napi::Boolean>().Value();
  }
  auto guard = std::make_shared<BusyGuard>(model);
  return computeQueue(info.Env()).submit(info.Env(), [guard, batch, options, grad]() -> Finisher {
    Model& m = *guard->model;
    at::AutoGradMode gradMode(grad.value_or(at::GradMode::is_enabled()));
    // An out-of-memory error names its stage (the gradients belong to the caller: kept).
    auto out = train::guardStep(m, train::GuardOptions{"forward pass", false}, [&] {
      stage::beginMicroBatch(0, 1, batch);
      c10::Device device = modelDevice(m);
      TensorMap onDevice;
      for (const auto& [k, t] : batch) onDevice[k] = t.device() == device ? t : t.to(device);
      runtime::AutocastScope autocast(device.type(), m.computeDType);
      stage::begin(stage::Stage::Forward);
      return std::make_shared<TensorMap>(m.forward(onDevice, options));
    });
    return [out](Napi::Env env) -> Napi::Value { return tensorMapToJs(env, *out); };
  });
}

// modelSetMemoryOptions(handle, { gradientCheckpointing?, lossChunkTokens? })
//   -> { checkpointedLayers, lossChunkTokens } (lossChunkTokens null for models without an LM head)
Napi::Value modelSetMemoryOptions(const Napi::CallbackInfo& info) {
  Args a(info, "setMemoryOptions");
  auto model = unwrapModel(a, 0);
  ensureIdle(*model, "setMemoryOptions()");
  Napi::Object o = a.has(1) ? a.object(1) : Napi::Object::New(info.Env());
  Napi::Env env = info.Env();
  Napi::Value gc = o.Get("gradientCheckpointing");
  if (!gc.IsUndefined() && !gc.IsBoolean()) throw ArgumentError("setMemoryOptions(): gradientCheckpointing must be a boolean");
  Napi::Value chunk = o.Get("lossChunkTokens");
  if (!chunk.IsUndefined() && (!chunk.IsNumber() || chunk.As<Napi::Number>().DoubleValue() < 0 ||
                               chunk.As<Napi::Number>().DoubleValue() != static_cast<double>(chunk.As<Napi::Number>().Int64Value()))) {
    throw ArgumentError("setMemoryOptions(): lossChunkTokens must be a whole number >= 0 (0: whole logits)");
  }
  CausalLM* lm = model->causalLM();
  if (gc.IsBoolean()) model->setCheckpointing(gc.As<Napi::Boolean>().Value());
  if (chunk.IsNumber() && lm) lm->languageModel().setLossChunkTokens(chunk.As<Napi::Number>().Int64Value());
  int64_t checkpointed = 0;
  model->visitModules("", [&](const std::string&, modules::Module& m) { checkpointed += m.checkpointed() ? 1 : 0; });
  Napi::Object out = Napi::Object::New(env);
  out.Set("checkpointedLayers", static_cast<double>(checkpointed));
  out.Set("lossChunkTokens", lm ? Napi::Value(Napi::Number::New(env, static_cast<double>(lm->languageModel().lossChunkTokens()))) : env.Null());
  return out;
}

// modelSetTraining(handle, flag)
Napi::Value modelSetTraining(const Napi::CallbackInfo& info) {
  Args a(info, "train");
  auto model = unwrapModel(a, 0);
  ensureIdle(*model, "train()");
  model->setTraining(a.boolean(1, true));
  return info.Env().Undefined();
}

Napi::Value modelTraining(const Napi::CallbackInfo& info) {
  Args a(info, "training");
  return Napi::Boolean::New(info.Env(), unwrapModel(a, 0)->training());
}

modules::Linear& findLinear(Model& model, std::string path, const std::string& context) {
  if (path.size() > 7 && path.compare(path.size() - 7, 7, ".weight") == 0) path.resize(path.size() - 7);
  modules::Module* m = model.findModule(path);
  auto* linear = dynamic_cast<modules::Linear*>(m);
  if (!linear) {
    throw CodedError("MEDTUNE_NOT_FOUND", context + ": '" + path + "' is " + (m ? "a " + m->typeName() + ", not a Linear" : "not a module of this model") +
                                              " (adapters attach to Linear layers, addressed by the checkpoint path of their weight)");
  }
  return *linear;
}

// modelAttachAdapter(handle, path, kind, options)
Napi::Value modelAttachAdapter(const Napi::CallbackInfo& info) {
  Args a(info, "attachAdapter");
  auto model = unwrapModel(a, 0);
  ensureIdle(*model, "attachAdapter()");
  std::string path = a.string(1);
  std::string kind = a.string(2);
  const modules::AdapterFactory* factory = modules::findAdapterKind(kind);
  if (!factory) {
    std::string known;
    for (const auto& k : modules::adapterKinds()) known += (known.empty() ? "" : ", ") + k;
    throw ArgumentError("attachAdapter(): unknown adapter kind '" + kind + "' (registered: " + known + ")");
  }
  modules::Linear& linear = findLinear(*model, path, "attachAdapter()");
  Napi::Object options = a.has(3) ? a.object(3) : Napi::Object::New(info.Env());
  linear.attachAdapter((*factory)(linear, options), path);
  return info.Env().Undefined();
}

// modelDetachAdapter(handle, path) -> whether an adapter was attached
Napi::Value modelDetachAdapter(const Napi::CallbackInfo& info) {
  Args a(info, "detachAdapter");
  auto model = unwrapModel(a, 0);
  ensureIdle(*model, "detachAdapter()");
  return Napi::Boolean::New(info.Env(), findLinear(*model, a.string(1), "detachAdapter()").detachAdapter() != nullptr);
}

// modelMergeAdapter(handle, path, merge) : folds the adapter into the weight (true) or back out
Napi::Value modelMergeAdapter(const Napi::CallbackInfo& info) {
  Args a(info, "mergeAdapter");
  auto model = unwrapModel(a, 0);
  ensureIdle(*model, "mergeAdapter()");
  modules::Linear& linear = findLinear(*model, a.string(1), "mergeAdapter()");
  if (!linear.adapter()) throw CodedError("MEDTUNE_NOT_FOUND", "mergeAdapter(): '" + a.string(1) + "' has no adapter");
  if (a.boolean(2, true)) linear.mergeAdapter();
  else linear.unmergeAdapter();
  return info.Env().Undefined();
}

Napi::Value adapterKindsJs(const Napi::CallbackInfo& info) {
  auto kinds = modules::adapterKinds();
  Napi::Array out = Napi::Array::New(info.Env(), kinds.size());
  for (uint32_t i = 0; i < kinds.size(); ++i) out.Set(i, kinds[i]);
  return out;
}

Napi::Value modelFamilies(const Napi::CallbackInfo& info) {
  auto names = families();
  Napi::Array out = Napi::Array::New(info.Env(), names.size());
  for (uint32_t i = 0; i < names.size(); ++i) out.Set(i, names[i]);
  return out;
}

// modelSaveAsync(handle, dir, maxShardBytes, dtype?, metadata?) -> Promise<[{ file, names, bytes }]>
Napi::Value modelSaveAsync(const Napi::CallbackInfo& info) {
  Args a(info, "save");
  auto model = unwrapModel(a, 0);
  std::string dir = a.string(1);
  uint64_t maxShard = static_cast<uint64_t>(a.optInt64(2).value_or(0));
  auto dtype = a.optDtype(3);
  io::Metadata metadata{{"format", "pt"}};
  if (a.has(4)) {
    Napi::Object o = a.object(4);
    Napi::Array keys = o.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
      if (k != "format") metadata.emplace_back(k, o.Get(k).ToString().Utf8Value());
    }
  }
  auto guard = std::make_shared<BusyGuard>(model);
  return computeQueue(info.Env()).submit(info.Env(), [guard, dir, maxShard, dtype, metadata]() -> Finisher {
    auto shards = std::make_shared<std::vector<SavedShard>>(saveModelWeights(*guard->model, dir, maxShard, dtype, metadata));
    return [shards](Napi::Env env) -> Napi::Value {
      Napi::Array out = Napi::Array::New(env, shards->size());
      for (uint32_t i = 0; i < shards->size(); ++i) {
        const auto& s = (*shards)[i];
        Napi::Object o = Napi::Object::New(env);
        o.Set("file", s.file);
        o.Set("bytes", static_cast<double>(s.bytes));
        Napi::Array names = Napi::Array::New(env, s.names.size());
        for (uint32_t k = 0; k < s.names.size(); ++k) names.Set(k, s.names[k]);
        o.Set("names", names);
        out.Set(i, o);
      }
      return out;
    };
  });
}

void registerModelOps(Napi::Env env, Napi::Object exports) {
  defineFunction<modelFamilies>(env, exports, "modelFamilies");
  defineFunction<adapterKindsJs>(env, exports, "adapterKinds");
  defineFunction<modelCreateAsync>(env, exports, "modelCreateAsync");
  defineFunction<modelLoadAsync>(env, exports, "modelLoadAsync");
  defineFunction<modelParameters>(env, exports, "modelParameters");
  defineFunction<modelModules>(env, exports, "modelModules");
  defineFunction<modelParameter>(env, exports, "modelParameter");
  defineFunction<modelSetRequiresGrad>(env, exports, "modelSetRequiresGrad");
  defineFunction<modelForwardAsync>(env, exports, "modelForwardAsync");
  defineFunction<modelSetTraining>(env, exports, "modelSetTraining");
  defineFunction<modelSetMemoryOptions>(env, exports, "modelSetMemoryOptions");
  defineFunction<modelTraining>(env, exports, "modelTraining");
  defineFunction<modelAttachAdapter>(env, exports, "modelAttachAdapter");
  defineFunction<modelDetachAdapter>(env, exports, "modelDetachAdapter");
  defineFunction<modelMergeAdapter>(env, exports, "modelMergeAdapter");
  defineFunction<modelSaveAsync>(env, exports, "modelSaveAsync");
}

}  // namespace

MEDTUNE_REGISTER(model_ops, registerModelOps);

}  // namespace medtune::models
