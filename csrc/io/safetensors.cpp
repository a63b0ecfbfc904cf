#include "io/safetensors.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>

#include "common/errors.h"
#include "io/json.h"

namespace medtune::io {

namespace {

// The reference implementation refuses headers above 100 MB; so do we (a corrupt length field
// must not make us allocate gigabytes).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
};

const DtypeInfo kDtypes[] = {
    {"F64", at::kDouble},        {"F32", at::kFloat},          {"F16", at::kHalf},     {"BF16", at::kBFloat16},
    {"I64", at::kLong},          {"I32", at::kInt},            {"I16", at::kShort},    {"I8", at::kChar},
    {"U8", at::kByte},           {"BOOL", at::kBool},          {"U16", at::kUInt16},   {"U32", at::kUInt32},
    {"U64", at::kUInt64},        {"F8_E4M3", at::kFloat8_e4m3fn}, {"F8_E5M2", at::kFloat8_e5m2},
};

std::optional<at::ScalarType> dtypeFromName(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return d.type;
  return std::nullopt;
}

[[noreturn]] void bad(const std::string& message) { throw CodedError("MEDTUNE_BAD_CHECKPOINT", message); }

std::string errnoText() { return std::strerror(errno); }

size_t pageSize() {
  static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

}  // namespace

int64_t TensorRecord::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string safetensorsDtypeName(at::ScalarType type) {
  for (const auto& d : kDtypes)
    if (d.type == type) return d.name;
  throw ArgumentError(std::string("safetensors cannot store dtype ") + c10::toString(type));
}

std::string SafetensorsFile::where(const std::string& tensor) const {
  return tensor.empty() ? path_ : path_ + ": tensor '" + tensor + "'";
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) bad(path + ": cannot open: " + errnoText());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    std::string why = errnoText();
    ::close(fd);
    bad(path + ": cannot stat: " + why);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    bad(path + ": not a regular file");
  }
  file->fileSize_ = static_cast<uint64_t>(st.st_size);
  if (file->fileSize_ < 8) {
    ::close(fd);
    bad(path + ": not a safetensors file: " + std::to_string(file->fileSize_) +
        " bytes is too short for the 8-byte header length");
  }
  // A private, writable mapping: tensors viewing it may be written to without reaching the file
  // and without a segfault; pages are only copied when written.
  void* map = ::mmap(nullptr, file->fileSize_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) bad(path + ": cannot memory-map: " + errnoText());
  file->map_ = map;
  file->mapLength_ = file->fileSize_;

  const auto* bytes = static_cast<const unsigned char*>(map);
  uint64_t headerLength = 0;
  for (int i = 7; i >= 0; --i) headerLength = (headerLength << 8) | bytes[i];
  if (headerLength > file->fileSize_ - 8) {
    bad(path + ": header length " + std::to_string(headerLength) + " runs past the end of the file (" +
        std::to_string(file->fileSize_) + " bytes): the file is truncated or not a safetensors file");
  }
  if (headerLength > kMaxHeaderBytes) bad(path + ": header length " + std::to_string(headerLength) + " exceeds the 100 MB limit");
  file->dataStart_ = 8 + headerLength;
  file->parseHeader(reinterpret_cast<const char*>(bytes) + 8, headerLength);
  ::madvise(map, file->mapLength_, MADV_SEQUENTIAL);
  return file;
}

