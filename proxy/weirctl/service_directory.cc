#include "proxy/weirctl/service_directory.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace weir::weirctl {

ServiceDirectory ServiceDirectory::Load(const PinLayout& layout) {
  auto map = ServiceNamesMap::OpenPinned(layout.service_names_map());
  if (!map.ok()) return ServiceDirectory();
  auto names = map->List();
  if (!names.ok()) return ServiceDirectory();
  return ServiceDirectory(*std::move(names));
}

const ServiceName* ServiceDirectory::Find(uint32_t service_id) const {
  auto it = names_.find(service_id);
  return it == names_.end() ? nullptr : &it->second;
}

std::string ServiceDirectory::Describe(uint32_t service_id) const {
  if (service_id == 0) return "-";
  const ServiceName* name = Find(service_id);
  return name ? name->ToString() : absl::StrCat(service_id);
}

void ServiceDirectory::WriteJson(Json& json, uint32_t service_id) const {
  if (service_id == 0) {
    json.Null();
    return;
  }
  const ServiceName* name = Find(service_id);
  json.StartObject();
  json.Key("id");
  json.Uint(service_id);
  json.Key("namespace");
  json.OptionalString(name ? std::optional(name->namespace_name) : std::nullopt);
  json.Key("name");
  json.OptionalString(name ? std::optional(name->name) : std::nullopt);
  json.Key("port_name");
  json.OptionalString(name ? std::optional(name->port_name) : std::nullopt);
  json.EndObject();
}

size_t ServiceDirectory::service_count() const {
  std::set<std::pair<std::string, std::string>> services;
  for (const auto& [id, name] : names_) services.emplace(name.namespace_name, name.name);
  return services.size();
}

}  // namespace weir::weirctl
