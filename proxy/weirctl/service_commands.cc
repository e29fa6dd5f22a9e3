#include "proxy/weirctl/service_commands.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lib/abi_codec.h"
#include "proxy/lb/dump.h"
#include "proxy/sync/conntrack_gc.h"
#include "proxy/weirctl/format.h"

namespace weir::weirctl {
namespace {

// One backend slot of a frontend as the maps have it; a slot or backend may be missing while the
// agent writes (or after a bug).
struct SlotView {
  uint32_t slot = 0;
  std::optional<uint32_t> backend_id;   // nullopt: the slot is missing
  std::optional<weir_backend> backend;  // nullopt: the backend is missing
};

std::vector<SlotView> SlotsOf(const ServiceTables& tables, const weir_service_value& value) {
  std::vector<SlotView> slots;
  for (uint32_t slot = 1; slot <= value.backend_count; ++slot) {
    SlotView view{.slot = slot};
    if (auto it = tables.slots.find({value.service_id, slot}); it != tables.slots.end()) {
      view.backend_id = it->second;
      if (auto backend = tables.backends.find(it->second); backend != tables.backends.end()) {
        view.backend = backend->second;
      }
    }
    slots.push_back(view);
  }
  return slots;
}

bool FrontendMatches(const ServicesMap::Entry& frontend, const std::vector<SlotView>& slots,
                     const ServiceDirectory& names, const FlowFilter& filter) {
  std::vector<FlowSide> sides = {{frontend.key.addr, frontend.key.family, frontend.key.port}};
  for (const SlotView& slot : slots) {
    if (slot.backend) sides.push_back({slot.backend->addr, slot.backend->family, slot.backend->port});
  }
  return filter.MatchesProto(frontend.key.proto) && filter.MatchesSides(sides) &&
         filter.MatchesService(frontend.value.service_id, names);
}

void WriteSlot(Json& json, const SlotView& slot) {
  json.StartObject();
  json.Key("slot");
  json.Uint(slot.slot);
  json.Key("backend_id");
  json.OptionalUint(slot.backend_id);
  json.Key("address");
  json.OptionalString(slot.backend
                          ? std::optional(abi::RenderAddress(slot.backend->addr, slot.backend->family))
                          : std::nullopt);
  json.Key("port");
  json.OptionalUint(slot.backend ? std::optional<uint64_t>(ntohs(slot.backend->port)) : std::nullopt);
  json.Key("protocol");
  json.OptionalString(slot.backend ? std::optional(abi::ProtoName(slot.backend->proto)) : std::nullopt);
  json.Key("flags");
  json.StringArray(slot.backend ? abi::BackendFlagList(slot.backend->flags) : std::vector<std::string>{});
  json.Key("missing");
  json.OptionalString(!slot.backend_id ? std::optional<std::string>("slot")
                      : !slot.backend  ? std::optional<std::string>("backend")
                                       : std::nullopt);
  json.EndObject();
}

}  // namespace

std::string RenderServices(ServiceTables tables, const ServiceDirectory& names, const FlowFilter& filter,
                           OutputFormat format) {
  auto order = [](const ServicesMap::Entry& e) {
    return std::tuple_cat(AddressPortOrder(e.key.addr, e.key.family, e.key.port),
                          std::make_tuple(e.key.proto, e.key.scope));
  };
  std::sort(tables.frontends.begin(), tables.frontends.end(),
            [&](const auto& a, const auto& b) { return order(a) < order(b); });

  Json json;
  if (format == OutputFormat::kJson) {
    json.StartObject();
    json.Key("services");
    json.StartArray();
  }
  // Frontend rows, each followed by its backends in slot order, in the same columns.
  Table table({"FRONTEND / BACKEND", "SCOPE", "SERVICE", "ID", "BACKENDS", "FLAGS"});
  for (const ServicesMap::Entry& frontend : tables.frontends) {
    const weir_service_key& key = frontend.key;
    const weir_service_value& value = frontend.value;
    const std::vector<SlotView> slots = SlotsOf(tables, value);
    if (!FrontendMatches(frontend, slots, names, filter)) continue;
    if (format == OutputFormat::kJson) {
      json.StartObject();
      json.Key("frontend");
      json.String(absl::StrCat(abi::RenderAddressPort(key.addr, key.family, key.port), "/",
                               abi::ProtoName(key.proto)));
      json.Key("address");
      json.String(abi::RenderAddress(key.addr, key.family));
      json.Key("port");
      json.Uint(ntohs(key.port));
      json.Key("protocol");
      json.String(abi::ProtoName(key.proto));
      json.Key("scope");
      json.String(abi::ScopeName(key.scope));
      json.Key("service");
      names.WriteJson(json, value.service_id);
      json.Key("flags");
      json.StringArray(abi::ServiceFlagList(value.flags));
      json.Key("affinity_timeout_seconds");
      json.Uint((value.flags & WEIR_SVC_AFFINITY) ? value.affinity_timeout : 0);
      json.Key("backend_count");
      json.Uint(value.backend_count);
      json.Key("backends");
      json.StartArray();
      for (const SlotView& slot : slots) WriteSlot(json, slot);
      json.EndArray();
      json.EndObject();
      continue;
    }
    const ServiceName* name = names.Find(value.service_id);
    table.Add(
        {absl::StrCat(abi::RenderAddressPort(key.addr, key.family, key.port), "/", abi::ProtoName(key.proto)),
         abi::ScopeName(key.scope), name ? name->ToString() : "-", absl::StrCat("service ", value.service_id),
         absl::StrCat("backends=", value.backend_count), lb::FlagNames(value.flags, value.affinity_timeout)});
    if (value.backend_count == 0) table.Add({"  (no backends: rejected)"});
    for (const SlotView& slot : slots) {
      if (!slot.backend_id) {
        table.Add({absl::StrCat("  (slot ", slot.slot, " missing)")});
      } else if (!slot.backend) {
        table.Add({"  (missing)", "", "", absl::StrCat("backend ", *slot.backend_id)});
      } else {
        const weir_backend& backend = *slot.backend;
        std::string address =
            absl::StrCat("  ", abi::RenderAddressPort(backend.addr, backend.family, backend.port));
        // Backends normally share the frontend's protocol; say so only when they don't.
        if (backend.proto != key.proto) absl::StrAppend(&address, "/", abi::ProtoName(backend.proto));
        table.Add({address, "", "", absl::StrCat("backend ", *slot.backend_id), "",
                   JoinFlags(abi::BackendFlagList(backend.flags))});
      }
    }
  }
  if (format == OutputFormat::kJson) {
    json.EndArray();
    json.EndObject();
    return json.Take();
  }
  return table.Render();
}

std::string RenderAffinity(std::vector<AffinityEntry> entries,
                           const std::map<uint32_t, weir_backend>& backends,
                           const std::map<uint32_t, uint32_t>& timeouts, uint64_t now_ns,
                           const ServiceDirectory& names, const FlowFilter& filter, OutputFormat format) {
  auto order = [](const AffinityEntry& e) {
    return std::tuple_cat(AddressPortOrder(e.key.client, e.key.family, 0), std::make_tuple(e.key.service_id));
  };
  std::sort(entries.begin(), entries.end(),
            [&](const auto& a, const auto& b) { return order(a) < order(b); });

  Json json;
  if (format == OutputFormat::kJson) {
    json.StartObject();
    json.Key("entries");
    json.StartArray();
  }
  Table table({"CLIENT", "SERVICE", "BACKEND", "BACKEND ADDRESS", "AGE", "STATE"});
  table.AlignRight({2, 4});
  for (const AffinityEntry& entry : entries) {
    const weir_backend* backend = nullptr;
    if (auto it = backends.find(entry.value.backend_id); it != backends.end()) backend = &it->second;
    std::vector<FlowSide> sides = {{entry.key.client, entry.key.family, 0}};
    if (backend) sides.push_back({backend->addr, backend->family, backend->port});
    const uint8_t proto = backend ? backend->proto : 0;
    if ((filter.proto && (!backend || !filter.MatchesProto(proto))) || !filter.MatchesSides(sides) ||
        !filter.MatchesService(entry.key.service_id, names)) {
      continue;
    }
    // Entries older than the service's timeout are ignored by the datapath and overwritten on the
    // client's next connection; without a timeout the service is gone or lost its affinity.
    std::optional<std::string> state;
    if (auto it = timeouts.find(entry.key.service_id); it != timeouts.end()) {
      const uint64_t age_ns = now_ns > entry.value.last_used_ns ? now_ns - entry.value.last_used_ns : 0;
      state = age_ns > static_cast<uint64_t>(it->second) * 1'000'000'000ull ? "expired" : "active";
    }
    const uint64_t age = SecondsSince(entry.value.last_used_ns, now_ns);
    if (format == OutputFormat::kJson) {
      json.StartObject();
      json.Key("client");
      json.String(abi::RenderAddress(entry.key.client, entry.key.family));
      json.Key("service");
      names.WriteJson(json, entry.key.service_id);
      json.Key("backend_id");
      json.Uint(entry.value.backend_id);
      json.Key("backend");
      if (backend) {
        WriteAddressPort(json, backend->addr, backend->family, backend->port);
      } else {
        json.Null();
      }
      json.Key("age_seconds");
      json.Uint(age);
      json.Key("state");
      json.OptionalString(state);
      json.EndObject();
      continue;
    }
    table.Add({abi::RenderAddress(entry.key.client, entry.key.family), names.Describe(entry.key.service_id),
               absl::StrCat(entry.value.backend_id),
               backend ? abi::RenderAddressPort(backend->addr, backend->family, backend->port) : "-",
               absl::StrCat(age, "s"), state.value_or("-")});
  }
  if (format == OutputFormat::kJson) {
    json.EndArray();
    json.EndObject();
    return json.Take();
  }
  return table.Render();
}

absl::StatusOr<ServiceTables> ReadServiceTables(const PinLayout& layout) {
  auto services_map = ServicesMap::OpenPinned(layout.services_map());
  if (!services_map.ok()) return services_map.status();
  auto slots_map = SlotsMap::OpenPinned(layout.slots_map());
  if (!slots_map.ok()) return slots_map.status();
  auto backends_map = BackendsMap::OpenPinned(layout.backends_map());
  if (!backends_map.ok()) return backends_map.status();
  auto frontends = services_map->List();
  if (!frontends.ok()) return frontends.status();
  auto slots = slots_map->List();
  if (!slots.ok()) return slots.status();
  auto backends = backends_map->List();
  if (!backends.ok()) return backends.status();
  ServiceTables tables{.frontends = *std::move(frontends)};
  for (const auto& entry : *slots) tables.slots[{entry.key.service_id, entry.key.slot}] = entry.value;
  for (const auto& entry : *backends) tables.backends[entry.key] = entry.value;
  return tables;
}

absl::Status RunServices(const CommandOptions& options) {
  auto tables = ReadServiceTables(options.layout);
  if (!tables.ok()) return tables.status();
  absl::PrintF("%s", RenderServices(*std::move(tables), ServiceDirectory::Load(options.layout),
                                    options.filter, options.format));
  return absl::OkStatus();
}

absl::Status RunAffinity(const CommandOptions& options) {
  auto map = AffinityMap::OpenPinned(options.layout.affinity_map());
  if (!map.ok()) return map.status();
  auto entries = map->List();
  if (!entries.ok()) return entries.status();
  const uint64_t now_ns = sync::MonotonicNowNs();
  // Context only: where each backend is, and each service's affinity timeout.
  ServiceTables tables;
  if (auto read = ReadServiceTables(options.layout); read.ok()) tables = *std::move(read);
  std::map<uint32_t, uint32_t> timeouts;
  for (const auto& frontend : tables.frontends) {
    if (frontend.value.flags & WEIR_SVC_AFFINITY)
      timeouts[frontend.value.service_id] = frontend.value.affinity_timeout;
  }
  absl::PrintF("%s", RenderAffinity(*std::move(entries), tables.backends, timeouts, now_ns,
                                    ServiceDirectory::Load(options.layout), options.filter, options.format));
  return absl::OkStatus();
}

}  // namespace weir::weirctl