void SafetensorsFile::parseHeader(const char* header, size_t length) {
  if (length == 0 || header[0] != '{') bad(path_ + ": header does not start with '{': not a safetensors file");
  json::Value root;
  try {
    root = json::parse(std::string_view(header, length));
  } catch (const json::ParseError& e) {
    bad(path_ + ": header is not valid JSON (" + e.what() + ")");
  }
  if (!root.isObject()) bad(path_ + ": header is not a JSON object");

  const uint64_t dataSize = fileSize_ - dataStart_;
  for (const auto& [name, entry] : root.members()) {
    if (name == "__metadata__") {
      if (!entry.isObject()) bad(path_ + ": __metadata__ must be an object of strings");
      for (const auto& [k, v] : entry.members()) {
        if (!v.isString()) bad(path_ + ": __metadata__ value for '" + k + "' is " + json::Value::typeName(v.type()) + ", not a string");
        metadata_.emplace_back(k, v.asString());
      }
      continue;
    }
    if (!entry.isObject()) bad(where(name) + ": entry is " + json::Value::typeName(entry.type()) + ", not an object");
    TensorRecord rec;
    rec.name = name;
    const json::Value* dtype = entry.find("dtype");
    const json::Value* shape = entry.find("shape");
    const json::Value* offsets = entry.find("data_offsets");
    if (!dtype || !dtype->isString()) bad(where(name) + ": missing or non-string \"dtype\"");
    if (!shape || !shape->isArray()) bad(where(name) + ": missing or non-array \"shape\"");
    if (!offsets || !offsets->isArray() || offsets->items().size() != 2) bad(where(name) + ": \"data_offsets\" must be [begin, end]");
    rec.dtypeName = dtype->asString();
    auto type = dtypeFromName(rec.dtypeName);
    if (!type) {
      std::string known;
      for (const auto& d : kDtypes) known += std::string(known.empty() ? "" : ", ") + d.name;
      bad(where(name) + ": unknown dtype '" + rec.dtypeName + "' (known: " + known + ")");
    }
    rec.dtype = *type;
    // Byte size with overflow checks: a corrupt shape must not wrap around to a small number.
    uint64_t numel = 1;
    bool overflow = false;
    for (const auto& d : shape->items()) {
      if (!d.isInteger() || d.asInteger() < 0) bad(where(name) + ": shape entries must be non-negative integers");
      uint64_t dim = static_cast<uint64_t>(d.asInteger());
      if (dim != 0 && numel > std::numeric_limits<uint64_t>::max() / dim) overflow = true;
      numel *= dim;
      rec.shape.push_back(d.asInteger());
    }
    for (const auto& o : offsets->items())
      if (!o.isInteger() || o.asInteger() < 0) bad(where(name) + ": data_offsets must be non-negative integers");
    rec.begin = static_cast<uint64_t>(offsets->items()[0].asInteger());
    rec.end = static_cast<uint64_t>(offsets->items()[1].asInteger());
    if (rec.end < rec.begin) bad(where(name) + ": data_offsets [" + std::to_string(rec.begin) + ", " + std::to_string(rec.end) + "] end before they begin");
    if (rec.end > dataSize) {
      bad(where(name) + ": data_offsets [" + std::to_string(rec.begin) + ", " + std::to_string(rec.end) +
          "] lie outside the data area of " + std::to_string(dataSize) + " bytes (the file is truncated or corrupt)");
    }
    const uint64_t itemSize = c10::elementSize(rec.dtype);
    if (overflow || (numel != 0 && itemSize > std::numeric_limits<uint64_t>::max() / numel) || numel * itemSize != rec.end - rec.begin) {
      std::string dims;
      for (int64_t d : rec.shape) dims += (dims.empty() ? "" : ", ") + std::to_string(d);
      bad(where(name) + ": shape [" + dims + "] of " + rec.dtypeName + " needs " +
          (overflow ? std::string("more than 2^64") : std::to_string(numel * itemSize)) + " bytes but data_offsets span " +
          std::to_string(rec.end - rec.begin));
    }
    records_.push_back(std::move(rec));
  }

  std::stable_sort(records_.begin(), records_.end(), [](const TensorRecord& a, const TensorRecord& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t cursor = 0;
  const TensorRecord* previous = nullptr;
  for (const auto& rec : records_) {
    if (rec.begin < cursor) bad(path_ + ": tensors '" + previous->name + "' and '" + rec.name + "' overlap in the data area");
    if (rec.begin > cursor) {
      bad(path_ + ": bytes " + std::to_string(cursor) + ".." + std::to_string(rec.begin) + " of the data area belong to no tensor (before '" +
          rec.name + "'); the format forbids holes");
    }
    cursor = rec.end;
    previous = &rec;
  }
  if (cursor != dataSize) {
    bad(path_ + ": the data area has " + std::to_string(dataSize) + " bytes but the tensors cover " + std::to_string(cursor) +
        (cursor < dataSize ? " (trailing bytes)" : ""));
  }
  for (size_t i = 0; i < records_.size(); ++i) index_.emplace(records_[i].name, i);
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, mapLength_);
}

const TensorRecord* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &records_[it->second];
}

at::Tensor SafetensorsFile::view(const TensorRecord& record) const {
  auto* base = static_cast<char*>(map_) + dataStart_ + record.begin;
  auto keepAlive = shared_from_this();
  auto options = at::TensorOptions().dtype(record.dtype).device(c10::kCPU);
  if (record.numel() == 0) return at::empty(record.shape, options);
  // Tensor data must be aligned to its element size for vectorised kernels; files written with
  // odd header lengths are copied instead of viewed.
  if (reinterpret_cast<uintptr_t>(base) % c10::elementSize(record.dtype) != 0) {
    at::Tensor copy = at::empty(record.shape, options);
    std::memcpy(copy.data_ptr(), base, record.end - record.begin);
    return copy;
  }
  return at::from_blob(base, record.shape, [keepAlive](void*) {}, options);
}

at::Tensor SafetensorsFile::read(const TensorRecord& record, std::optional<at::ScalarType> dtype, c10::Device device) const {
  at::Tensor out = at::empty(record.shape, at::TensorOptions().dtype(dtype.value_or(record.dtype)).device(device));
  readInto(record, out);
  return out;
}

