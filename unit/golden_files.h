// The plumbing the golden tests share: a directory of cases (each a folder with input.yaml), files
// read whole, and expected files compared or, with WEIR_UPDATE_GOLDEN=1, rewritten.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace weir::golden {

// The folders of `root` that hold an input.yaml, sorted.
inline std::vector<std::string> CaseNames(const std::filesystem::path& root) {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(root, error)) {
    if (std::filesystem::exists(entry.path() / "input.yaml"))
      names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline bool Updating() {
  const char* update = std::getenv("WEIR_UPDATE_GOLDEN");
  return update != nullptr && std::string(update) == "1";
}

// Compares `actual` with the file, or rewrites the file when Updating().
inline void ExpectFile(const std::filesystem::path& path, const std::string& actual) {
  if (Updating()) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << actual;
    return;
  }
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " is missing; WEIR_UPDATE_GOLDEN=1 writes it";
  EXPECT_EQ(actual, ReadFile(path)) << path;
}

}  // namespace weir::golden
