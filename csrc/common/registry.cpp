#include "common/registry.h"

#include <algorithm>
#include <string>
#include <vector>

namespace medtune {

namespace {
struct Entry {
  std::string name;
  RegisterFn fn;
};
std::vector<Entry>& entries() {
  static std::vector<Entry> list;  // function-local: safe from static initialisation order
  return list;
}
}  // namespace

Registration::Registration(const char* name, RegisterFn fn) { entries().push_back({name, fn}); }

void registerAll(Napi::Env env, Napi::Object exports) {
  auto list = entries();
  // Link order decides construction order; sort so the export table is deterministic.
  std::sort(list.begin(), list.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  for (const auto& e : list) e.fn(env, exports);
}

}  // namespace medtune
