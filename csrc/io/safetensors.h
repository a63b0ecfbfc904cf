// safetensors files, read by memory-mapping and validated before any byte of tensor data is
// touched: header length inside the file, header JSON, known dtypes, shapes whose byte size
// equals the data_offsets span, offsets inside the data area, no overlaps and no holes (as the
// format requires). Every error names the file and, where there is one, the tensor.
//
// Tensors are copied out of the mapping straight into their target dtype and device (one
// conversion, no full-size float32 staging copy), and the copied pages are dropped from the
// resident set, so loading a bf16 7B checkpoint needs about its own size in host memory.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace medtune::io {

struct TensorRecord {
  std::string name;
  std::string dtypeName;  // as the file spells it ("BF16")
  at::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets inside the data area
  uint64_t end = 0;
  int64_t numel() const;
};

using Metadata = std::vector<std::pair<std::string, std::string>>;

class SafetensorsFile : public std::enable_shared_from_this<SafetensorsFile> {
 public:
  // Maps and validates `path`; throws CodedError("MEDTUNE_BAD_CHECKPOINT") naming file and cause.
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  uint64_t fileSize() const { return fileSize_; }
  // In the order of their data in the file.
  const std::vector<TensorRecord>& tensors() const { return records_; }
  const TensorRecord* find(const std::string& name) const;
  const Metadata& metadata() const { return metadata_; }

  // A CPU tensor over the mapped bytes (copy-on-write private mapping: writing to it never
  // reaches the file). It keeps the mapping alive.
  at::Tensor view(const TensorRecord& record) const;
  // A new tensor holding the record, converted to `dtype` (default: the file's) on `device`.
  at::Tensor read(const TensorRecord& record, std::optional<at::ScalarType> dtype, c10::Device device) const;
  // Copies the record into `dst` (same shape; any dtype and device), then releases its pages.
  void readInto(const TensorRecord& record, at::Tensor& dst) const;
  // Drops the record's pages from this process's resident set (the kernel's page cache keeps
  // them), so loading shard after shard does not add the mapped size to peak memory.
  void release(const TensorRecord& record) const;

 private:
  SafetensorsFile() = default;
  void parseHeader(const char* header, size_t length);
  std::string where(const std::string& tensor = "") const;

  std::string path_;
  uint64_t fileSize_ = 0;
  void* map_ = nullptr;
  size_t mapLength_ = 0;
  uint64_t dataStart_ = 0;
  std::vector<TensorRecord> records_;
  std::unordered_map<std::string, size_t> index_;
  Metadata metadata_;
};

// The file's dtype name for a libtorch dtype ("BF16"); throws for dtypes safetensors lacks.
std::string safetensorsDtypeName(at::ScalarType type);

// Writes `tensors` (any device; copied to the host one at a time) with `metadata` under
// "__metadata__". Atomic: a temporary file in the same directory, fsync, then rename, so an
// interrupted write never leaves a partial file at `path`.
void writeSafetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const Metadata& metadata);

}  // namespace medtune::io
