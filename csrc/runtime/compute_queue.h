// One native compute queue per process (per Node environment): a single worker thread runs long
// native work (forward passes, training steps, checkpoint loads) in submission order, off the
// JavaScript main thread, and settles a Promise for each job on the main thread.
#pragma once
#include <napi.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace medtune {

// Builds the JavaScript result on the main thread from what the worker computed.
using Finisher = std::function<Napi::Value(Napi::Env)>;
// Runs on the worker thread; returns the finisher.
using Job = std::function<Finisher()>;

class ComputeQueue {
 public:
  explicit ComputeQueue(Napi::Env env);
  ~ComputeQueue();
  ComputeQueue(const ComputeQueue&) = delete;
  ComputeQueue& operator=(const ComputeQueue&) = delete;

  // Queues `job`; the returned Promise resolves with the finisher's value or rejects with the
  // job's exception as a JavaScript Error. Grad mode is captured here, at submission.
  Napi::Promise submit(Napi::Env env, Job job);

  // Number of jobs submitted and not yet settled.
  size_t pending() const { return pending_; }

  // Stops the worker after the running job (environment teardown).
  void shutdown();

 private:
  struct Task;
  void run();
  static void settle(Napi::Env env, Napi::Function, Task* task);

  Napi::ThreadSafeFunction tsfn_;
  std::thread worker_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Task*> queue_;
  bool stopping_ = false;
  size_t pending_ = 0;  // touched on the main thread only
  int appliedThreads_ = -1;
};

// The queue of the environment `env` (created on first use).
ComputeQueue& computeQueue(Napi::Env env);

// Thread count requested by setNumThreads(); the worker applies it before each job because
// OpenMP thread counts are per-thread settings.
void setRequestedThreads(int n);
int requestedThreads();

}  // namespace medtune
