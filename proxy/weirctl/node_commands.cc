#include "proxy/weirctl/node_commands.h"

#include <net/if.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "lib/masquerade_maps.h"
#include "lib/netlink.h"
#include "proxy/sync/nonmasq_table.h"

namespace weir::weirctl {

std::string RenderEndpoints(std::vector<Endpoint> endpoints, OutputFormat format) {
  std::sort(endpoints.begin(), endpoints.end(),
            [](const Endpoint& a, const Endpoint& b) { return a.address < b.address; });
  auto kind = [](const Endpoint& ep) { return (ep.flags & WEIR_ENDPOINT_LOCAL_POD) ? "pod" : "host"; };
  if (format == OutputFormat::kJson) {
    Json json;
    json.StartObject();
    json.Key("endpoints");
    json.StartArray();
    for (const Endpoint& ep : endpoints) {
      json.StartObject();
      json.Key("address");
      json.String(ep.address.ToString());
      json.Key("ifindex");
      json.Uint(static_cast<uint64_t>(ep.host_ifindex));
      json.Key("mac");
      json.String(FormatMac(ep.pod_mac));
      json.Key("kind");
      json.String(kind(ep));
      json.EndObject();
    }
    json.EndArray();
    json.EndObject();
    return json.Take();
  }
  Table table({"ADDRESS", "IFINDEX", "MAC", "KIND"});
  for (const Endpoint& ep : endpoints) {
    table.Add({ep.address.ToString(), absl::StrCat(ep.host_ifindex), FormatMac(ep.pod_mac), kind(ep)});
  }
  return table.Render();
}

// The destinations pods reach with their own source, and the uplinks after which the rest leaves
// with the node's address.
std::string RenderMasquerade(std::vector<IpPrefix> cidrs, std::vector<Uplink> uplinks, OutputFormat format) {
  std::sort(cidrs.begin(), cidrs.end());
  std::sort(uplinks.begin(), uplinks.end(),
            [](const Uplink& a, const Uplink& b) { return a.ifindex < b.ifindex; });
  if (format == OutputFormat::kJson) {
    Json json;
    json.StartObject();
    json.Key("non_masquerade_cidrs");
    json.StartArray();
    for (const IpPrefix& cidr : cidrs) json.String(cidr.ToString());
    json.EndArray();
    json.Key("uplinks");
    json.StartArray();
    for (const Uplink& uplink : uplinks) {
      json.StartObject();
      json.Key("ifindex");
      json.Uint(uplink.ifindex);
      json.Key("name");
      json.OptionalString(uplink.name.empty() ? std::nullopt : std::optional(uplink.name));
      json.EndObject();
    }
    json.EndArray();
    json.EndObject();
    return json.Take();
  }
  Table table({"IN-CLUSTER CIDR (not masqueraded)"});
  for (const IpPrefix& cidr : cidrs) table.Add({cidr.ToString()});
  std::vector<std::string> names;
  for (const Uplink& uplink : uplinks) {
    names.push_back(uplink.name.empty() ? absl::StrCat(uplink.ifindex)
                                        : absl::StrCat(uplink.name, " (", uplink.ifindex, ")"));
  }
  std::sort(names.begin(), names.end());
  return absl::StrCat(table.Render(), "uplinks: ", names.empty() ? "none" : absl::StrJoin(names, ", "), "\n");
}

std::string RenderMetrics(const std::vector<MetricTotal>& totals, OutputFormat format) {
  if (format == OutputFormat::kJson) {
    Json json;
    json.StartObject();
    json.Key("counters");
    json.StartArray();
    for (const MetricTotal& total : totals) {
      json.StartObject();
      json.Key("name");
      json.String(total.name);
      json.Key("drop");
      json.Bool(total.drop);
      json.Key("packets");
      json.Uint(total.packets);
      json.Key("bytes");
      json.Uint(total.bytes);
      json.EndObject();
    }
    json.EndArray();
    json.EndObject();
    return json.Take();
  }
  Table table({"COUNTER", "PACKETS", "BYTES"});
  table.AlignRight({1, 2});
  for (const MetricTotal& total : totals) {
    table.Add({total.name, absl::StrCat(total.packets), absl::StrCat(total.bytes)});
  }
  return table.Render();
}

absl::Status RunEndpoints(const CommandOptions& options) {
  auto map = EndpointMap::OpenPinned(options.layout.endpoints_map());
  if (!map.ok()) return map.status();
  auto endpoints = map->List();
  if (!endpoints.ok()) return endpoints.status();
  absl::PrintF("%s", RenderEndpoints(*std::move(endpoints), options.format));
  return absl::OkStatus();
}

absl::Status RunMasquerade(const CommandOptions& options) {
  auto table = sync::BpfNonMasqTable::OpenPinned(options.layout);
  if (!table.ok()) return table.status();
  auto cidrs = (*table)->List();
  if (!cidrs.ok()) return cidrs.status();

  auto map = UplinksMap::OpenPinned(options.layout.uplinks_map());
  if (!map.ok()) return map.status();
  auto entries = map->List();
  if (!entries.ok()) return entries.status();
  std::vector<Uplink> uplinks;
  for (const UplinksMap::Entry& entry : *entries) {
    char name[IF_NAMESIZE] = {};
    uplinks.push_back({entry.key, if_indextoname(entry.key, name) ? name : ""});
  }
  std::vector<IpPrefix> prefixes;
  for (const auto& [cidr, kind] : *cidrs) prefixes.push_back(cidr);
  absl::PrintF("%s", RenderMasquerade(std::move(prefixes), std::move(uplinks), options.format));
  return absl::OkStatus();
}

absl::Status RunMetrics(const CommandOptions& options) {
  auto totals = ReadMetrics(options.layout.metrics_map());
  if (!totals.ok()) return totals.status();
  absl::PrintF("%s", RenderMetrics(*totals, options.format));
  return absl::OkStatus();
}

}  // namespace weir::weirctl
