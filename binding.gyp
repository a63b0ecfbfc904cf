# node-gyp mirror of CMakeLists.txt (the real build): same sources, same libtorch, for tools
# that expect binding.gyp. The lists come from scripts/setup/gyp-vars.mjs.
{
  "targets": [
    {
      "target_name": "medtune",
      "sources": ["<!@(node scripts/setup/gyp-vars.mjs sources)"],
      "include_dirs": ["<!@(node scripts/setup/gyp-vars.mjs includes)"],
      "libraries": ["<!@(node scripts/setup/gyp-vars.mjs libraries)"],
      "defines": ["<!@(node scripts/setup/gyp-vars.mjs defines)"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++20", "-fexceptions", "-frtti", "-Wno-unused-parameter", "-Wno-sign-compare", "-ffp-contract=off"],
      "cflags!": ["-fno-exceptions"]
    }
  ]
}
