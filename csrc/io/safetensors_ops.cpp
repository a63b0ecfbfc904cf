// safetensors from TypeScript: header inspection (synchronous, cheap), whole-file loads and
// atomic saves on the compute queue.
#include "common/args.h"
#include "common/errors.h"
#include "common/handle.h"
#include "common/registry.h"
#include "io/safetensors.h"
#include "runtime/compute_queue.h"
#include "tensor/dtype.h"
#include "tensor/tensor_box.h"

namespace medtune {

namespace {

constexpr const char* kFileKind = "SafetensorsFile";

Napi::Object metadataToJs(Napi::Env env, const io::Metadata& metadata) {
  Napi::Object obj = Napi::Object::New(env);
  for (const auto& [k, v] : metadata) obj.Set(k, v);
  return obj;
}

io::Metadata metadataFromJs(const Args& a, size_t i) {
  io::Metadata out;
  if (!a.has(i)) return out;
  Napi::Object obj = a.object(i);
  Napi::Array keys = obj.GetPropertyNames();
  for (uint32_t k = 0; k < keys.Length(); ++k) {
    std::string key = keys.Get(k).As<Napi::String>().Utf8Value();
    Napi::Value v = obj.Get(key);
    if (!v.IsString()) throw ArgumentError(a.where(i) + ": metadata['" + key + "'] must be a string (safetensors metadata is string to string)");
    out.emplace_back(key, v.As<Napi::String>().Utf8Value());
  }
  return out;
}

// safetensorsOpen(path) -> handle (maps and validates the file)
Napi::Value safetensorsOpen(const Napi::CallbackInfo& info) {
  Args a(info, "safetensorsOpen");
  return wrapHandle(info.Env(), io::SafetensorsFile::open(a.string(0)), kFileKind);
}

// safetensorsInfo(handle) -> { path, fileSize, metadata, tensors: [{ name, dtype, fileDtype, shape, offsets }] }
Napi::Value safetensorsInfo(const Napi::CallbackInfo& info) {
  Args a(info, "safetensorsInfo");
  auto file = unwrapHandle<io::SafetensorsFile>(a[0], kFileKind, a.where(0));
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("path", file->path());
  out.Set("fileSize", static_cast<double>(file->fileSize()));
  out.Set("metadata", metadataToJs(env, file->metadata()));
  Napi::Array tensors = Napi::Array::New(env, file->tensors().size());
  uint32_t i = 0;
  for (const auto& rec : file->tensors()) {
    Napi::Object t = Napi::Object::New(env);
    t.Set("name", rec.name);
    t.Set("dtype", dtypeName(rec.dtype));
    t.Set("fileDtype", rec.dtypeName);
    t.Set("shape", intListToJs(env, rec.shape));
    Napi::Array offsets = Napi::Array::New(env, 2);
    offsets.Set(0u, static_cast<double>(rec.begin));
    offsets.Set(1u, static_cast<double>(rec.end));
    t.Set("offsets", offsets);
    tensors.Set(i++, t);
  }
  out.Set("tensors", tensors);
  return out;
}

// safetensorsRead(handle, name, dtype?, device?) -> Tensor (a copy)
Napi::Value safetensorsRead(const Napi::CallbackInfo& info) {
  Args a(info, "safetensorsRead");
  auto file = unwrapHandle<io::SafetensorsFile>(a[0], kFileKind, a.where(0));
  std::string name = a.string(1);
  const io::TensorRecord* rec = file->find(name);
  if (!rec) throw CodedError("MEDTUNE_NOT_FOUND", file->path() + ": no tensor named '" + name + "'");
  return wrapTensor(info.Env(), file->read(*rec, a.optDtype(2), a.optDevice(3).value_or(c10::Device(c10::kCPU))));
}

// safetensorsLoadAsync(path, dtype?, device?, names?) -> Promise<{ metadata, names, tensors }>
Napi::Value safetensorsLoadAsync(const Napi::CallbackInfo& info) {
  Args a(info, "safetensorsLoad");
  std::string path = a.string(0);
  auto dtype = a.optDtype(1);
  c10::Device device = a.optDevice(2).value_or(c10::Device(c10::kCPU));
  std::optional<std::vector<std::string>> only;
  if (a.has(3)) {
    if (!a[3].IsArray()) a.fail(3, "an array of tensor names");
    only.emplace();
    auto arr = a[3].As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) only->push_back(arr.Get(i).ToString().Utf8Value());
  }
  return computeQueue(info.Env()).submit(info.Env(), [path, dtype, device, only]() -> Finisher {
    auto file = io::SafetensorsFile::open(path);
    auto names = std::make_shared<std::vector<std::string>>();
    auto tensors = std::make_shared<std::vector<at::Tensor>>();
    auto take = [&](const io::TensorRecord& rec) {
      names->push_back(rec.name);
      tensors->push_back(file->read(rec, dtype, device));
    };
    if (only) {
      for (const auto& n : *only) {
        const io::TensorRecord* rec = file->find(n);
        if (!rec) throw CodedError("MEDTUNE_NOT_FOUND", path + ": no tensor named '" + n + "'");
        take(*rec);
      }
    } else {
      for (const auto& rec : file->tensors()) take(rec);
    }
    io::Metadata metadata = file->metadata();
    return [names, tensors, metadata](Napi::Env env) -> Napi::Value {
      Napi::Object out = Napi::Object::New(env);
      out.Set("metadata", metadataToJs(env, metadata));
      Napi::Array n = Napi::Array::New(env, names->size());
      Napi::Array t = Napi::Array::New(env, tensors->size());
      for (uint32_t i = 0; i < names->size(); ++i) {
        n.Set(i, (*names)[i]);
        t.Set(i, wrapTensor(env, (*tensors)[i]));
      }
      out.Set("names", n);
      out.Set("tensors", t);
      return out;
    };
  });
}

// safetensorsSaveAsync(path, names, tensors, metadata?) -> Promise<void>
Napi::Value safetensorsSaveAsync(const Napi::CallbackInfo& info) {
  Args a(info, "safetensorsSave");
  std::string path = a.string(0);
  if (!a.has(1) || !a[1].IsArray()) a.fail(1, "an array of names");
  auto namesJs = a[1].As<Napi::Array>();
  std::vector<at::Tensor> tensors = a.tensorList(2);
  if (namesJs.Length() != tensors.size()) throw ArgumentError("safetensorsSave(): names and tensors differ in length");
  std::vector<std::pair<std::string, at::Tensor>> entries;
  for (uint32_t i = 0; i < namesJs.Length(); ++i) {
    Napi::Value n = namesJs.Get(i);
    if (!n.IsString()) throw ArgumentError("safetensorsSave(): names[" + std::to_string(i) + "] must be a string");
    // Detached so the writer never touches autograd state from the worker thread.
    entries.emplace_back(n.As<Napi::String>().Utf8Value(), tensors[i].detach());
  }
  io::Metadata metadata = metadataFromJs(a, 3);
  for (const auto& [name, t] : entries) io::safetensorsDtypeName(t.scalar_type());  // reject unsupported dtypes now
  return computeQueue(info.Env()).submit(info.Env(), [path, entries, metadata]() -> Finisher {
    io::writeSafetensors(path, entries, metadata);
    return Finisher();
  });
}

void registerSafetensorsOps(Napi::Env env, Napi::Object exports) {
  defineFunction<safetensorsOpen>(env, exports, "safetensorsOpen");
  defineFunction<safetensorsInfo>(env, exports, "safetensorsInfo");
  defineFunction<safetensorsRead>(env, exports, "safetensorsRead");
  defineFunction<safetensorsLoadAsync>(env, exports, "safetensorsLoadAsync");
  defineFunction<safetensorsSaveAsync>(env, exports, "safetensorsSaveAsync");
}

}  // namespace

MEDTUNE_REGISTER(safetensors_ops, registerSafetensorsOps);

}  // namespace medtune