void SafetensorsFile::readInto(const TensorRecord& record, at::Tensor& dst) const {
  if (dst.sizes() != at::IntArrayRef(record.shape)) {
    std::string want, got;
    for (int64_t d : record.shape) want += (want.empty() ? "" : ", ") + std::to_string(d);
    for (int64_t d : dst.sizes()) got += (got.empty() ? "" : ", ") + std::to_string(d);
    bad(where(record.name) + ": has shape [" + want + "] but the model expects [" + got + "]");
  }
  {
    at::NoGradGuard noGrad;
    dst.copy_(view(record));
  }
  release(record);
}

void SafetensorsFile::release(const TensorRecord& record) const {
  const size_t page = pageSize();
  uintptr_t start = reinterpret_cast<uintptr_t>(map_) + dataStart_ + record.begin;
  uintptr_t stop = reinterpret_cast<uintptr_t>(map_) + dataStart_ + record.end;
  uintptr_t alignedStart = (start + page - 1) / page * page;  // only whole pages of this record
  uintptr_t alignedStop = stop / page * page;
  if (alignedStop > alignedStart) ::madvise(reinterpret_cast<void*>(alignedStart), alignedStop - alignedStart, MADV_DONTNEED);
}

namespace {

class TempFile {
 public:
  explicit TempFile(const std::string& target) {
    static std::atomic<uint64_t> counter{0};
    path_ = target + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw CodedError("MEDTUNE_WRITE_FAILED", target + ": cannot create " + path_ + ": " + errnoText());
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }
  void write(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        throw CodedError("MEDTUNE_WRITE_FAILED", path_ + ": write failed: " + errnoText());
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
  }
  void commit(const std::string& target) {
    if (::fsync(fd_) != 0) throw CodedError("MEDTUNE_WRITE_FAILED", path_ + ": fsync failed: " + errnoText());
    ::close(fd_);
    fd_ = -1;
    if (::rename(path_.c_str(), target.c_str()) != 0) throw CodedError("MEDTUNE_WRITE_FAILED", target + ": rename failed: " + errnoText());
    committed_ = true;
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace

void writeSafetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors, const Metadata& metadata) {
  // The reference writer orders tensors by dtype alignment (largest first), then by name, so
  // every tensor stays aligned; we do the same so files are byte-identical in layout.
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__") throw ArgumentError("writeSafetensors: '__metadata__' is reserved and cannot name a tensor");
    if (!t.defined()) throw ArgumentError("writeSafetensors: tensor '" + name + "' is undefined");
    safetensorsDtypeName(t.scalar_type());
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    size_t ea = c10::elementSize(tensors[a].second.scalar_type()), eb = c10::elementSize(tensors[b].second.scalar_type());
    return ea != eb ? ea > eb : tensors[a].first < tensors[b].first;
  });
  for (size_t i = 1; i < order.size(); ++i)
    if (tensors[order[i]].first == tensors[order[i - 1]].first) throw ArgumentError("writeSafetensors: duplicate tensor name '" + tensors[order[i]].first + "'");

  json::Value header = json::Value::object();
  if (!metadata.empty()) {
    json::Value meta = json::Value::object();
    for (const auto& [k, v] : metadata) meta.set(k, json::Value::string(v));
    header.set("__metadata__", std::move(meta));
  }
  uint64_t offset = 0;
  for (size_t i : order) {
    const at::Tensor& t = tensors[i].second;
    json::Value entry = json::Value::object();
    entry.set("dtype", json::Value::string(safetensorsDtypeName(t.scalar_type())));
    json::Value shape = json::Value::array();
    for (int64_t d : t.sizes()) shape.push(json::Value::integer(d));
    entry.set("shape", std::move(shape));
    uint64_t nbytes = static_cast<uint64_t>(t.numel()) * c10::elementSize(t.scalar_type());
    json::Value offs = json::Value::array();
    offs.push(json::Value::integer(static_cast<int64_t>(offset)));
    offs.push(json::Value::integer(static_cast<int64_t>(offset + nbytes)));
    entry.set("data_offsets", std::move(offs));
    header.set(tensors[i].first, std::move(entry));
    offset += nbytes;
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');

  TempFile out(path);
  unsigned char lengthBytes[8];
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) lengthBytes[i] = static_cast<unsigned char>((n >> (8 * i)) & 0xFF);
  out.write(lengthBytes, 8);
  out.write(text.data(), text.size());
  for (size_t i : order) {
    at::Tensor host = tensors[i].second.detach().to(c10::kCPU).contiguous();
    if (host.numel() > 0) out.write(host.data_ptr(), static_cast<size_t>(host.numel()) * host.element_size());
  }
  out.commit(path);
}

}  // namespace medtune::io
