#include "runtime/compute_queue.h"

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include "common/errors.h"

namespace medtune {

namespace {
std::atomic<int> gRequestedThreads{-1};
}

void setRequestedThreads(int n) {
  gRequestedThreads.store(n);
  at::set_num_threads(n);  // the main thread's own setting
}

int requestedThreads() {
  int n = gRequestedThreads.load();
  return n > 0 ? n : at::get_num_threads();
}

struct ComputeQueue::Task {
  Job job;
  bool gradEnabled;
  Napi::Promise::Deferred deferred;
  Finisher finisher;
  bool failed = false;
  ErrorInfo error;
  ComputeQueue* owner;
};

ComputeQueue::ComputeQueue(Napi::Env env) {
  // The TSFN carries results back to the main thread; it is unreferenced while idle so that a
  // process with nothing queued can exit.
  tsfn_ = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "medtune-compute", 0, 1);
  tsfn_.Unref(env);
  worker_ = std::thread([this] { run(); });
}

ComputeQueue::~ComputeQueue() { shutdown(); }

void ComputeQueue::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
  for (Task* t : queue_) delete t;
  queue_.clear();
  tsfn_.Abort();
}

Napi::Promise ComputeQueue::submit(Napi::Env env, Job job) {
  auto* task = new Task{std::move(job), at::GradMode::is_enabled(), Napi::Promise::Deferred::New(env), nullptr, false, {}, this};
  Napi::Promise promise = task->deferred.Promise();
  if (pending_++ == 0) tsfn_.Ref(env);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(task);
  }
  wake_.notify_one();
  return promise;
}

void ComputeQueue::run() {
  at::init_num_threads();
  for (;;) {
    Task* task = nullptr;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      task = queue_.front();
      queue_.pop_front();
    }
    int wanted = gRequestedThreads.load();
    if (wanted > 0 && wanted != appliedThreads_) {
      at::set_num_threads(wanted);
      appliedThreads_ = wanted;
    }
    try {
      at::AutoGradMode grad(task->gradEnabled);
      task->finisher = task->job();
    } catch (...) {
      task->failed = true;
      task->error = describeCurrentException();
    }
    task->job = nullptr;  // release captured tensors on the worker, before the handoff
    if (tsfn_.BlockingCall(task, &ComputeQueue::settle) != napi_ok) delete task;
  }
}

void ComputeQueue::settle(Napi::Env env, Napi::Function, Task* task) {
  std::unique_ptr<Task> owned(task);
  ComputeQueue* self = task->owner;
  if (env == nullptr) return;  // environment is shutting down
  if (--self->pending_ == 0) self->tsfn_.Unref(env);
  if (task->failed) {
    task->deferred.Reject(makeJsError(env, task->error).Value());
    return;
  }
  try {
    task->deferred.Resolve(task->finisher ? task->finisher(env) : env.Undefined());
  } catch (const Napi::Error& e) {
    task->deferred.Reject(e.Value());
  } catch (...) {
    task->deferred.Reject(makeJsError(env, describeCurrentException()).Value());
  }
}

}  // namespace medtune
