#include "proxy/weirctl/output.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace weir::weirctl {

absl::StatusOr<OutputFormat> ParseOutputFormat(const std::string& text) {
  if (text == "table") return OutputFormat::kTable;
  if (text == "json") return OutputFormat::kJson;
  return absl::InvalidArgumentError(absl::StrCat("-o ", text, ": table or json"));
}

std::string Table::Render() const {
  std::vector<size_t> widths(rows_.front().size(), 0);
  for (const auto& row : rows_) {
    // A one-cell row is a note (e.g. "(no backends: rejected)"): it must not widen the column.
    if (row.size() == 1 && widths.size() > 1) continue;
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string text;
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      const std::string padding(widths[i] > row[i].size() ? widths[i] - row[i].size() : 0, ' ');
      if (i > 0) line += "  ";
      const bool right = right_aligned_.contains(i);
      absl::StrAppend(&line, right ? padding : "", row[i], right ? "" : padding);
    }
    line.erase(line.find_last_not_of(' ') + 1);
    absl::StrAppend(&text, line, "\n");
  }
  return text;
}

void Json::StringArray(const std::vector<std::string>& values) {
  StartArray();
  for (const std::string& value : values) String(value);
  EndArray();
}

std::string Json::Take() {
  std::string text(buffer_.GetString(), buffer_.GetSize());
  text += "\n";
  buffer_.Clear();
  writer_.Reset(buffer_);
  return text;
}

}  // namespace weir::weirctl
