// Reading JavaScript arguments with errors that name the function and the argument
// ("matmul(): argument 2 must be a Tensor").
#pragma once
#include <ATen/ATen.h>
#include <napi.h>

#include <optional>
#include <string>
#include <vector>

namespace medtune {

class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* fn) : info_(info), fn_(fn) {}

  Napi::Env env() const { return info_.Env(); }
  size_t size() const { return info_.Length(); }
  Napi::Value operator[](size_t i) const { return info_[i]; }
  // Present: given and neither undefined nor null.
  bool has(size_t i) const;
  std::string where(size_t i) const;  // "fn(): argument i+1"

  bool isTensor(size_t i) const;
  const at::Tensor& tensor(size_t i) const;
  std::optional<at::Tensor> optTensor(size_t i) const;
  std::vector<at::Tensor> tensorList(size_t i) const;

  double number(size_t i) const;
  std::optional<double> optNumber(size_t i) const;
  int64_t int64(size_t i) const;
  std::optional<int64_t> optInt64(size_t i) const;
  bool boolean(size_t i, bool fallback) const;
  std::string string(size_t i) const;
  std::optional<std::string> optString(size_t i) const;
  std::vector<int64_t> intList(size_t i) const;  // a number or an array of numbers
  std::optional<std::vector<int64_t>> optIntList(size_t i) const;
  at::Scalar scalar(size_t i) const;  // number (integral values stay integral) or boolean
  // A tensor argument, or a scalar turned into a 0-dim "wrapped number" tensor so that type
  // promotion follows PyTorch's rules for Python scalars.
  at::Tensor tensorOrScalar(size_t i) const;
  at::ScalarType dtype(size_t i) const;
  std::optional<at::ScalarType> optDtype(size_t i) const;
  c10::Device device(size_t i) const;
  std::optional<c10::Device> optDevice(size_t i) const;
  Napi::Object object(size_t i) const;
  Napi::Function function(size_t i) const;

  [[noreturn]] void fail(size_t i, const std::string& expected) const;

 private:
  const Napi::CallbackInfo& info_;
  const char* fn_;
};

at::Scalar scalarFromJs(Napi::Value v, const std::string& context);
// Converts a JS number to int64, rejecting fractions and NaN.
int64_t int64FromJs(Napi::Value v, const std::string& context);

Napi::Array intListToJs(Napi::Env env, at::IntArrayRef values);

}  // namespace medtune
