// weirctl: reads weir's pinned maps and prints them as aligned tables, sorted so that two runs over
// the same state print the same text.
#include <arpa/inet.h>
#include <net/if.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <thread>
#include <cstdio>
#include <cstring>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bpf/abi/conntrack.h"
#include "bpf/abi/service.h"
#include "lib/endpoint_map.h"
#include "bpf/abi/events.h"
#include "lib/metrics_map.h"
#include "lib/pin_layout.h"
#include "lib/service_maps.h"
#include "lib/unique_fd.h"
#include "proxy/lb/dump.h"
#include "proxy/sync/conntrack_gc.h"
#include "proxy/sync/nonmasq_table.h"

ABSL_FLAG(int64_t, count, 0, "events: stop after this many records (0: no limit)");
ABSL_FLAG(int, timeout_s, 0, "events: stop after this many seconds (0: no limit)");
ABSL_FLAG(std::string, bpf_root, "/sys/fs/bpf/weir", "bpffs directory where weir-agent pinned the datapath");

namespace {

constexpr char kUsage[] =
    "weirctl [--bpf_root DIR] endpoints|services|conntrack|affinity|masquerade|metrics|events [--count N] "
    "[--timeout_s S]";

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

  void Print() const {
    std::vector<size_t> widths(rows_.front().size(), 0);
    for (const auto& row : rows_) {
      // A one-cell row is a note (e.g. "(no backends: rejected)"): it must not widen the column.
      if (row.size() == 1 && widths.size() > 1) continue;
      if (widths.size() < row.size()) widths.resize(row.size(), 0);
      for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
    }
    for (const auto& row : rows_) {
      std::string line;
      for (size_t i = 0; i < row.size(); ++i) {
        const std::string padding(widths[i] > row[i].size() ? widths[i] - row[i].size() : 0, ' ');
        if (i > 0) line += "  ";
        absl::StrAppend(&line, right_aligned_.contains(i) ? padding : "", row[i],
                        right_aligned_.contains(i) ? "" : padding);
      }
      line.erase(line.find_last_not_of(' ') + 1);
      absl::PrintF("%s\n", line);
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
  std::set<size_t> right_aligned_;
};

int Fail(const absl::Status& status) {
  absl::FPrintF(stderr, "weirctl: %s\n", status.ToString());
  return 1;
}

// --- formatting of ABI values ---

std::optional<weir::IpAddress> AddressOf(const weir_addr& addr, uint8_t family) {
  if (family == WEIR_FAMILY_IPV4) return weir::IpAddress::FromBytes(weir::IpFamily::kV4, addr.bytes);
  if (family == WEIR_FAMILY_IPV6) return weir::IpAddress::FromBytes(weir::IpFamily::kV6, addr.bytes);
  return std::nullopt;
}

// "10.0.0.1:80", "[fd00::1]:80"; `port` in network byte order.
std::string FormatAddressPort(const weir_addr& addr, uint8_t family, __be16 port) {
  std::optional<weir::IpAddress> address = AddressOf(addr, family);
  if (!address.has_value()) return absl::StrCat("<family ", family, ">:", ntohs(port));
  return weir::lb::FormatAddressPort(*address, ntohs(port));
}

std::string FormatAddress(const weir_addr& addr, uint8_t family) {
  std::optional<weir::IpAddress> address = AddressOf(addr, family);
  return address.has_value() ? address->ToString() : absl::StrCat("<family ", family, ">");
}

std::string ProtoName(uint8_t proto) {
  switch (proto) {
    case WEIR_PROTO_TCP: return "TCP";
    case WEIR_PROTO_UDP: return "UDP";
    case WEIR_PROTO_SCTP: return "SCTP";
    default: return absl::StrCat("proto-", proto);
  }
}

std::string ScopeName(uint8_t scope) {
  switch (scope) {
    case WEIR_SCOPE_EXTERNAL: return "external";
    case WEIR_SCOPE_INTERNAL: return "internal";
    default: return absl::StrCat("scope-", scope);
  }
}

// Seconds since a bpf_ktime_get_ns() stamp; an entry touched after we read the clock is 0 s old.
std::string AgeSince(uint64_t stamp_ns, uint64_t now_ns) {
  return absl::StrCat(now_ns > stamp_ns ? (now_ns - stamp_ns) / 1'000'000'000ull : 0, "s");
}

// A sort key for (family, address, host-order port): numeric order, IPv4 before IPv6.
auto AddressPortOrder(const weir_addr& addr, uint8_t family, __be16 port) {
  std::array<uint8_t, 16> bytes{};
  std::memcpy(bytes.data(), addr.bytes, sizeof(bytes));
  return std::make_tuple(family, bytes, ntohs(port));
}

// --- endpoints ---

int ListEndpoints(const weir::PinLayout& layout) {
  auto map = weir::EndpointMap::OpenPinned(layout.endpoints_map());
  if (!map.ok()) return Fail(map.status());
  auto endpoints = map->List();
  if (!endpoints.ok()) return Fail(endpoints.status());
  std::sort(endpoints->begin(), endpoints->end(),
            [](const weir::Endpoint& a, const weir::Endpoint& b) { return a.address < b.address; });
  Table table({"ADDRESS", "IFINDEX", "MAC", "KIND"});
  for (const weir::Endpoint& ep : *endpoints) {
    table.Add({ep.address.ToString(), absl::StrCat(ep.host_ifindex), weir::FormatMac(ep.pod_mac),
               (ep.flags & WEIR_ENDPOINT_LOCAL_POD) ? "pod" : "host"});
  }
  table.Print();
  return 0;
}

// --- services ---

std::string BackendFlagNames(uint16_t flags) {
  std::vector<std::string> names;
  if (flags & WEIR_BACKEND_LOCAL) names.push_back("local");
  if (flags & WEIR_BACKEND_TERMINATING) names.push_back("terminating");
  if (const uint16_t unknown = flags & ~(WEIR_BACKEND_LOCAL | WEIR_BACKEND_TERMINATING); unknown != 0) {
    names.push_back(absl::StrFormat("0x%x", unknown));
  }
  return names.empty() ? "-" : absl::StrJoin(names, ",");
}

int ListServices(const weir::PinLayout& layout) {
  auto services_map = weir::ServicesMap::OpenPinned(layout.services_map());
  if (!services_map.ok()) return Fail(services_map.status());
  auto slots_map = weir::SlotsMap::OpenPinned(layout.slots_map());
  if (!slots_map.ok()) return Fail(slots_map.status());
  auto backends_map = weir::BackendsMap::OpenPinned(layout.backends_map());
  if (!backends_map.ok()) return Fail(backends_map.status());

  auto services = services_map->List();
  if (!services.ok()) return Fail(services.status());
  auto slot_entries = slots_map->List();
  if (!slot_entries.ok()) return Fail(slot_entries.status());
  auto backend_entries = backends_map->List();
  if (!backend_entries.ok()) return Fail(backend_entries.status());

  std::map<std::pair<uint32_t, uint32_t>, uint32_t> slots;  // (service id, slot) -> backend id
  for (const auto& entry : *slot_entries) slots[{entry.key.service_id, entry.key.slot}] = entry.backend_id;
  std::map<uint32_t, weir_backend> backends;
  for (const auto& entry : *backend_entries) backends[entry.backend_id] = entry.backend;

  std::sort(services->begin(), services->end(), [](const auto& a, const auto& b) {
    return std::tuple_cat(AddressPortOrder(a.key.addr, a.key.family, a.key.port), std::make_tuple(a.key.proto, a.key.scope)) <
           std::tuple_cat(AddressPortOrder(b.key.addr, b.key.family, b.key.port), std::make_tuple(b.key.proto, b.key.scope));
  });

  // Frontend rows, each followed by its backends in slot order, in the same columns.
  Table table({"FRONTEND / BACKEND", "SCOPE", "ID", "BACKENDS", "FLAGS"});
  for (const weir::ServicesMap::Entry& service : *services) {
    const weir_service_key& key = service.key;
    const weir_service_value& value = service.value;
    table.Add({absl::StrCat(FormatAddressPort(key.addr, key.family, key.port), "/", ProtoName(key.proto)),
               ScopeName(key.scope), absl::StrCat("service ", value.service_id),
               absl::StrCat("backends=", value.backend_count),
               weir::lb::FlagNames(value.flags, value.affinity_timeout)});
    if (value.backend_count == 0) table.Add({"  (no backends: rejected)"});
    for (uint32_t slot = 1; slot <= value.backend_count; ++slot) {
      auto slot_it = slots.find({value.service_id, slot});
      if (slot_it == slots.end()) {
        table.Add({absl::StrCat("  (slot ", slot, " missing)")});
        continue;
      }
      auto backend_it = backends.find(slot_it->second);
      if (backend_it == backends.end()) {
        table.Add({"  (missing)", "", absl::StrCat("backend ", slot_it->second)});
        continue;
      }
      const weir_backend& backend = backend_it->second;
      std::string address = absl::StrCat("  ", FormatAddressPort(backend.addr, backend.family, backend.port));
      // Backends normally share the frontend's protocol; say so only when they don't.
      if (backend.proto != key.proto) absl::StrAppend(&address, "/", ProtoName(backend.proto));
      table.Add({address, "", absl::StrCat("backend ", slot_it->second), "", BackendFlagNames(backend.flags)});
    }
  }
  table.Print();
  return 0;
}

// --- conntrack ---

std::string ConntrackFlagNames(uint8_t flags) {
  std::vector<std::string> names;
  if (flags & WEIR_CT_SNAT) names.push_back("snat");
  if (flags & WEIR_CT_DSR) names.push_back("dsr");
  if (flags & WEIR_CT_SEEN_REPLY) names.push_back("seen-reply");
  if (flags & WEIR_CT_CLOSING) names.push_back("closing");
  if (flags & WEIR_CT_MASQ) names.push_back("masq");
  if (flags & WEIR_CT_INBOUND) names.push_back("inbound");
  return names.empty() ? "-" : absl::StrJoin(names, ",");
}

// What the entry rewrites. Forward (client -> frontend): the destination becomes the backend and,
// with SNAT, the source the node's address. Reply (backend -> client): the source becomes the
// frontend and, with SNAT, the destination the original client.
std::string DescribeNat(const weir_ct_key& key, const weir_ct_value& value) {
  const bool forward = value.kind == WEIR_CT_FORWARD;
  std::string text = absl::StrCat(forward ? "dst=" : "src=", FormatAddressPort(value.nat_addr, key.family, value.nat_port));
  if (value.flags & WEIR_CT_SNAT) {
    absl::StrAppend(&text, forward ? " src=" : " dst=", FormatAddressPort(value.snat_addr, key.family, value.snat_port));
  }
  return text;
}

std::string ConntrackKindName(uint8_t kind) {
  switch (kind) {
    case WEIR_CT_FORWARD: return "forward";
    case WEIR_CT_REPLY: return "reply";
    default: return absl::StrCat("kind-", kind);
  }
}

int ListConntrack(const weir::PinLayout& layout) {
  auto table_or = weir::sync::BpfConntrackTable::OpenPinned(layout);
  if (!table_or.ok()) return Fail(table_or.status());
  auto entries = (*table_or)->List();
  if (!entries.ok()) return Fail(entries.status());
  const uint64_t now_ns = weir::sync::MonotonicNowNs();

  std::sort(entries->begin(), entries->end(), [](const auto& a, const auto& b) {
    return std::tuple_cat(std::make_tuple(a.key.proto), AddressPortOrder(a.key.saddr, a.key.family, a.key.sport),
                          AddressPortOrder(a.key.daddr, a.key.family, a.key.dport)) <
           std::tuple_cat(std::make_tuple(b.key.proto), AddressPortOrder(b.key.saddr, b.key.family, b.key.sport),
                          AddressPortOrder(b.key.daddr, b.key.family, b.key.dport));
  });
  // Equal keys cannot occur in a map, but a walk racing the datapath can list one twice.
  entries->erase(std::unique(entries->begin(), entries->end(),
                             [](const auto& a, const auto& b) { return std::memcmp(&a.key, &b.key, sizeof(a.key)) == 0; }),
                 entries->end());

  Table table({"PROTO", "SOURCE", "", "DESTINATION", "", "NAT", "KIND", "AGE", "BACKEND", "SERVICE", "FLAGS"});
  table.AlignRight({7, 8, 9});
  for (const weir::sync::ConntrackEntry& entry : *entries) {
    const weir_ct_key& key = entry.key;
    const weir_ct_value& value = entry.value;
    table.Add({ProtoName(key.proto), FormatAddressPort(key.saddr, key.family, key.sport), "->",
               FormatAddressPort(key.daddr, key.family, key.dport), "=>", DescribeNat(key, value),
               ConntrackKindName(value.kind), AgeSince(value.last_seen_ns, now_ns), absl::StrCat(value.backend_id),
               absl::StrCat(value.service_id), ConntrackFlagNames(value.flags)});
  }
  table.Print();
  const uint32_t capacity = (*table_or)->capacity();
  const double fill = capacity == 0 ? 0 : 100.0 * static_cast<double>(entries->size()) / capacity;
  absl::PrintF("%d entries, capacity %d (%.1f%% full)\n", entries->size(), capacity, fill);
  return 0;
}

// --- masquerade ---

// The destinations pods reach with their own source, and the uplinks after which the rest leaves
// with the node's address.
int ShowMasquerade(const weir::PinLayout& layout) {
  auto table_or = weir::sync::BpfNonMasqTable::OpenPinned(layout);
  if (!table_or.ok()) return Fail(table_or.status());
  auto cidrs = (*table_or)->List();
  if (!cidrs.ok()) return Fail(cidrs.status());
  std::sort(cidrs->begin(), cidrs->end());
  Table table({"IN-CLUSTER CIDR (not masqueraded)"});
  for (const weir::IpPrefix& cidr : *cidrs) table.Add({cidr.ToString()});
  table.Print();

  weir::UniqueFd uplinks(bpf_obj_get(layout.uplinks_map().c_str()));
  if (!uplinks.valid()) return Fail(absl::ErrnoToStatus(errno, "open " + layout.uplinks_map()));
  std::vector<std::string> names;
  uint32_t key = 0, next = 0;
  const uint32_t* previous = nullptr;
  while (bpf_map_get_next_key(uplinks.get(), previous, &next) == 0) {
    char name[IF_NAMESIZE] = {};
    names.push_back(if_indextoname(next, name) ? absl::StrCat(name, " (", next, ")") : absl::StrCat(next));
    key = next;
    previous = &key;
  }
  std::sort(names.begin(), names.end());
  absl::PrintF("uplinks: %s\n", names.empty() ? "none" : absl::StrJoin(names, ", "));
  return 0;
}

// --- affinity ---

int ListAffinity(const weir::PinLayout& layout) {
  auto map = weir::RawBpfMap::OpenPinned(layout.affinity_map(), WEIR_AFFINITY_MAP_NAME, sizeof(weir_affinity_key),
                                         sizeof(weir_affinity_value));
  if (!map.ok()) return Fail(map.status());
  auto raw = map->ListRaw();
  if (!raw.ok()) return Fail(raw.status());
  const uint64_t now_ns = weir::sync::MonotonicNowNs();

  // Optional context: where each backend is, and each service's affinity timeout (entries older
  // than it are ignored by the datapath and overwritten on the client's next connection).
  std::map<uint32_t, weir_backend> backends;
  if (auto backends_map = weir::BackendsMap::OpenPinned(layout.backends_map()); backends_map.ok()) {
    if (auto list = backends_map->List(); list.ok()) {
      for (const auto& entry : *list) backends[entry.backend_id] = entry.backend;
    }
  }
  std::map<uint32_t, uint32_t> timeout_seconds;  // service id -> affinity timeout
  if (auto services_map = weir::ServicesMap::OpenPinned(layout.services_map()); services_map.ok()) {
    if (auto list = services_map->List(); list.ok()) {
      for (const auto& entry : *list) {
        if (entry.value.flags & WEIR_SVC_AFFINITY) timeout_seconds[entry.value.service_id] = entry.value.affinity_timeout;
      }
    }
  }

  struct Row {
    weir_affinity_key key;
    weir_affinity_value value;
  };
  std::vector<Row> rows;
  for (const std::vector<uint8_t>& bytes : *raw) {
    Row row{};
    std::memcpy(&row.key, bytes.data(), sizeof(row.key));
    std::memcpy(&row.value, bytes.data() + sizeof(row.key), sizeof(row.value));
    rows.push_back(row);
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return std::tuple_cat(AddressPortOrder(a.key.client, a.key.family, 0), std::make_tuple(a.key.service_id)) <
           std::tuple_cat(AddressPortOrder(b.key.client, b.key.family, 0), std::make_tuple(b.key.service_id));
  });

  Table table({"CLIENT", "SERVICE", "BACKEND", "BACKEND ADDRESS", "AGE", "STATE"});
  table.AlignRight({1, 2, 4});
  for (const Row& row : rows) {
    std::string backend_address = "-";
    if (auto it = backends.find(row.value.backend_id); it != backends.end()) {
      backend_address = FormatAddressPort(it->second.addr, it->second.family, it->second.port);
    }
    std::string state = "-";  // the service is gone or no longer has affinity
    if (auto it = timeout_seconds.find(row.key.service_id); it != timeout_seconds.end()) {
      const uint64_t age_ns = now_ns > row.value.last_used_ns ? now_ns - row.value.last_used_ns : 0;
      state = age_ns > static_cast<uint64_t>(it->second) * 1'000'000'000ull ? "expired" : "active";
    }
    table.Add({FormatAddress(row.key.client, row.key.family), absl::StrCat(row.key.service_id),
               absl::StrCat(row.value.backend_id), backend_address, AgeSince(row.value.last_used_ns, now_ns), state});
  }
  table.Print();
  return 0;
}

// --- metrics ---

int ShowMetrics(const weir::PinLayout& layout) {
  auto totals = weir::ReadMetrics(layout.metrics_map());
  if (!totals.ok()) {
    absl::FPrintF(stderr, "weirctl: %s\n", totals.status().ToString());
    return 1;
  }
  Table table({"COUNTER", "PACKETS", "BYTES"});
  table.AlignRight({1, 2});
  for (const weir::MetricTotal& total : *totals) {
    table.Add({total.name, absl::StrCat(total.packets), absl::StrCat(total.bytes)});
  }
  table.Print();
  return 0;
}

struct EventStream {
  int64_t remaining;  // < 0: unbounded
};

int PrintEvent(void* context, void* data, size_t size) {
  auto* stream = static_cast<EventStream*>(context);
  if (size < sizeof(weir_event)) return 0;
  weir_event ev;
  std::memcpy(&ev, data, sizeof(ev));
  std::string flow = absl::StrCat(ProtoName(ev.proto), " ", FormatAddressPort(ev.saddr, ev.family, ev.sport), " -> ",
                                  FormatAddressPort(ev.daddr, ev.family, ev.dport));
  if (ev.type == WEIR_EVENT_TRANSLATION) {
    absl::PrintF("%.6f translate %s => %s (service %d, backend %d)\n", ev.timestamp_ns / 1e9, flow,
                 FormatAddressPort(ev.nat_addr, ev.family, ev.nat_port), ev.service_id, ev.backend_id);
  } else if (ev.type == WEIR_EVENT_SOCKET) {
    const char* verdict = weir::MetricName(ev.reason);
    const std::string backend = ev.backend_id ? absl::StrCat(" => ", FormatAddressPort(ev.nat_addr, ev.family,
                                                                                      ev.nat_port)) : "";
    // The socket as `ss -e` names it (sk:<hex cookie>); the cgroup by its id, the inode of its directory.
    absl::PrintF("%.6f socket    %s %s%s verdict=%s (service %d, cgroup id %d, sk:%x)\n", ev.timestamp_ns / 1e9,
                 ProtoName(ev.proto), FormatAddressPort(ev.daddr, ev.family, ev.dport), backend,
                 verdict ? verdict : "unknown", ev.service_id, ev.cgroup_id, ev.socket_cookie);
  } else {
    const char* reason = weir::MetricName(ev.reason);
    absl::PrintF("%.6f drop      %s reason=%s (service %d, ifindex %d)\n", ev.timestamp_ns / 1e9, flow,
                 reason ? reason : "unknown", ev.service_id, ev.ifindex);
  }
  std::fflush(stdout);
  if (stream->remaining > 0) --stream->remaining;
  return stream->remaining == 0 ? 1 : 0;  // a positive return stops ring_buffer__poll's caller loop
}

// Streams drop and translation records until --count records or --timeout_s seconds.
int StreamEvents(const weir::PinLayout& layout) {
  weir::UniqueFd fd(bpf_obj_get(layout.map(WEIR_EVENTS_MAP_NAME).c_str()));
  if (!fd.valid()) {
    absl::FPrintF(stderr, "weirctl: open %s: %s\n", layout.map(WEIR_EVENTS_MAP_NAME), strerror(errno));
    return 1;
  }
  EventStream stream{absl::GetFlag(FLAGS_count) > 0 ? absl::GetFlag(FLAGS_count) : -1};
  ring_buffer* ring = ring_buffer__new(fd.get(), PrintEvent, &stream, nullptr);
  if (ring == nullptr) {
    absl::FPrintF(stderr, "weirctl: ring buffer: %s\n", strerror(errno));
    return 1;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(absl::GetFlag(FLAGS_timeout_s));
  bool bounded = absl::GetFlag(FLAGS_timeout_s) > 0;
  while (stream.remaining != 0 && (!bounded || std::chrono::steady_clock::now() < deadline)) {
    // The datapath does not wake readers (see bpf/lib/events.h): drain on a timer instead.
    int consumed = ring_buffer__consume(ring);
    if (consumed < 0 && consumed != -EINTR) break;
    if (stream.remaining != 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ring_buffer__free(ring);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  weir::PinLayout layout{absl::GetFlag(FLAGS_bpf_root)};
  std::string command = args.size() > 1 ? args[1] : "";
  if (command == "endpoints") return ListEndpoints(layout);
  if (command == "services") return ListServices(layout);
  if (command == "conntrack") return ListConntrack(layout);
  if (command == "affinity") return ListAffinity(layout);
  if (command == "masquerade") return ShowMasquerade(layout);
  if (command == "metrics") return ShowMetrics(layout);
  if (command == "events") return StreamEvents(layout);
  absl::FPrintF(stderr, "usage: %s\n", kUsage);
  return 2;
}
