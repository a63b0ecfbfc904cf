// Records which ATen operators run, with their input shapes, between opCounterStart() and
// opCounterStop(): a libtorch RecordFunction callback on every thread (the backward pass runs on
// the engine's threads). Tests use it to prove what the kernels do (no weight-gradient matmuls
// for frozen Linear layers under LN-tuning); it is not a profiler for users.
#include <ATen/record_function.h>
#include <napi.h>

#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/args.h"
#include "common/errors.h"
#include "common/registry.h"

namespace medtune {

namespace {

struct Recorded {
  std::string name;
  std::vector<std::vector<int64_t>> shapes;  // of the tensor inputs (others: empty)
};

std::mutex recordMutex;
std::set<std::string> wantedOps;
std::vector<Recorded> recorded;
at::CallbackHandle handle = 0;

std::unique_ptr<at::ObserverContext> onStart(const at::RecordFunction& fn) {
  const char* name = fn.name();
  std::lock_guard<std::mutex> lock(recordMutex);
  if (!wantedOps.count(name)) return nullptr;
  Recorded r{name, {}};
  for (const c10::IValue& v : fn.inputs()) r.shapes.push_back(v.isTensor() ? v.toTensor().sizes().vec() : std::vector<int64_t>{});
  recorded.push_back(std::move(r));
  return nullptr;
}

// opCounterStart(['aten::mm', 'aten::addmm', ...])
Napi::Value opCounterStart(const Napi::CallbackInfo& info) {
  Args a(info, "opCounterStart");
  if (!a.has(0) || !a[0].IsArray()) a.fail(0, "an array of operator names ('aten::mm')");
  std::lock_guard<std::mutex> lock(recordMutex);
  if (handle) throw CodedError("MEDTUNE_BUSY", "opCounterStart(): already recording; call opCounterStop() first");
  wantedOps.clear();
  recorded.clear();
  auto arr = a[0].As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) wantedOps.insert(arr.Get(i).ToString().Utf8Value());
  handle = at::addGlobalCallback(at::RecordFunctionCallback(onStart).needsInputs(true).scopes({at::RecordScope::FUNCTION}));
  return info.Env().Undefined();
}

// opCounterStop() -> [{ name, shapes: number[][] }] in the order they started
Napi::Value opCounterStop(const Napi::CallbackInfo& info) {
  std::vector<Recorded> out;
  {
    std::lock_guard<std::mutex> lock(recordMutex);
    if (handle) at::removeCallback(handle);
    handle = 0;
    out.swap(recorded);
  }
  Napi::Env env = info.Env();
  Napi::Array arr = Napi::Array::New(env, out.size());
  for (uint32_t i = 0; i < out.size(); ++i) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", out[i].name);
    Napi::Array shapes = Napi::Array::New(env, out[i].shapes.size());
    for (uint32_t k = 0; k < out[i].shapes.size(); ++k) {
      Napi::Array dims = Napi::Array::New(env, out[i].shapes[k].size());
      for (uint32_t d = 0; d < out[i].shapes[k].size(); ++d) dims.Set(d, static_cast<double>(out[i].shapes[k][d]));
      shapes.Set(k, dims);
    }
    o.Set("shapes", shapes);
    arr.Set(i, o);
  }
  return arr;
}

void registerOpCounter(Napi::Env env, Napi::Object exports) {
  defineFunction<opCounterStart>(env, exports, "opCounterStart");
  defineFunction<opCounterStop>(env, exports, "opCounterStop");
}

}  // namespace

MEDTUNE_REGISTER(op_counter, registerOpCounter);

}  // namespace medtune
