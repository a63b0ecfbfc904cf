#include "common/errors.h"

#include <c10/util/Exception.h>

namespace medtune {

namespace {

// libtorch appends "Exception raised from ..." and frames to some messages; users need the
// first part only.
std::string stripBacktrace(const std::string& text) {
  for (const char* marker : {"\nException raised from ", "Exception raised from "}) {
    auto pos = text.find(marker);
    if (pos != std::string::npos) {
      auto end = pos;
      while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == ' ')) --end;
      return text.substr(0, end);
    }
  }
  return text;
}

}  // namespace

ErrorInfo describeCurrentException() {
  ErrorInfo info;
  try {
    throw;
  } catch (const c10::OutOfMemoryError& e) {
    info.message = stripBacktrace(e.what_without_backtrace()) +
                   "\nhint: lower --batch-size or the sequence length, or enable activation checkpointing";
    info.code = "MEDTUNE_OUT_OF_MEMORY";
    info.nativeStack = e.what();
  } catch (const c10::Error& e) {
    info.message = stripBacktrace(e.what_without_backtrace());
    info.nativeStack = e.what();
  } catch (const ArgumentError& e) {
    info.message = e.what();
    info.isTypeError = true;
  } catch (const CodedError& e) {
    info.message = e.what();
    info.code = e.code();
  } catch (const Napi::Error& e) {
    info.message = e.Message();
  } catch (const std::bad_alloc&) {
    info.message = "out of host memory (std::bad_alloc)";
    info.code = "MEDTUNE_OUT_OF_MEMORY";
  } catch (const std::exception& e) {
    info.message = stripBacktrace(e.what());
  } catch (...) {
    info.message = "unknown native exception";
  }
  if (info.message.empty()) info.message = "native error without a message";
  return info;
}

Napi::Error makeJsError(Napi::Env env, const ErrorInfo& info) {
  Napi::Error err = info.isTypeError ? Napi::TypeError::New(env, info.message) : Napi::Error::New(env, info.message);
  if (!info.code.empty()) err.Set("code", Napi::String::New(env, info.code));
  if (!info.nativeStack.empty() && info.nativeStack != info.message) {
    // Not enumerable: console.log(err) stays readable, the frames are still there to inspect.
    Napi::Object global = env.Global();
    Napi::Object objectCtor = global.Get("Object").As<Napi::Object>();
    Napi::Object descriptor = Napi::Object::New(env);
    descriptor.Set("value", Napi::String::New(env, info.nativeStack));
    descriptor.Set("enumerable", Napi::Boolean::New(env, false));
    descriptor.Set("configurable", Napi::Boolean::New(env, true));
    objectCtor.Get("defineProperty").As<Napi::Function>().Call(objectCtor,
        {err.Value(), Napi::String::New(env, "nativeStack"), descriptor});
  }
  return err;
}

void rethrowAsJs(Napi::Env env) {
  ErrorInfo info;
  try {
    throw;
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    info = describeCurrentException();
  }
  throw makeJsError(env, info);
}

}  // namespace medtune
