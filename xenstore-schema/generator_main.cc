// vnvram-schema-gen: reads xenstore-schema/vnvram-schema.json and writes the
// generated C++ header, the source embedding the JSON, and the markdown
// document. Run by CMake at build time; a file is rewritten only when its
// content changes, so dependents do not rebuild needlessly.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "xenstore-schema/emit_cxx.h"
#include "xenstore-schema/emit_markdown.h"
#include "xenstore-schema/model.h"

namespace {

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

bool WriteIfChanged(const std::string& path, const std::string& text) {
  std::string old;
  if (ReadFile(path, &old) && old == text) return true;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return false;
    out << text;
    if (!out.flush()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: vnvram-schema-gen SCHEMA.json OUT_HEADER.h OUT_SOURCE.cc OUT_DOC.md\n";
    return 2;
  }
  std::string json;
  if (!ReadFile(argv[1], &json)) {
    std::cerr << "vnvram-schema-gen: cannot read " << argv[1] << "\n";
    return 1;
  }
  auto schema = vnvram::schema::ParseSchema(json);
  if (!schema.ok()) {
    std::cerr << "vnvram-schema-gen: " << argv[1] << ": " << schema.status().ToString() << "\n";
    return 1;
  }
  auto source = vnvram::schema::EmitEmbeddedJson(json);
  if (!source.ok()) {
    std::cerr << "vnvram-schema-gen: " << source.status().ToString() << "\n";
    return 1;
  }
  const std::pair<const char*, std::string> outputs[] = {
      {argv[2], vnvram::schema::EmitCxxHeader(*schema)},
      {argv[3], *source},
      {argv[4], vnvram::schema::EmitMarkdown(*schema)},
  };
  for (const auto& [path, text] : outputs) {
    if (!WriteIfChanged(path, text)) {
      std::cerr << "vnvram-schema-gen: cannot write " << path << "\n";
      return 1;
    }
  }
  return 0;
}
