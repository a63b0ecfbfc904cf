// Image preprocessing for the data loader, native and off the JavaScript thread: optional
// pad-to-square with a fill colour, resizing that reproduces Pillow's Image.resize on 8-bit
// images bit for bit (its Resample.c: separable convolution, the filter widened by the scale
// when downsampling, per-output normalised weights in 22-bit fixed point, horizontal pass into an
// 8-bit intermediate first, then the vertical pass over only the rows it needs), transformers'
// centre crop (zero padding when the crop is larger), and rescale + normalize to float32 CHW in
// numpy's float32 arithmetic. transformers' image processors resize through PIL, so this is what
// makes pixel values equal theirs. The async form runs on libuv's thread pool (like sharp's
// decoding), so several images are prepared in parallel while the compute queue trains.
#include <napi.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "common/args.h"
#include "common/errors.h"
#include "common/registry.h"

namespace medtune {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

struct Filter {
  double support;
  double (*fn)(double);
};

double boxFilter(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }
double bilinearFilter(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}
double hammingFilter(double x) {
  x = std::fabs(x);
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x *= M_PI;
  return std::sin(x) / x * (0.54 + 0.46 * std::cos(x));
}
double bicubicFilter(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}
double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= M_PI;
  return std::sin(x) / x;
}
double lanczosFilter(double x) { return (x >= -3.0 && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0; }

std::optional<Filter> filterNamed(const std::string& name) {
  if (name == "box") return Filter{0.5, boxFilter};
  if (name == "bilinear") return Filter{1.0, bilinearFilter};
  if (name == "hamming") return Filter{1.0, hammingFilter};
  if (name == "bicubic") return Filter{2.0, bicubicFilter};
  if (name == "lanczos") return Filter{3.0, lanczosFilter};
  if (name == "nearest") return Filter{0.0, nullptr};
  return std::nullopt;
}

struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;   // xmin, count per output position
  std::vector<int32_t> weights;
};

Coeffs precompute(int inSize, int outSize, const Filter& filter) {
  const double scale = static_cast<double>(inSize) / outSize;
  const double filterScale = std::max(scale, 1.0);
  const double support = filter.support * filterScale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(outSize * 2);
  c.weights.assign(static_cast<size_t>(outSize) * c.ksize, 0);
  std::vector<double> k(c.ksize);
  const double ss = 1.0 / filterScale;
  for (int xx = 0; xx < outSize; xx++) {
    const double center = (xx + 0.5) * scale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; x++) {
      const double w = filter.fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; x++) {
      const double v = ww != 0.0 ? k[x] / ww : k[x];
      c.weights[xx * c.ksize + x] = static_cast<int32_t>(v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
    }
    c.bounds[xx * 2] = xmin;
    c.bounds[xx * 2 + 1] = xmax;
  }
  return c;
}

inline uint8_t clip8(int32_t in) {
  if (in >= (1 << kPrecisionBits << 8)) return 255;
  if (in <= 0) return 0;
  return static_cast<uint8_t>(in >> kPrecisionBits);
}

struct Raster {
  int width = 0, height = 0, channels = 3;
  std::vector<uint8_t> data;
};

Raster horizontal(const Raster& in, int rowOffset, int rows, int outWidth, const Coeffs& c) {
  Raster out{outWidth, rows, in.channels, std::vector<uint8_t>(static_cast<size_t>(rows) * outWidth * in.channels)};
  const int ch = in.channels;
  for (int y = 0; y < rows; y++) {
    const uint8_t* row = in.data.data() + static_cast<size_t>(y + rowOffset) * in.width * ch;
    uint8_t* dst = out.data.data() + static_cast<size_t>(y) * outWidth * ch;
    for (int xx = 0; xx < outWidth; xx++) {
      const int xmin = c.bounds[xx * 2], count = c.bounds[xx * 2 + 1];
      const int32_t* k = c.weights.data() + static_cast<size_t>(xx) * c.ksize;
      for (int b = 0; b < ch; b++) {
        int32_t acc = 1 << (kPrecisionBits - 1);
        const uint8_t* p = row + xmin * ch + b;
        for (int x = 0; x < count; x++) acc += p[x * ch] * k[x];
        dst[xx * ch + b] = clip8(acc);
      }
    }
  }
  return out;
}

