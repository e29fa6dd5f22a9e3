#include "proxy/weirctl/event_view.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bpf/abi/events.h"
#include "bpf/abi/metrics.h"
#include "bpf/abi/policy.h"
#include "lib/abi_codec.h"
#include "lib/metrics_map.h"
#include "proxy/weirctl/format.h"

namespace weir::weirctl {
namespace {

void DropFields(const weir_event& ev, EventView& view) {
  const char* reason = MetricName(ev.reason);
  view.fields.push_back({"reason", reason ? std::string(reason) : absl::StrCat("reason-", ev.reason)});
}

void TranslationFields(const weir_event& ev, EventView& view) {
  view.backend = FlowSide{ev.nat_addr, ev.family, ev.nat_port};
  view.fields.push_back({"backend_id", uint64_t{ev.backend_id}});
}

// A socket-LB hook's verdict on a connect() or datagram: no packet exists yet, so no source and no
// interface; the socket is named as `ss -e` names it (sk:<hex cookie>), its cgroup by id.
void SocketFields(const weir_event& ev, EventView& view) {
  view.has_source = false;
  if (ev.reason == WEIR_METRIC_SOCK_CONNECT_REFUSED || ev.reason == WEIR_METRIC_SOCK_SENDMSG_REFUSED) {
    view.verdict = "refused";
  }
  if (ev.backend_id != 0) {
    view.backend = FlowSide{ev.nat_addr, ev.family, ev.nat_port};
    view.fields.push_back({"backend_id", uint64_t{ev.backend_id}});
  }
  const char* outcome = MetricName(ev.reason);
  view.fields.push_back({"outcome", outcome ? std::string(outcome) : absl::StrCat("reason-", ev.reason)});
  view.fields.push_back({"socket", absl::StrFormat("sk:%x", ev.socket_cookie)});
  view.fields.push_back({"cgroup_id", uint64_t{ev.cgroup_id}});
}

// A NetworkPolicy gate's denial, or what an auditing direction would have denied: the flow as the
// endpoint sees it (after Service translation), which side judged it and what the peer resolved to.
void PolicyFields(const weir_event& ev, EventView& view) {
  if (ev.reason == WEIR_POLICY_AUDITED) view.verdict = "audited";
  view.fields.push_back({"direction", abi::PolicyDirectionName(ev.direction)});
  // The endpoint, the deciding policies and the peer's name come from the agent (PolicyDirectory::Name).
  view.policy =
      PolicyRecord{.direction = ev.direction, .policy_id = ev.policy_id, .peer_identity = ev.peer_identity};
}

struct EventKind {
  uint8_t type;      // enum weir_event_type
  const char* name;  // --type, "type" in JSON
  // --verdict, "verdict" in JSON: the first unless add_fields picks another of them.
  std::array<const char*, 2> verdicts;
  void (*add_fields)(const weir_event& ev, EventView& view);
};

// Every kind of record the datapath emits.
constexpr EventKind kKinds[] = {
    {WEIR_EVENT_DROP, "drop", {"dropped"}, DropFields},
    {WEIR_EVENT_TRANSLATION, "translate", {"translated"}, TranslationFields},
    {WEIR_EVENT_SOCKET, "socket", {"translated", "refused"}, SocketFields},
    {WEIR_EVENT_POLICY, "policy", {"denied", "audited"}, PolicyFields},
};

std::string FieldText(const EventField& field) {
  if (const auto* text = std::get_if<std::string>(&field.value)) return *text;
  return absl::StrCat(std::get<uint64_t>(field.value));
}

}  // namespace

std::optional<EventView> DecodeEvent(const void* data, size_t size) {
  if (size < sizeof(weir_event)) return std::nullopt;
  weir_event ev;
  std::memcpy(&ev, data, sizeof(ev));
  EventView view{.timestamp_ns = ev.timestamp_ns,
                 .type = absl::StrCat("type-", ev.type),
                 .verdict = "unknown",
                 .proto = ev.proto,
                 .family = ev.family,
                 .source = {ev.saddr, ev.family, ev.sport},
                 .destination = {ev.daddr, ev.family, ev.dport},
                 .service_id = ev.service_id,
                 .ifindex = ev.ifindex};
  for (const EventKind& kind : kKinds) {
    if (kind.type != ev.type) continue;
    view.type = kind.name;
    view.verdict = kind.verdicts[0];
    kind.add_fields(ev, view);
  }
  return view;
}

std::vector<std::string> EventTypeNames() {
  std::vector<std::string> names;
  for (const EventKind& kind : kKinds) names.push_back(kind.name);
  return names;
}

std::vector<std::string> EventVerdictNames() {
  std::vector<std::string> names;
  for (const EventKind& kind : kKinds) {
    for (const char* verdict : kind.verdicts) {
      if (verdict != nullptr && std::find(names.begin(), names.end(), verdict) == names.end())
        names.push_back(verdict);
    }
  }
  return names;
}

bool EventMatches(const EventView& event, const FlowFilter& filter, const ServiceDirectory& names) {
  std::vector<FlowSide> sides = {event.destination};
  if (event.has_source) sides.push_back(event.source);
  if (event.backend) sides.push_back(*event.backend);
  return filter.MatchesType(event.type) && filter.MatchesVerdict(event.verdict) &&
         filter.MatchesProto(event.proto) && filter.MatchesSides(sides) &&
         filter.MatchesService(event.service_id, names);
}

std::string EventLine(const EventView& event, const ServiceDirectory& names) {
  const uint64_t unix_ns = MonotonicToUnixNs(event.timestamp_ns);
  const uint64_t seconds_of_day = (unix_ns / 1'000'000'000ull) % 86400;
  std::string line = absl::StrFormat(
      "%02d:%02d:%02d.%06d %-10s %s ", seconds_of_day / 3600, seconds_of_day / 60 % 60, seconds_of_day % 60,
      unix_ns % 1'000'000'000ull / 1000, event.type, abi::ProtoName(event.proto));
  if (event.has_source) {
    absl::StrAppend(&line, abi::RenderAddressPort(event.source.addr, event.family, event.source.port_be),
                    " -> ");
  }
  absl::StrAppend(&line,
                  abi::RenderAddressPort(event.destination.addr, event.family, event.destination.port_be));
  if (event.backend) {
    absl::StrAppend(&line, " => ",
                    abi::RenderAddressPort(event.backend->addr, event.family, event.backend->port_be));
  }
  if (event.service_id != 0) absl::StrAppend(&line, " service=", names.Describe(event.service_id));
  for (const EventField& field : event.fields) absl::StrAppend(&line, " ", field.key, "=", FieldText(field));
  if (event.ifindex != 0) absl::StrAppend(&line, " ifindex=", event.ifindex);
  return line + "\n";
}

std::string EventJson(const EventView& event, const ServiceDirectory& names) {
  Json json;
  json.StartObject();
  json.Key("time");
  json.String(FormatUnixTime(MonotonicToUnixNs(event.timestamp_ns)));
  json.Key("timestamp_ns");
  json.Uint(event.timestamp_ns);
  json.Key("type");
  json.String(event.type);
  json.Key("verdict");
  json.String(event.verdict);
  json.Key("family");
  json.String(abi::FamilyName(event.family));
  json.Key("protocol");
  json.String(abi::ProtoName(event.proto));
  json.Key("source");
  if (event.has_source) {
    WriteAddressPort(json, event.source.addr, event.family, event.source.port_be);
  } else {
    json.Null();
  }
  json.Key("destination");
  WriteAddressPort(json, event.destination.addr, event.family, event.destination.port_be);
  json.Key("backend");
  if (event.backend) {
    WriteAddressPort(json, event.backend->addr, event.family, event.backend->port_be);
  } else {
    json.Null();
  }
  json.Key("service");
  names.WriteJson(json, event.service_id);
  json.Key("ifindex");
  json.OptionalUint(event.ifindex != 0 ? std::optional<uint64_t>(event.ifindex) : std::nullopt);
  for (const EventField& field : event.fields) {
    json.Key(field.key.c_str());
    if (const auto* text = std::get_if<std::string>(&field.value)) {
      json.String(*text);
    } else {
      json.Uint(std::get<uint64_t>(field.value));
    }
  }
  json.EndObject();
  return json.Take();
}

}  // namespace weir::weirctl
