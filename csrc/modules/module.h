// The base of medtune's native model modules. A module owns parameters (at::Tensor members it
// registers by name) and child modules (registered under a path that may contain dots or be
// empty, so one C++ structure can carry the parameter names of several checkpoint layouts).
// Every module knows its kind (what masks select: norm, attention projection, MLP projection,
// embedding, head, projector ...) and the part of the model it belongs to (vision, language,
// projector, head). Parameter names are the checkpoint's own names.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace medtune::modules {

enum class Kind { Norm, Attention, Mlp, Embedding, Head, Projector, PatchEmbedding, PositionEmbedding, Adapter, Other };
// Language: the text encoder or the decoder-only LM; Decoder: the text decoder of an
// encoder-decoder model (BLIP's text_decoder, cross-attending the encoder's states).
enum class Part { Vision, Language, Projector, Head, Decoder };

const char* kindName(Kind kind);  // 'norm', 'attention', 'mlp', 'embedding', 'head', 'projector', ...
const char* partName(Part part);  // 'vision', 'language', 'projector', 'head', 'decoder'

class Module;

// One parameter as seen from outside: its checkpoint name, the tensor itself (same storage and
// autograd identity as the one the forward pass uses) and what it is.
struct ParamRef {
  std::string name;
  at::Tensor* slot;  // the module's member: replacing *slot replaces the parameter
  Kind kind;
  Part part;
  Module* owner;
  bool persistent;  // part of the base checkpoint (adapter parameters are not)
};

class Module {
 public:
  Module(std::string typeName, Kind kind, Part part) : typeName_(std::move(typeName)), kind_(kind), part_(part) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  const std::string& typeName() const { return typeName_; }  // 'Linear', 'LayerNorm', 'LlamaDecoderLayer' ...
  Kind kind() const { return kind_; }
  Part part() const { return part_; }

  // Parameters (own, then children's, in registration order) with full names under `prefix`.
  void collectParameters(const std::string& prefix, std::vector<ParamRef>& out);
  std::vector<ParamRef> parameters();
  // Every module with its full path (the root's path is the empty string).
  void visitModules(const std::string& prefix, const std::function<void(const std::string&, Module&)>& fn);
  // The module at `path` (as visitModules names it), or nullptr.
  Module* findModule(const std::string& path);

  void setTraining(bool training);
  bool training() const { return training_; }
  // Activation checkpointing (runLayer): only layers that declare themselves checkpointable (their
  // body depends on the layer input, their own parameters and tensors that need no gradient)
  // take the flag; setCheckpointing returns how many layers of this subtree did.
  virtual bool checkpointable() const { return false; }
  bool checkpointed() const { return checkpointed_; }
  int64_t setCheckpointing(bool on);
  // The checkpoint loader's hook for a tensor whose shape differs from this module's parameter
  // *slot: return it adapted to the parameter's shape and say what was done in `note` (position
  // embeddings interpolated to another image size), or nullopt to refuse (a shape error).
  virtual std::optional<at::Tensor> adaptCheckpointTensor(const at::Tensor* slot, const at::Tensor& source, std::string& note) const {
    return std::nullopt;
  }
  // Random initialisation for createModel (HF's _init_weights conventions: normal(0, std) for
  // projections and embeddings, ones/zeros for norms), this module and its children.
  void initializeAll(double std, at::Generator& generator);

  static std::string join(const std::string& prefix, const std::string& name);

  // Registers a child module under `path` (may contain dots, or be empty to merge its names
  // into this module's). Public so that composite models can assemble parts built elsewhere.
  template <class M>
  std::shared_ptr<M> addChild(const std::string& path, std::shared_ptr<M> child) {
    children_.emplace_back(path, child);
    return child;
  }

 protected:
  // Registers a member tensor as a parameter named `name` (relative to this module). `kind`
  // overrides the module's kind for this parameter (a cls token inside an embeddings module).
  void addParameter(const std::string& name, at::Tensor* slot, std::optional<Kind> kind = std::nullopt);
  // Parameters that are not members (adapters attached to a Linear).
  virtual void collectExtraParameters(const std::string& prefix, std::vector<ParamRef>& out) {}
  virtual void onTrainingChanged() {}
  virtual void initialize(double std, at::Generator& generator) {}

  bool training_ = false;

 private:
  bool checkpointed_ = false;
  struct Slot {
    std::string name;
    at::Tensor* tensor;
    std::optional<Kind> kind;
  };
  std::string typeName_;
  Kind kind_;
  Part part_;
  std::vector<Slot> params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

// Runs one transformer layer (a vision block or a decoder layer). Every family's layer loop goes
// through this one function: it records which layer runs (for out-of-memory messages) and, for a
// checkpointed layer under grad mode, runs it through activation checkpointing
// (modules/activation_checkpoint.h), which keeps `body` until the backward pass: capture by value.
at::Tensor runLayer(Module& layer, const at::Tensor& hidden, const std::function<at::Tensor(const at::Tensor&)>& body);

// How modules allocate their parameters: uninitialised storage of this dtype on this device
// (loading fills it from the checkpoint; createModel initialises it).
struct Init {
  at::TensorOptions options;
  at::Tensor empty(at::IntArrayRef shape) const { return at::empty(shape, options); }
};

}  // namespace medtune::modules
