// How weirctl prints: aligned tables for people, JSON for programs. Every command builds its
// output as a string (so tests can read it) and main prints it.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace weir::weirctl {

enum class OutputFormat { kTable, kJson };

// "table" or "json".
absl::StatusOr<OutputFormat> ParseOutputFormat(const std::string& text);

// Rows of cells printed with every column as wide as its widest cell, two spaces apart. Lines carry
// no trailing blanks.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  // Numbers read better right-aligned.
  Table& AlignRight(std::initializer_list<size_t> columns) {
    right_aligned_.insert(columns.begin(), columns.end());
    return *this;
  }
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
  std::set<size_t> right_aligned_;
};

// One JSON document written as it is built. Compact: one line, so `events -o json` is one object
// per line and every other command one line that jq or json.loads reads.
class Json {
 public:
  Json() : writer_(buffer_) {}
  rapidjson::Writer<rapidjson::StringBuffer>& w() { return writer_; }

  void Key(const char* key) { writer_.Key(key); }
  void String(const std::string& value) {
    writer_.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
  }
  void Uint(uint64_t value) { writer_.Uint64(value); }
  void Int(int64_t value) { writer_.Int64(value); }
  void Bool(bool value) { writer_.Bool(value); }
  void Double(double value) { writer_.Double(value); }
  void Null() { writer_.Null(); }
  void OptionalString(const std::optional<std::string>& value) { value ? String(*value) : Null(); }
  void OptionalUint(const std::optional<uint64_t>& value) { value ? Uint(*value) : Null(); }
  void StringArray(const std::vector<std::string>& values);
  void StartObject() { writer_.StartObject(); }
  void EndObject() { writer_.EndObject(); }
  void StartArray() { writer_.StartArray(); }
  void EndArray() { writer_.EndArray(); }

  // The document, newline-terminated. Call once the outermost value is complete.
  std::string Take();

 private:
  rapidjson::StringBuffer buffer_;
  rapidjson::Writer<rapidjson::StringBuffer> writer_;
};

}  // namespace weir::weirctl
