// A small strict JSON reader and writer for the file headers medtune reads natively
// (safetensors headers, checkpoint index files). Errors carry the byte offset of the problem so
// that a corrupt header is reported as "bad JSON at byte N: ...".
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace medtune::json {

class ParseError : public std::runtime_error {
 public:
  ParseError(size_t offset, const std::string& what)
      : std::runtime_error("at byte " + std::to_string(offset) + ": " + what), offset_(offset) {}
  size_t offset() const { return offset_; }

 private:
  size_t offset_;
};

class Value {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };

  Value() = default;
  static Value null() { return Value(); }
  static Value boolean(bool b);
  static Value number(double d);
  // An integer written without a fraction or exponent keeps its exact 64-bit value.
  static Value integer(int64_t i);
  static Value string(std::string s);
  static Value array(std::vector<Value> items = {});
  static Value object(std::vector<std::pair<std::string, Value>> members = {});

  Type type() const { return type_; }
  bool isNull() const { return type_ == Type::Null; }
  bool isBool() const { return type_ == Type::Bool; }
  bool isNumber() const { return type_ == Type::Number; }
  bool isString() const { return type_ == Type::String; }
  bool isArray() const { return type_ == Type::Array; }
  bool isObject() const { return type_ == Type::Object; }
  // A number written as an integer literal that fits int64.
  bool isInteger() const { return type_ == Type::Number && exactInt_; }

  bool asBool() const { return bool_; }
  double asNumber() const { return number_; }
  int64_t asInteger() const { return int_; }
  const std::string& asString() const { return string_; }
  const std::vector<Value>& items() const { return items_; }
  const std::vector<std::pair<std::string, Value>>& members() const { return members_; }

  // Object lookup; nullptr when absent (or when this is not an object).
  const Value* find(std::string_view key) const;
  void set(std::string key, Value v);  // appends (objects keep insertion order)
  void push(Value v) { items_.push_back(std::move(v)); }

  std::string dump() const;  // compact, keys in insertion order

  static const char* typeName(Type t);

 private:
  Type type_ = Type::Null;
  bool bool_ = false;
  bool exactInt_ = false;
  double number_ = 0;
  int64_t int_ = 0;
  std::string string_;
  std::vector<Value> items_;
  std::vector<std::pair<std::string, Value>> members_;
};

// Parses exactly one JSON value (surrounding whitespace allowed). Duplicate object keys are an
// error: a header that names a tensor twice is ambiguous.
Value parse(std::string_view text);

}  // namespace medtune::json
