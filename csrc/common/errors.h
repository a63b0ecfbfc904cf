// Every exception that reaches the Node-API boundary becomes a JavaScript Error: c10::Error keeps
// libtorch's message without the C++ backtrace (kept on err.nativeStack for debugging), our own
// argument errors become TypeErrors, CUDA out-of-memory gets a code and a hint.
#pragma once
#include <napi.h>
#include <stdexcept>
#include <string>

namespace medtune {

// An error in what the caller passed (wrong type, wrong arity): surfaces as a JS TypeError.
class ArgumentError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// An error with a stable code for JavaScript (err.code), e.g. MEDTUNE_DISPOSED.
class CodedError : public std::runtime_error {
 public:
  CodedError(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

// What a caught exception says, in a form that can cross threads (async work records it on the
// worker and builds the JS Error later on the main thread).
struct ErrorInfo {
  std::string message;
  std::string code;         // empty when none
  std::string nativeStack;  // libtorch's backtrace, when it had one
  bool isTypeError = false;
};

// Must be called inside a catch block: describes the exception in flight.
ErrorInfo describeCurrentException();

Napi::Error makeJsError(Napi::Env env, const ErrorInfo& info);

// Must be called inside a catch block: throws the exception in flight as a Napi::Error.
[[noreturn]] void rethrowAsJs(Napi::Env env);

// Wraps a plain callback so that no C++ exception escapes into Node.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    rethrowAsJs(info.Env());
  }
}

// Registers `F` on `target` under `name`, guarded.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
void defineFunction(Napi::Env env, Napi::Object target, const char* name) {
  target.Set(name, Napi::Function::New(env, guarded<F>, name));
}

}  // namespace medtune
