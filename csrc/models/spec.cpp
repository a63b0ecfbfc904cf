#include "models/spec.h"

#include <cmath>

#include "common/errors.h"

namespace medtune::models {

Spec Spec::fromJs(const Napi::Object& obj, const std::string& path) {
  Spec spec;
  spec.path_ = path;
  Napi::Array keys = obj.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
    Napi::Value v = obj.Get(key);
    Entry e;
    if (v.IsUndefined() || v.IsNull()) continue;
    if (v.IsNumber()) {
      e.type = Entry::Type::Number;
      e.number = v.As<Napi::Number>().DoubleValue();
    } else if (v.IsBoolean()) {
      e.type = Entry::Type::Bool;
      e.boolean = v.As<Napi::Boolean>().Value();
    } else if (v.IsString()) {
      e.type = Entry::Type::String;
      e.string = v.As<Napi::String>().Utf8Value();
    } else if (v.IsArray()) {
      e.type = Entry::Type::NumberList;
      auto arr = v.As<Napi::Array>();
      for (uint32_t k = 0; k < arr.Length(); ++k) {
        Napi::Value item = arr.Get(k);
        if (!item.IsNumber()) throw ArgumentError(path + "." + key + "[" + std::to_string(k) + "] must be a number");
        e.numbers.push_back(item.As<Napi::Number>().DoubleValue());
      }
    } else if (v.IsObject()) {
      e.type = Entry::Type::Object;
      e.object = std::make_shared<Spec>(fromJs(v.As<Napi::Object>(), path + "." + key));
    } else {
      throw ArgumentError(path + "." + key + " has an unsupported type");
    }
    spec.entries_[key] = std::move(e);
  }
  return spec;
}

void Spec::fail(const std::string& key, const std::string& what) const { throw ArgumentError(path_ + "." + key + " " + what); }

bool Spec::has(const std::string& key) const { return entries_.count(key) != 0; }

const Spec::Entry& Spec::get(const std::string& key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) fail(key, "is missing");
  return it->second;
}

int64_t Spec::integer(const std::string& key) const {
  const Entry& e = get(key);
  if (e.type != Entry::Type::Number || std::floor(e.number) != e.number) fail(key, "must be an integer");
  return static_cast<int64_t>(e.number);
}

int64_t Spec::integer(const std::string& key, int64_t fallback) const { return has(key) ? integer(key) : fallback; }

double Spec::number(const std::string& key) const {
  const Entry& e = get(key);
  if (e.type != Entry::Type::Number) fail(key, "must be a number");
  return e.number;
}

double Spec::number(const std::string& key, double fallback) const { return has(key) ? number(key) : fallback; }

bool Spec::boolean(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  const Entry& e = get(key);
  if (e.type != Entry::Type::Bool) fail(key, "must be a boolean");
  return e.boolean;
}

std::string Spec::string(const std::string& key) const {
  const Entry& e = get(key);
  if (e.type != Entry::Type::String) fail(key, "must be a string");
  return e.string;
}

std::string Spec::string(const std::string& key, const std::string& fallback) const { return has(key) ? string(key) : fallback; }

std::vector<int64_t> Spec::integers(const std::string& key) const {
  const Entry& e = get(key);
  if (e.type == Entry::Type::Number) return {integer(key)};
  if (e.type != Entry::Type::NumberList) fail(key, "must be an array of integers");
  std::vector<int64_t> out;
  for (double d : e.numbers) out.push_back(static_cast<int64_t>(d));
  return out;
}

const Spec& Spec::child(const std::string& key) const {
  const Entry& e = get(key);
  if (e.type != Entry::Type::Object) fail(key, "must be an object");
  return *e.object;
}

}  // namespace medtune::models
