// What weirctl says about one record of the events ring (bpf/abi/events.h). This file is the one
// place that knows the kinds of record: a new kind is one row of kKinds in event_view.cc (its type
// and verdict names and a function adding its own fields); filters, tables and JSON follow.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "proxy/weirctl/filters.h"
#include "proxy/weirctl/service_directory.h"

namespace weir::weirctl {

// A field of one kind only, e.g. a drop's "reason". Printed as key=value in tables, a member of the
// record's JSON object.
struct EventField {
  std::string key;
  std::variant<std::string, uint64_t> value;
};

// A policy record as the datapath wrote it (bpf/abi/events.h), for PolicyDirectory to name.
struct PolicyRecord {
  uint8_t direction = 0;   // enum weir_policy_direction
  uint32_t policy_id = 0;  // the endpoint's; 0: pending its first policy
  uint32_t peer_identity = 0;
};

struct EventView {
  uint64_t timestamp_ns = 0;  // bpf_ktime_get_ns(): CLOCK_MONOTONIC
  std::string type;           // "drop", "translate", "socket"; "type-N" for a kind this build does not know
  std::string verdict;        // "dropped", "translated", "refused"
  uint8_t proto = 0;
  uint8_t family = 0;
  bool has_source = true;  // false for socket records: no packet exists yet
  FlowSide source;
  FlowSide destination;             // as the packet arrived: the frontend for a translation
  std::optional<FlowSide> backend;  // where the flow was sent, when translated
  uint32_t service_id = 0;          // 0: none
  uint32_t ifindex = 0;             // 0: none (socket records)
  std::vector<EventField> fields;
  std::optional<PolicyRecord> policy;  // policy records only
};

// nullopt for a record too short to be one.
std::optional<EventView> DecodeEvent(const void* data, size_t size);

// The names --type and --verdict accept.
std::vector<std::string> EventTypeNames();
std::vector<std::string> EventVerdictNames();

bool EventMatches(const EventView& event, const FlowFilter& filter, const ServiceDirectory& names);

// "17:31:02.123456 drop       TCP 10.0.0.1:40000 -> 10.96.0.10:80 service=default/web:http reason=no_backend ifindex=4"
std::string EventLine(const EventView& event, const ServiceDirectory& names);
// One JSON object on one line.
std::string EventJson(const EventView& event, const ServiceDirectory& names);

}  // namespace weir::weirctl
