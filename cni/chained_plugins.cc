#include "cni/chained_plugins.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "cni/error.h"
#include "rapidjson/document.h"

namespace weir::cni {
namespace {

bool IsConfigFile(const std::filesystem::path& path) {
  const std::string extension = path.extension();
  return extension == ".conflist" || extension == ".conf" || extension == ".json";
}

std::string TypeOf(const rapidjson::Value& plugin) {
  if (!plugin.IsObject()) return "";
  auto type = plugin.FindMember("type");
  return type != plugin.MemberEnd() && type->value.IsString() ? type->value.GetString() : "";
}

// True when `list` is the list of `network` and has a "bandwidth" entry after a `weir_type` one.
bool ChainsBandwidthAfterWeir(const rapidjson::Document& list, absl::string_view network,
                              absl::string_view weir_type) {
  if (!list.IsObject()) return false;
  auto name = list.FindMember("name");
  auto plugins = list.FindMember("plugins");
  if (name == list.MemberEnd() || !name->value.IsString() || name->value.GetString() != network) return false;
  if (plugins == list.MemberEnd() || !plugins->value.IsArray()) return false;
  bool after_weir = false;
  for (const rapidjson::Value& plugin : plugins->value.GetArray()) {
    const std::string type = TypeOf(plugin);
    if (after_weir && type == "bandwidth") return true;
    after_weir |= type == weir_type;
  }
  return false;
}

}  // namespace

absl::Status RefuseChainedBandwidth(const std::string& conf_dir, absl::string_view network,
                                    absl::string_view weir_type) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(conf_dir, ec)) {
    if (!entry.is_regular_file(ec) || !IsConfigFile(entry.path())) continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    rapidjson::Document list;
    if (!in || list.Parse(text.str().c_str()).HasParseError()) continue;
    if (!ChainsBandwidthAfterWeir(list, network, weir_type)) continue;
    return CniError(
        CniCode::kInvalidNetworkConfig,
        absl::StrCat(entry.path().string(), " chains the \"bandwidth\" plugin after weir, where it ",
                     "would limit nothing: weir enforces pod bandwidth limits itself. Remove the ",
                     "\"bandwidth\" entry and give weir's entry \"capabilities\": {\"bandwidth\": true}"));
  }
  return absl::OkStatus();
}

}  // namespace weir::cni
