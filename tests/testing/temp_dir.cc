#include "testing/temp_dir.h"

#include <stdlib.h>

#include <cstdio>
#include <filesystem>

namespace a2amesh::testing {

TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string pattern =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/a2amesh-test-XXXXXX";
  char* made = mkdtemp(pattern.data());
  if (made == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace a2amesh::testing
