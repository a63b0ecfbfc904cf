// Reading a model spec: the typed options lib/models builds from config.json (camelCase fields),
// handed to the native constructors as a plain JavaScript object. The spec is read on the main
// thread into plain C++ values (Spec), so construction can run on the compute queue.
#pragma once
#include <napi.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace medtune::models {

// A JS object captured as plain values: numbers, booleans, strings, nested specs and lists.
class Spec {
 public:
  static Spec fromJs(const Napi::Object& obj, const std::string& path = "spec");

  bool has(const std::string& key) const;
  int64_t integer(const std::string& key) const;
  int64_t integer(const std::string& key, int64_t fallback) const;
  double number(const std::string& key) const;
  double number(const std::string& key, double fallback) const;
  bool boolean(const std::string& key, bool fallback) const;
  std::string string(const std::string& key) const;
  std::string string(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> integers(const std::string& key) const;
  const Spec& child(const std::string& key) const;
  const std::string& path() const { return path_; }

 private:
  struct Entry {
    enum class Type { Number, Bool, String, Object, NumberList } type;
    double number = 0;
    bool boolean = false;
    std::string string;
    std::shared_ptr<Spec> object;
    std::vector<double> numbers;
  };
  const Entry& get(const std::string& key) const;
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;

  std::string path_;
  std::map<std::string, Entry> entries_;
};

}  // namespace medtune::models
