// Tensor work that runs on the compute queue and returns a Promise. Models, trainers and
// checkpoint loading submit their jobs the same way (runtime/compute_queue.h).
#include <chrono>
#include <thread>

#include "common/args.h"
#include "common/registry.h"
#include "runtime/compute_queue.h"
#include "tensor/tensor_box.h"

namespace medtune {

namespace {

Finisher returnTensor(at::Tensor t) {
  return [t = std::move(t)](Napi::Env env) { return wrapTensor(env, t); };
}

Napi::Value matmulAsync(const Napi::CallbackInfo& info) {
  Args a(info, "matmulAsync");
  at::Tensor x = a.tensor(0), y = a.tensor(1);  // held by the job even if JavaScript disposes them
  return computeQueue(info.Env()).submit(info.Env(), [x, y] { return returnTensor(at::matmul(x, y)); });
}

// toTypedArrayAsync(t): the device-to-host copy and conversion happen on the worker.
Napi::Value toFloat32Async(const Napi::CallbackInfo& info) {
  Args a(info, "toFloat32Async");
  at::Tensor t = a.tensor(0);
  return computeQueue(info.Env()).submit(info.Env(), [t] {
    auto host = std::make_shared<at::Tensor>(t.detach().to(c10::kCPU, at::kFloat).contiguous());
    return Finisher([host](Napi::Env env) -> Napi::Value {
      auto n = static_cast<size_t>(host->numel());
      auto arr = Napi::Float32Array::New(env, n);
      if (n) std::memcpy(arr.Data(), host->data_ptr<float>(), n * sizeof(float));
      return arr;
    });
  });
}

// Resolves once every job submitted before it has finished.
Napi::Value barrierAsync(const Napi::CallbackInfo& info) {
  return computeQueue(info.Env()).submit(info.Env(), [] { return Finisher(); });
}

// Diagnostic: occupies the worker for `ms` milliseconds (tests use it to show the event loop
// keeps running and that jobs finish in submission order).
Napi::Value sleepAsync(const Napi::CallbackInfo& info) {
  Args a(info, "sleepAsync");
  int64_t ms = a.int64(0);
  auto value = a.has(1) ? a.number(1) : 0.0;
  return computeQueue(info.Env()).submit(info.Env(), [ms, value] {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return Finisher([value](Napi::Env env) { return Napi::Number::New(env, value); });
  });
}

// Diagnostic: a job that fails on the worker (tests check the rejection carries the message).
Napi::Value failAsync(const Napi::CallbackInfo& info) {
  Args a(info, "failAsync");
  std::string message = a.string(0);
  return computeQueue(info.Env()).submit(info.Env(), [message]() -> Finisher {
    TORCH_CHECK(false, message);
  });
}

Napi::Value queuePending(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(computeQueue(info.Env()).pending()));
}

void registerAsyncOps(Napi::Env env, Napi::Object exports) {
  defineFunction<matmulAsync>(env, exports, "matmulAsync");
  defineFunction<toFloat32Async>(env, exports, "toFloat32Async");
  defineFunction<barrierAsync>(env, exports, "barrierAsync");
  defineFunction<sleepAsync>(env, exports, "sleepAsync");
  defineFunction<failAsync>(env, exports, "failAsync");
  defineFunction<queuePending>(env, exports, "queuePending");
}

}  // namespace

MEDTUNE_REGISTER(async_ops, registerAsyncOps);

}  // namespace medtune
