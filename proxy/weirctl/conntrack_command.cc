#include "proxy/weirctl/conntrack_command.h"

#include <algorithm>
#include <cstring>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bpf/abi/conntrack.h"
#include "lib/abi_codec.h"
#include "proxy/weirctl/format.h"

namespace weir::weirctl {
namespace {

// What the entry rewrites. Forward (client -> frontend): the destination becomes the backend and,
// with SNAT, the source the node's address. Reply (backend -> client): the source becomes the
// frontend and, with SNAT, the destination the original client.
std::string DescribeNat(const weir_ct_key& key, const weir_ct_value& value) {
  const bool forward = value.kind == WEIR_CT_FORWARD;
  std::string text = absl::StrCat(forward ? "dst=" : "src=",
                                  abi::RenderAddressPort(value.nat_addr, key.family, value.nat_port));
  if (value.flags & WEIR_CT_SNAT) {
    absl::StrAppend(&text, forward ? " src=" : " dst=",
                    abi::RenderAddressPort(value.snat_addr, key.family, value.snat_port));
  }
  return text;
}

bool EntryMatches(const sync::ConntrackEntry& entry, const ServiceDirectory& names,
                  const FlowFilter& filter) {
  const weir_ct_key& key = entry.key;
  const weir_ct_value& value = entry.value;
  std::vector<FlowSide> sides = {{key.saddr, key.family, key.sport},
                                 {key.daddr, key.family, key.dport},
                                 {value.nat_addr, key.family, value.nat_port}};
  if (value.flags & WEIR_CT_SNAT) sides.push_back({value.snat_addr, key.family, value.snat_port});
  return filter.MatchesProto(key.proto) && filter.MatchesSides(sides) &&
         filter.MatchesService(value.service_id, names);
}

}  // namespace

std::string RenderConntrack(std::vector<sync::ConntrackEntry> entries, uint32_t capacity, uint64_t now_ns,
                            const ServiceDirectory& names, const FlowFilter& filter, OutputFormat format) {
  auto order = [](const sync::ConntrackEntry& e) {
    return std::tuple_cat(std::make_tuple(e.key.proto),
                          AddressPortOrder(e.key.saddr, e.key.family, e.key.sport),
                          AddressPortOrder(e.key.daddr, e.key.family, e.key.dport));
  };
  std::sort(entries.begin(), entries.end(),
            [&](const auto& a, const auto& b) { return order(a) < order(b); });
  // Equal keys cannot occur in a map, but a walk racing the datapath can list one twice.
  entries.erase(std::unique(entries.begin(), entries.end(),
                            [](const auto& a, const auto& b) {
                              return std::memcmp(&a.key, &b.key, sizeof(a.key)) == 0;
                            }),
                entries.end());
  const size_t total = entries.size();
  std::erase_if(entries, [&](const sync::ConntrackEntry& e) { return !EntryMatches(e, names, filter); });

  if (format == OutputFormat::kJson) {
    Json json;
    json.StartObject();
    json.Key("entries");
    json.StartArray();
    for (const sync::ConntrackEntry& entry : entries) {
      const weir_ct_key& key = entry.key;
      const weir_ct_value& value = entry.value;
      json.StartObject();
      json.Key("protocol");
      json.String(abi::ProtoName(key.proto));
      json.Key("family");
      json.String(abi::FamilyName(key.family));
      json.Key("source");
      WriteAddressPort(json, key.saddr, key.family, key.sport);
      json.Key("destination");
      WriteAddressPort(json, key.daddr, key.family, key.dport);
      json.Key("kind");
      json.String(abi::ConntrackKindName(value.kind));
      json.Key("nat");
      WriteAddressPort(json, value.nat_addr, key.family, value.nat_port);
      json.Key("snat");
      if (value.flags & WEIR_CT_SNAT) {
        WriteAddressPort(json, value.snat_addr, key.family, value.snat_port);
      } else {
        json.Null();
      }
      json.Key("age_seconds");
      json.Uint(SecondsSince(value.last_seen_ns, now_ns));
      json.Key("backend_id");
      json.Uint(value.backend_id);
      json.Key("service");
      names.WriteJson(json, value.service_id);
      json.Key("flags");
      json.StringArray(abi::ConntrackFlagList(value.flags));
      json.EndObject();
    }
    json.EndArray();
    json.Key("total");
    json.Uint(total);
    json.Key("capacity");
    json.Uint(capacity);
    json.EndObject();
    return json.Take();
  }

  Table table(
      {"PROTO", "SOURCE", "", "DESTINATION", "", "NAT", "KIND", "AGE", "BACKEND", "SERVICE", "FLAGS"});
  table.AlignRight({7, 8});
  for (const sync::ConntrackEntry& entry : entries) {
    const weir_ct_key& key = entry.key;
    const weir_ct_value& value = entry.value;
    table.Add({abi::ProtoName(key.proto), abi::RenderAddressPort(key.saddr, key.family, key.sport), "->",
               abi::RenderAddressPort(key.daddr, key.family, key.dport), "=>", DescribeNat(key, value),
               abi::ConntrackKindName(value.kind),
               absl::StrCat(SecondsSince(value.last_seen_ns, now_ns), "s"), absl::StrCat(value.backend_id),
               names.Describe(value.service_id), JoinFlags(abi::ConntrackFlagList(value.flags))});
  }
  const double fill = capacity == 0 ? 0 : 100.0 * static_cast<double>(total) / capacity;
  std::string summary = absl::StrFormat("%d entries, capacity %d (%.1f%% full)\n", total, capacity, fill);
  if (!filter.empty()) summary = absl::StrCat(entries.size(), " shown of ", summary);
  return absl::StrCat(table.Render(), summary);
}

absl::Status RunConntrack(const CommandOptions& options) {
  auto table = sync::BpfConntrackTable::OpenPinned(options.layout);
  if (!table.ok()) return table.status();
  auto entries = (*table)->List();
  if (!entries.ok()) return entries.status();
  absl::PrintF("%s", RenderConntrack(*std::move(entries), (*table)->capacity(), sync::MonotonicNowNs(),
                                     ServiceDirectory::Load(options.layout), options.filter, options.format));
  return absl::OkStatus();
}

}  // namespace weir::weirctl