Raster vertical(const Raster& in, int outHeight, const Coeffs& c, int rowShift) {
  const int stride = in.width * in.channels;
  Raster out{in.width, outHeight, in.channels, std::vector<uint8_t>(static_cast<size_t>(outHeight) * stride)};
  std::vector<int32_t> acc(stride);
  for (int yy = 0; yy < outHeight; yy++) {
    const int ymin = c.bounds[yy * 2] - rowShift, count = c.bounds[yy * 2 + 1];
    const int32_t* k = c.weights.data() + static_cast<size_t>(yy) * c.ksize;
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    for (int y = 0; y < count; y++) {
      const uint8_t* src = in.data.data() + static_cast<size_t>(ymin + y) * stride;
      const int32_t w = k[y];
      for (int i = 0; i < stride; i++) acc[i] += src[i] * w;
    }
    uint8_t* dst = out.data.data() + static_cast<size_t>(yy) * stride;
    for (int i = 0; i < stride; i++) dst[i] = clip8(acc[i]);
  }
  return out;
}

Raster nearest(const Raster& in, int width, int height) {
  Raster out{width, height, in.channels, std::vector<uint8_t>(static_cast<size_t>(width) * height * in.channels)};
  const double sx = static_cast<double>(in.width) / width, sy = static_cast<double>(in.height) / height;
  for (int y = 0; y < height; y++) {
    const int yi = std::min(in.height - 1, static_cast<int>((y + 0.5) * sy));
    for (int x = 0; x < width; x++) {
      const int xi = std::min(in.width - 1, static_cast<int>((x + 0.5) * sx));
      std::memcpy(&out.data[(static_cast<size_t>(y) * width + x) * in.channels], &in.data[(static_cast<size_t>(yi) * in.width + xi) * in.channels], in.channels);
    }
  }
  return out;
}

Raster resize(const Raster& in, int width, int height, const Filter& f) {
  if (width == in.width && height == in.height) return in;
  if (!f.fn) return nearest(in, width, height);
  const bool needH = width != in.width, needV = height != in.height;
  const Coeffs ch = precompute(in.width, width, f);
  const Coeffs cv = precompute(in.height, height, f);
  if (!needV) return horizontal(in, 0, in.height, width, ch);
  if (!needH) return vertical(in, height, cv, 0);
  const int first = cv.bounds[0];
  const int last = cv.bounds[(height - 1) * 2] + cv.bounds[(height - 1) * 2 + 1];
  return vertical(horizontal(in, first, last - first, width, ch), height, cv, first);
}

Raster padToSquare(const Raster& in, const std::array<uint8_t, 3>& fill) {
  if (in.width == in.height) return in;
  const int side = std::max(in.width, in.height);
  Raster out{side, side, 3, std::vector<uint8_t>(static_cast<size_t>(side) * side * 3)};
  for (size_t i = 0; i < out.data.size(); i += 3) std::memcpy(&out.data[i], fill.data(), 3);
  const int x0 = in.width > in.height ? 0 : (side - in.width) / 2;
  const int y0 = in.width > in.height ? (side - in.height) / 2 : 0;
  for (int y = 0; y < in.height; y++) {
    for (int x = 0; x < in.width; x++) {
      uint8_t* d = &out.data[(static_cast<size_t>(y + y0) * side + x + x0) * 3];
      const uint8_t* s = &in.data[(static_cast<size_t>(y) * in.width + x) * in.channels];
      d[0] = s[0];
      d[1] = s[in.channels == 3 ? 1 : 0];
      d[2] = s[in.channels == 3 ? 2 : 0];
    }
  }
  return out;
}

