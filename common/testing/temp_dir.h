// TempDir: a fresh directory for one test case (under $TMPDIR, else /tmp),
// removed with everything in it when the object goes. Test code only: a
// failed mkdtemp fails the running Boost.Test case. One object is used by
// one thread.
#pragma once

#include <stdlib.h>

#include <boost/test/unit_test.hpp>
#include <cstddef>
#include <filesystem>
#include <iterator>
#include <string>
#include <system_error>

namespace vnvram::testing {

struct TempDir {
  // `prefix` names the directory (PREFIX-XXXXXX), to tell leftovers apart.
  explicit TempDir(const std::string& prefix = "vnvram-test") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    BOOST_TEST_REQUIRE(::mkdtemp(tmpl.data()) != nullptr, "mkdtemp " << tmpl);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // PATH/name.
  std::string File(const std::string& name) const { return path + "/" + name; }
  // How many entries the directory holds.
  size_t EntryCount() const {
    return static_cast<size_t>(std::distance(std::filesystem::directory_iterator(path),
                                             std::filesystem::directory_iterator()));
  }

  std::string path;
};

}  // namespace vnvram::testing
