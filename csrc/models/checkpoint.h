// Checkpoints as sets of safetensors files: one model.safetensors, the shards a
// model.safetensors.index.json names, or several sources (an original LLaVA-Med directory plus
// a separate CLIP directory whose keys get a prefix). Loading copies each tensor straight into
// the model's parameter (target dtype and device), shard by shard.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/safetensors.h"
#include "models/model.h"

namespace medtune::models {

struct CheckpointSource {
  std::string path;
  std::string prefix;  // added in front of every key of this file ("" for most)
};

class Checkpoint {
 public:
  // Opens (maps and validates) every file; a key present in two files is an error.
  static std::shared_ptr<Checkpoint> open(const std::vector<CheckpointSource>& sources);

  struct Entry {
    std::shared_ptr<io::SafetensorsFile> file;
    const io::TensorRecord* record;
  };
  const Entry* find(const std::string& name) const;
  const std::vector<std::string>& names() const { return names_; }  // model-side names, file order
  const std::vector<std::shared_ptr<io::SafetensorsFile>>& files() const { return files_; }

 private:
  std::vector<std::shared_ptr<io::SafetensorsFile>> files_;
  std::unordered_map<std::string, Entry> entries_;
  std::vector<std::string> names_;
};

struct LoadReport {
  std::vector<std::string> unexpected;   // checkpoint keys the model has no place for
  std::vector<std::string> initialized;  // head parameters the checkpoint lacks, freshly initialised
};

// Fills every parameter of `model` from `checkpoint`. A missing parameter is an Error naming it
// and the files, unless it belongs to a classification head (then it is initialised, as
// transformers does when a backbone checkpoint is loaded for classification).
// With `mmap`, CPU parameters whose dtype matches the file become copy-on-write views of the
// mapped file instead of copies (no load-time copy, memory shared with the page cache; the file
// must then not be overwritten in place while the model lives).
LoadReport loadCheckpoint(Model& model, const Checkpoint& checkpoint, double initStd, uint64_t seed, bool mmap = false);

struct SavedShard {
  std::string file;  // file name inside the directory
  std::vector<std::string> names;
  uint64_t bytes = 0;
};

// Writes the model's persistent parameters as safetensors in `dir` (model.safetensors, or
// model-0000i-of-0000n.safetensors shards of at most maxShardBytes each), converting to `dtype`
// when given. Each file is written atomically; the caller writes the index and config.
std::vector<SavedShard> saveModelWeights(Model& model, const std::string& dir, uint64_t maxShardBytes, std::optional<at::ScalarType> dtype,
                                         const io::Metadata& metadata);

}  // namespace medtune::models
