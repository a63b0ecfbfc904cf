#include "models/checkpoint.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cstdio>
#include <set>

#include "common/errors.h"

namespace medtune::models {

std::shared_ptr<Checkpoint> Checkpoint::open(const std::vector<CheckpointSource>& sources) {
  auto ckpt = std::make_shared<Checkpoint>();
  for (const auto& source : sources) {
    auto file = io::SafetensorsFile::open(source.path);
    ckpt->files_.push_back(file);
    for (const auto& rec : file->tensors()) {
      std::string name = source.prefix + rec.name;
      auto [it, inserted] = ckpt->entries_.emplace(name, Entry{file, &rec});
      if (!inserted) {
        throw CodedError("MEDTUNE_BAD_CHECKPOINT", source.path + ": tensor '" + rec.name + "' is also in " + it->second.file->path() +
                                                       "; a checkpoint must name each tensor once");
      }
      ckpt->names_.push_back(name);
    }
  }
  return ckpt;
}

const Checkpoint::Entry* Checkpoint::find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

LoadReport loadCheckpoint(Model& model, const Checkpoint& checkpoint, double initStd, uint64_t seed, bool mmap) {
  at::NoGradGuard noGrad;
  std::unordered_map<std::string, modules::ParamRef> params;
  for (auto& p : model.parameters())
    if (p.persistent) params.emplace(p.name, p);

  LoadReport report;
  std::set<std::string> loaded;
  // File by file, in data order: each tensor's pages are read once and dropped right after.
  for (const auto& name : checkpoint.names()) {
    const auto* entry = checkpoint.find(name);
    auto it = params.find(name);
    if (it == params.end()) {
      if (!model.ignoresKey(name) && !model.isTiedKey(name)) report.unexpected.push_back(name);
      continue;
    }
    at::Tensor& slot = *it->second.slot;
    if (slot.sizes() != at::IntArrayRef(entry->record->shape)) {
      throw CodedError("MEDTUNE_BAD_CHECKPOINT", entry->file->path() + ": tensor '" + entry->record->name + "' has shape " +
                                                     c10::str(at::IntArrayRef(entry->record->shape)) + " but the model built from config.json expects " +
                                                     c10::str(slot.sizes()));
    }
    if (mmap && slot.device().is_cpu() && slot.scalar_type() == entry->record->dtype) {
      slot = entry->file->view(*entry->record);  // a view unless the bytes are misaligned (then a copy)
    } else {
      entry->file->readInto(*entry->record, slot);
    }
    loaded.insert(name);
  }

  std::vector<std::string> missing;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& [name, p] : params) {
    if (loaded.count(name)) continue;
    if (p.kind == modules::Kind::Head || p.part == modules::Part::Head) {
      // transformers' behaviour when a backbone checkpoint is loaded with a new head.
      at::Tensor cpu = at::empty(p.slot->sizes(), at::TensorOptions().dtype(at::kFloat));
      if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) cpu.zero_();
      else if (p.kind == modules::Kind::Norm) cpu.fill_(1.0);
      else cpu.normal_(0.0, initStd, generator);
      p.slot->copy_(cpu);
      report.initialized.push_back(name);
    } else {
      missing.push_back(name);
    }
  }
  if (!missing.empty()) {
    std::sort(missing.begin(), missing.end());
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 8; ++i) list += (i ? ", '" : "'") + missing[i] + "'";
    if (missing.size() > 8) list += " and " + std::to_string(missing.size() - 8) + " more";
    std::string files;
    for (const auto& f : checkpoint.files()) files += (files.empty() ? "" : ", ") + f->path();
    throw CodedError("MEDTUNE_BAD_CHECKPOINT", "the checkpoint (" + files + ") lacks " + std::to_string(missing.size()) +
                                                   " tensor(s) the model built from config.json needs: " + list);
  }
  std::sort(report.initialized.begin(), report.initialized.end());
  return report;
}

std::vector<SavedShard> saveModelWeights(Model& model, const std::string& dir, uint64_t maxShardBytes, std::optional<at::ScalarType> dtype,
                                         const io::Metadata& metadata) {
  std::vector<std::vector<std::pair<std::string, at::Tensor>>> groups(1);
  std::vector<uint64_t> sizes(1, 0);
  for (auto& p : model.parameters()) {
    if (!p.persistent) continue;
    at::Tensor t = p.slot->detach();
    const bool convert = dtype && t.is_floating_point() && t.scalar_type() != *dtype;
    uint64_t bytes = static_cast<uint64_t>(t.numel()) * (convert ? c10::elementSize(*dtype) : t.element_size());
    if (maxShardBytes > 0 && !groups.back().empty() && sizes.back() + bytes > maxShardBytes) {
      groups.emplace_back();
      sizes.push_back(0);
    }
    groups.back().emplace_back(p.name, t);
    sizes.back() += bytes;
  }
  std::vector<SavedShard> shards;
  const size_t n = groups.size();
  for (size_t i = 0; i < n; ++i) {
    char name[64];
    if (n == 1) std::snprintf(name, sizeof name, "model.safetensors");
    else std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, n);
    // Converted one shard at a time, so saving a float32 model as bf16 costs one shard of memory.
    if (dtype)
      for (auto& [k, t] : groups[i])
        if (t.is_floating_point()) t = t.to(*dtype);
    io::writeSafetensors(dir + "/" + name, groups[i], metadata);
    for (auto& [k, t] : groups[i]) t = at::Tensor();
    SavedShard shard{name, {}, sizes[i]};
    for (const auto& [k, t] : groups[i]) shard.names.push_back(k);
    shards.push_back(std::move(shard));
  }
  return shards;
}

}  // namespace medtune::models
