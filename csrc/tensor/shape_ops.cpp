// Views and layout (reshape, permute, slicing), Python-style indexing, joining and splitting.
#include "common/args.h"
#include "common/errors.h"
#include "common/registry.h"
#include "tensor/tensor_box.h"

namespace medtune {

namespace {

namespace idx = at::indexing;

Napi::Value tensorArray(Napi::Env env, const std::vector<at::Tensor>& ts) {
  Napi::Array out = Napi::Array::New(env, ts.size());
  for (size_t i = 0; i < ts.size(); ++i) out.Set(static_cast<uint32_t>(i), wrapTensor(env, ts[i]));
  return out;
}

std::optional<c10::SymInt> optSymInt(Napi::Value v, const std::string& where) {
  if (v.IsUndefined() || v.IsNull()) return std::nullopt;
  return c10::SymInt(int64FromJs(v, where));
}

// Index specs as lib/torch/indexing.ts encodes them: number, null (new axis), '...', boolean,
// Tensor, or [start|null, end|null, step|null] for a slice.
std::vector<idx::TensorIndex> parseIndices(const Args& a, size_t i) {
  if (!a.has(i) || !a[i].IsArray()) a.fail(i, "an array of index specs");
  auto arr = a[i].As<Napi::Array>();
  std::vector<idx::TensorIndex> out;
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value v = arr.Get(k);
    std::string where = a.where(i) + "[" + std::to_string(k) + "]";
    if (v.IsNull() || v.IsUndefined()) out.emplace_back(idx::None);
    else if (v.IsNumber()) out.emplace_back(int64FromJs(v, where));
    else if (v.IsBoolean()) out.emplace_back(v.As<Napi::Boolean>().Value());
    else if (v.IsString() && v.As<Napi::String>().Utf8Value() == "...") out.emplace_back(idx::Ellipsis);
    else if (isTensorHandle(v)) out.emplace_back(unwrapTensor(v, where));
    else if (v.IsArray()) {
      auto s = v.As<Napi::Array>();
      auto step = optSymInt(s.Get(2u), where + " step");
      if (step && *step == 0) throw ArgumentError(where + ": slice step cannot be zero");
      out.emplace_back(idx::Slice(optSymInt(s.Get(0u), where + " start"), optSymInt(s.Get(1u), where + " end"), step));
    } else {
      throw ArgumentError(where + ": not an index (number, null, '...', boolean, Tensor or slice)");
    }
  }
  return out;
}

Napi::Value reshape(const Napi::CallbackInfo& info) {
  Args a(info, "reshape");
  return wrapTensor(info.Env(), a.tensor(0).reshape(a.intList(1)));
}
Napi::Value view(const Napi::CallbackInfo& info) {
  Args a(info, "view");
  return wrapTensor(info.Env(), a.tensor(0).view(a.intList(1)));
}
Napi::Value permute(const Napi::CallbackInfo& info) {
  Args a(info, "permute");
  return wrapTensor(info.Env(), a.tensor(0).permute(a.intList(1)));
}
Napi::Value transpose(const Napi::CallbackInfo& info) {
  Args a(info, "transpose");
  return wrapTensor(info.Env(), a.tensor(0).transpose(a.int64(1), a.int64(2)));
}
Napi::Value flatten(const Napi::CallbackInfo& info) {
  Args a(info, "flatten");
  return wrapTensor(info.Env(), a.tensor(0).flatten(a.optInt64(1).value_or(0), a.optInt64(2).value_or(-1)));
}
Napi::Value unsqueeze(const Napi::CallbackInfo& info) {
  Args a(info, "unsqueeze");
  return wrapTensor(info.Env(), a.tensor(0).unsqueeze(a.int64(1)));
}
Napi::Value squeeze(const Napi::CallbackInfo& info) {
  Args a(info, "squeeze");
  auto dim = a.optInt64(1);
  return wrapTensor(info.Env(), dim ? a.tensor(0).squeeze(*dim) : a.tensor(0).squeeze());
}
Napi::Value expand(const Napi::CallbackInfo& info) {
  Args a(info, "expand");
  return wrapTensor(info.Env(), a.tensor(0).expand(a.intList(1)));
}
Napi::Value repeat(const Napi::CallbackInfo& info) {
  Args a(info, "repeat");
  return wrapTensor(info.Env(), a.tensor(0).repeat(a.intList(1)));
}
Napi::Value narrow(const Napi::CallbackInfo& info) {
  Args a(info, "narrow");
  return wrapTensor(info.Env(), a.tensor(0).narrow(a.int64(1), a.int64(2), a.int64(3)));
}
Napi::Value select(const Napi::CallbackInfo& info) {
  Args a(info, "select");
  return wrapTensor(info.Env(), a.tensor(0).select(a.int64(1), a.int64(2)));
}
// slice(t, dim, start?, end?, step?)
Napi::Value slice(const Napi::CallbackInfo& info) {
  Args a(info, "slice");
  int64_t step = a.optInt64(4).value_or(1);
  if (step <= 0) throw ArgumentError("slice(): step must be positive");
  return wrapTensor(info.Env(), a.tensor(0).slice(a.int64(1), a.optInt64(2), a.optInt64(3), step));
}
Napi::Value index(const Napi::CallbackInfo& info) {
  Args a(info, "index");
  return wrapTensor(info.Env(), a.tensor(0).index(parseIndices(a, 1)));
}
// indexPut(t, specs, value): in place, like t[specs] = value.
Napi::Value indexPut(const Napi::CallbackInfo& info) {
  Args a(info, "indexPut");
  at::Tensor t = a.tensor(0);
  auto specs = parseIndices(a, 1);
  if (a.isTensor(2)) t.index_put_(specs, a.tensor(2));
  else t.index_put_(specs, a.scalar(2));
  return info.Env().Undefined();
}
Napi::Value indexSelect(const Napi::CallbackInfo& info) {
  Args a(info, "indexSelect");
  return wrapTensor(info.Env(), at::index_select(a.tensor(0), a.int64(1), a.tensor(2)));
}
Napi::Value gather(const Napi::CallbackInfo& info) {
  Args a(info, "gather");
  return wrapTensor(info.Env(), at::gather(a.tensor(0), a.int64(1), a.tensor(2)));
}
Napi::Value scatter(const Napi::CallbackInfo& info) {
  Args a(info, "scatter");
  if (a.isTensor(3)) return wrapTensor(info.Env(), at::scatter(a.tensor(0), a.int64(1), a.tensor(2), a.tensor(3)));
  return wrapTensor(info.Env(), at::scatter(a.tensor(0), a.int64(1), a.tensor(2), a.scalar(3)));
}
Napi::Value maskedFill(const Napi::CallbackInfo& info) {
  Args a(info, "maskedFill");
  return wrapTensor(info.Env(), a.tensor(0).masked_fill(a.tensor(1), a.scalar(2)));
}
Napi::Value maskedSelect(const Napi::CallbackInfo& info) {
  Args a(info, "maskedSelect");
  return wrapTensor(info.Env(), a.tensor(0).masked_select(a.tensor(1)));
}
Napi::Value cat(const Napi::CallbackInfo& info) {
  Args a(info, "cat");
  return wrapTensor(info.Env(), at::cat(a.tensorList(0), a.optInt64(1).value_or(0)));
}
Napi::Value stack(const Napi::CallbackInfo& info) {
  Args a(info, "stack");
  return wrapTensor(info.Env(), at::stack(a.tensorList(0), a.optInt64(1).value_or(0)));
}
// split(t, sizeOrSizes, dim?)
Napi::Value split(const Napi::CallbackInfo& info) {
  Args a(info, "split");
  const at::Tensor& t = a.tensor(0);
  int64_t dim = a.optInt64(2).value_or(0);
  if (a[1].IsNumber()) return tensorArray(info.Env(), t.split(a.int64(1), dim));
  return tensorArray(info.Env(), t.split_with_sizes(a.intList(1), dim));
}
Napi::Value chunk(const Napi::CallbackInfo& info) {
  Args a(info, "chunk");
  return tensorArray(info.Env(), a.tensor(0).chunk(a.int64(1), a.optInt64(2).value_or(0)));
}
Napi::Value unbind(const Napi::CallbackInfo& info) {
  Args a(info, "unbind");
  return tensorArray(info.Env(), a.tensor(0).unbind(a.optInt64(1).value_or(0)));
}
Napi::Value flip(const Napi::CallbackInfo& info) {
  Args a(info, "flip");
  return wrapTensor(info.Env(), a.tensor(0).flip(a.intList(1)));
}
Napi::Value roll(const Napi::CallbackInfo& info) {
  Args a(info, "roll");
  return wrapTensor(info.Env(), a.tensor(0).roll(a.intList(1), a.intList(2)));
}
Napi::Value tril(const Napi::CallbackInfo& info) {
  Args a(info, "tril");
  return wrapTensor(info.Env(), a.tensor(0).tril(a.optInt64(1).value_or(0)));
}
Napi::Value triu(const Napi::CallbackInfo& info) {
  Args a(info, "triu");
  return wrapTensor(info.Env(), a.tensor(0).triu(a.optInt64(1).value_or(0)));
}
// asStrided(t, size, stride, storageOffset?): a view on t's storage (for checkpoint formats
// that store views of shared storages).
Napi::Value asStrided(const Napi::CallbackInfo& info) {
  Args a(info, "asStrided");
  const at::Tensor& t = a.tensor(0);
  auto size = a.intList(1);
  auto stride = a.intList(2);
  if (size.size() != stride.size()) throw ArgumentError("asStrided(): size and stride must have the same length");
  int64_t offset = a.optInt64(3).value_or(t.storage_offset());
  // Bounds are checked here because as_strided itself trusts its caller.
  int64_t last = offset;
  for (size_t i = 0; i < size.size(); ++i) {
    if (size[i] < 0 || stride[i] < 0) throw ArgumentError("asStrided(): negative size or stride");
    if (size[i] == 0) { last = -1; break; }
    last += (size[i] - 1) * stride[i];
  }
  int64_t capacity = static_cast<int64_t>(t.storage().nbytes() / t.element_size());
  if (offset < 0 || last >= capacity)
    throw ArgumentError("asStrided(): the view reaches element " + std::to_string(last) + " but the storage holds " + std::to_string(capacity));
  return wrapTensor(info.Env(), t.as_strided(size, stride, offset));
}

// viewAsDtype(t, dtype): reinterprets the bytes (t.view(dtype)); e.g. raw uint8 -> bfloat16.
Napi::Value viewAsDtype(const Napi::CallbackInfo& info) {
  Args a(info, "viewAsDtype");
  return wrapTensor(info.Env(), a.tensor(0).view(a.dtype(1)));
}

Napi::Value nonzero(const Napi::CallbackInfo& info) {
  Args a(info, "nonzero");
  return wrapTensor(info.Env(), a.tensor(0).nonzero());
}

void registerTensorShape(Napi::Env env, Napi::Object exports) {
  defineFunction<reshape>(env, exports, "reshape");
  defineFunction<view>(env, exports, "view");
  defineFunction<permute>(env, exports, "permute");
  defineFunction<transpose>(env, exports, "transpose");
  defineFunction<flatten>(env, exports, "flatten");
  defineFunction<unsqueeze>(env, exports, "unsqueeze");
  defineFunction<squeeze>(env, exports, "squeeze");
  defineFunction<expand>(env, exports, "expand");
  defineFunction<repeat>(env, exports, "repeat");
  defineFunction<narrow>(env, exports, "narrow");
  defineFunction<select>(env, exports, "select");
  defineFunction<slice>(env, exports, "slice");
  defineFunction<index>(env, exports, "index");
  defineFunction<indexPut>(env, exports, "indexPut");
  defineFunction<indexSelect>(env, exports, "indexSelect");
  defineFunction<gather>(env, exports, "gather");
  defineFunction<scatter>(env, exports, "scatter");
  defineFunction<maskedFill>(env, exports, "maskedFill");
  defineFunction<maskedSelect>(env, exports, "maskedSelect");
  defineFunction<cat>(env, exports, "cat");
  defineFunction<stack>(env, exports, "stack");
  defineFunction<split>(env, exports, "split");
  defineFunction<chunk>(env, exports, "chunk");
  defineFunction<unbind>(env, exports, "unbind");
  defineFunction<flip>(env, exports, "flip");
  defineFunction<roll>(env, exports, "roll");
  defineFunction<tril>(env, exports, "tril");
  defineFunction<triu>(env, exports, "triu");
  defineFunction<nonzero>(env, exports, "nonzero");
  defineFunction<asStrided>(env, exports, "asStrided");
  defineFunction<viewAsDtype>(env, exports, "viewAsDtype");
}

}  // namespace

MEDTUNE_REGISTER(tensor_shape, registerTensorShape);

}  // namespace medtune