Raster centerCrop(const Raster& in, int height, int width) {
  int top = static_cast<int>(std::floor((in.height - height) / 2.0));
  int left = static_cast<int>(std::floor((in.width - width) / 2.0));
  const Raster* src = &in;
  Raster padded;
  if (top < 0 || left < 0 || top + height > in.height || left + width > in.width) {
    const int nh = std::max(height, in.height), nw = std::max(width, in.width);
    const int tp = (nh - in.height + 1) / 2, lp = (nw - in.width + 1) / 2;
    padded = Raster{nw, nh, in.channels, std::vector<uint8_t>(static_cast<size_t>(nw) * nh * in.channels)};
    for (int y = 0; y < in.height; y++) {
      std::memcpy(&padded.data[(static_cast<size_t>(y + tp) * nw + lp) * in.channels], &in.data[static_cast<size_t>(y) * in.width * in.channels], static_cast<size_t>(in.width) * in.channels);
    }
    src = &padded;
    top += tp;
    left += lp;
  }
  Raster out{width, height, in.channels, std::vector<uint8_t>(static_cast<size_t>(width) * height * in.channels)};
  for (int y = 0; y < height; y++) {
    std::memcpy(&out.data[static_cast<size_t>(y) * width * in.channels], &src->data[(static_cast<size_t>(top + y) * src->width + left) * in.channels], static_cast<size_t>(width) * in.channels);
  }
  return out;
}

struct Plan {
  std::optional<std::array<uint8_t, 3>> padFill;
  std::optional<std::array<int, 2>> resize;  // width, height
  Filter filter{2.0, bicubicFilter};
  std::optional<std::array<int, 2>> crop;    // height, width
  std::optional<double> rescale;
  std::optional<std::array<float, 3>> mean, std;
};

struct Output {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;   // 3-channel HWC, when the plan has no normalization step
  std::vector<float> values;     // CHW float32
};

Output run(Raster img, const Plan& plan, bool toFloat) {
  // A grey fill keeps a grey image one plane; any other fill needs all three channels.
  if (plan.padFill) {
    const auto& f = *plan.padFill;
    img = padToSquare(img, f);
  }
  if (plan.resize) img = resize(img, (*plan.resize)[0], (*plan.resize)[1], plan.filter);
  if (plan.crop) img = centerCrop(img, (*plan.crop)[0], (*plan.crop)[1]);
  Output out{img.width, img.height, {}, {}};
  const size_t n = static_cast<size_t>(img.width) * img.height;
  if (!toFloat) {
    out.pixels.resize(n * 3);
    for (size_t i = 0; i < n; i++)
      for (int c = 0; c < 3; c++) out.pixels[i * 3 + c] = img.data[i * img.channels + (img.channels == 3 ? c : 0)];
    return out;
  }
  out.values.resize(n * 3);
  for (int c = 0; c < 3; c++) {
    const float mean = plan.mean ? (*plan.mean)[c] : 0.f;
    const float sd = plan.std ? (*plan.std)[c] : 1.f;
    float* dst = out.values.data() + c * n;
    const int src = img.channels == 3 ? c : 0;
    for (size_t i = 0; i < n; i++) {
      float v = static_cast<float>(img.data[i * img.channels + src]);
      // numpy: uint8 -> float64 * scale -> float32, then (x - mean) / std in float32.
      if (plan.rescale) v = static_cast<float>(static_cast<double>(img.data[i * img.channels + src]) * *plan.rescale);
      if (plan.mean) v = (v - mean) / sd;
      dst[i] = v;
    }
  }
  return out;
}

// ---- JavaScript binding ------------------------------------------------------------------------

Raster rasterFromArgs(const Args& a) {
  Napi::Value v = a[0];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) a.fail(0, "a Uint8Array of pixels");
  auto arr = v.As<Napi::Uint8Array>();
  Raster r;
  r.width = static_cast<int>(a.int64(1));
  r.height = static_cast<int>(a.int64(2));
  r.channels = static_cast<int>(a.int64(3));
  if (r.width <= 0 || r.height <= 0) throw ArgumentError(a.where(1) + ": image size must be positive");
  if (r.channels != 1 && r.channels != 3) throw ArgumentError(a.where(3) + ": channels must be 1 or 3");
  const size_t expected = static_cast<size_t>(r.width) * r.height * r.channels;
  if (arr.ElementLength() != expected) {
    throw ArgumentError(a.where(0) + ": " + std::to_string(arr.ElementLength()) + " bytes for a " + std::to_string(r.width) + "x" +
                        std::to_string(r.height) + "x" + std::to_string(r.channels) + " image (" + std::to_string(expected) + " expected)");
  }
  r.data.assign(arr.Data(), arr.Data() + expected);
  return r;
}

template <typename T, size_t N>
std::optional<std::array<T, N>> optArray(Napi::Object o, const char* key, const std::string& where) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return std::nullopt;
  if (!v.IsArray() || v.As<Napi::Array>().Length() != N) throw ArgumentError(where + ": '" + key + "' must be an array of " + std::to_string(N) + " numbers");
  std::array<T, N> out{};
  for (size_t i = 0; i < N; i++) {
    Napi::Value e = v.As<Napi::Array>().Get(static_cast<uint32_t>(i));
    if (!e.IsNumber()) throw ArgumentError(where + ": '" + key + "' must hold numbers");
    out[i] = static_cast<T>(e.As<Napi::Number>().DoubleValue());
  }
  return out;
}

Plan planFromArgs(const Args& a) {
  Napi::Object o = a.object(4);
  const std::string where = a.where(4);
  Plan p;
  p.padFill = optArray<uint8_t, 3>(o, "padFill", where);
  p.resize = optArray<int, 2>(o, "resize", where);
  if (p.resize && ((*p.resize)[0] <= 0 || (*p.resize)[1] <= 0)) throw ArgumentError(where + ": resize size must be positive");
  Napi::Value f = o.Get("filter");
  if (f.IsString()) {
    auto filter = filterNamed(f.As<Napi::String>().Utf8Value());
    if (!filter) throw ArgumentError(where + ": unknown filter '" + f.As<Napi::String>().Utf8Value() + "'");
    p.filter = *filter;
  }
  p.crop = optArray<int, 2>(o, "crop", where);
  Napi::Value r = o.Get("rescale");
  if (r.IsNumber()) p.rescale = r.As<Napi::Number>().DoubleValue();
  p.mean = optArray<float, 3>(o, "mean", where);
  p.std = optArray<float, 3>(o, "std", where);
  if (p.mean.has_value() != p.std.has_value()) throw ArgumentError(where + ": 'mean' and 'std' go together");
  return p;
}

Napi::Value outputToJs(Napi::Env env, Output& out, bool toFloat) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("width", out.width);
  result.Set("height", out.height);
  if (toFloat) {
    auto arr = Napi::Float32Array::New(env, out.values.size());
    std::memcpy(arr.Data(), out.values.data(), out.values.size() * sizeof(float));
    result.Set("data", arr);
  } else {
    auto arr = Napi::Uint8Array::New(env, out.pixels.size());
    std::memcpy(arr.Data(), out.pixels.data(), out.pixels.size());
    result.Set("data", arr);
  }
  return result;
}

// imagePreprocess(pixels, width, height, channels, plan, toFloat) -> {width, height, data}
Napi::Value imagePreprocess(const Napi::CallbackInfo& info) {
  Args a(info, "imagePreprocess");
  Raster img = rasterFromArgs(a);
  Plan plan = planFromArgs(a);
  const bool toFloat = a.boolean(5, true);
  Output out = run(std::move(img), plan, toFloat);
  return outputToJs(info.Env(), out, toFloat);
}

class PreprocessWorker : public Napi::AsyncWorker {
 public:
  PreprocessWorker(Napi::Env env, Raster img, Plan plan, bool toFloat)
      : Napi::AsyncWorker(env, "medtune.imagePreprocess"), deferred_(Napi::Promise::Deferred::New(env)), img_(std::move(img)), plan_(plan), toFloat_(toFloat) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      out_ = run(std::move(img_), plan_, toFloat_);
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(outputToJs(Env(), out_, toFloat_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Raster img_;
  Plan plan_;
  bool toFloat_;
  Output out_;
};

// imagePreprocessAsync(...same...) -> Promise<{width, height, data}>, on libuv's thread pool.
Napi::Value imagePreprocessAsync(const Napi::CallbackInfo& info) {
  Args a(info, "imagePreprocessAsync");
  Raster img = rasterFromArgs(a);
  Plan plan = planFromArgs(a);
  auto* worker = new PreprocessWorker(info.Env(), std::move(img), plan, a.boolean(5, true));
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

void registerImagePreprocess(Napi::Env env, Napi::Object exports) {
  defineFunction<imagePreprocess>(env, exports, "imagePreprocess");
  defineFunction<imagePreprocessAsync>(env, exports, "imagePreprocessAsync");
}

}  // namespace

MEDTUNE_REGISTER(image_preprocess, registerImagePreprocess);

}  // namespace medtune
