// weirctl: reads what weir-agent pinned under the bpf root and prints it, as aligned tables sorted so
// that two runs over the same state print the same text, or as JSON (-o json).
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "lib/agent_socket.h"
#include "proxy/weirctl/command.h"
#include "proxy/weirctl/conntrack_command.h"
#include "proxy/weirctl/event_view.h"
#include "proxy/weirctl/events_command.h"
#include "proxy/weirctl/node_commands.h"
#include "proxy/weirctl/policy_command.h"
#include "proxy/weirctl/service_commands.h"
#include "proxy/weirctl/status_command.h"

ABSL_FLAG(std::string, bpf_root, "/sys/fs/bpf/weir", "bpffs directory where weir-agent pinned the datapath");
ABSL_FLAG(std::string, o, "", "output format: table (default) or json");
ABSL_FLAG(std::string, output, "", "same as -o");
ABSL_FLAG(std::string, addr, "", "filter: an address or CIDR on either side of the flow (or its backend)");
ABSL_FLAG(std::string, port, "", "filter: a port on either side of the flow (or its backend)");
ABSL_FLAG(std::string, proto, "", "filter: tcp, udp or sctp");
ABSL_FLAG(std::string, service, "", "filter: namespace/name, namespace/name:port or a service id");
ABSL_FLAG(std::string, type, "",
          "events filter: record types, comma-separated (drop, translate, socket, policy)");
ABSL_FLAG(std::string, verdict, "",
          "events filter: verdicts, comma-separated (dropped, translated, refused, denied, audited)");
ABSL_FLAG(int64_t, count, 0, "events: stop after this many records (0: no limit)");
ABSL_FLAG(int, timeout_s, 0, "events: stop after this many seconds (0: no limit)");
ABSL_FLAG(std::string, agent_socket, weir::kDefaultAgentSocket,
          "policy: the agent's policy socket (its policySocket setting; @name: abstract)");
ABSL_FLAG(bool, replay, false, "events: also print the records already in the ring when weirctl starts");

namespace {

using weir::weirctl::CommandOptions;

constexpr char kUsage[] = R"(weirctl [--bpf_root DIR] COMMAND [-o table|json] [filters]

Commands:
  status      the agent (version, settings, last sync), counts, pinned programs and links, every
              map's entries against its capacity
  services    frontends with their backends in slot order          [--addr --port --proto --service]
  conntrack   tracked flows                                         [--addr --port --proto --service]
  affinity    session-affinity entries                              [--addr --port --proto --service]
  endpoints   pods and host addresses of this node
  masquerade  in-cluster CIDRs (not masqueraded) and uplinks
  metrics     the datapath's packet counters
  policy [POD]  network policy of this node's pods, as the agent computed it: identity, labels,
              isolation and mode per direction, policies in force, allowed traffic; POD is
              namespace/name or name (asks the agent on --agent_socket)
  events      drops, translations, socket-LB verdicts and network policy's denials from now on,
              until --count records or --timeout_s seconds (--replay: also the records already in
              the ring; two readers at once split the records between them); a policy record names
              the pod and the policies that decided, as the agent on --agent_socket knows them
                                                                  [all filters, --type --verdict]

Filters: every one given must match. --addr (an address or CIDR) and --port match either side of a
flow or the backend it went to; --service takes namespace/name (every port), namespace/name:port or
a service id. Services show as namespace/name:port as the agent published them; an id it did not
name shows as its number.

JSON (-o json): one document on one line; `events -o json` prints one object per line. Keys are
stable; a value that is not known is null. A SERVICE is {"id", "namespace", "name", "port_name"}
(names null when unknown), or null for none; an ENDPOINT is {"address", "port"}.
  status      {"agent": null | {"version", "node", "pid", "source", "started", "last_sync",
              "last_sync_age_seconds", "last_complete_sync", "last_sync_error", "syncs", "sync_errors",
              "lb_mode", "dsr_dispatch", "maglev", "maglev_table_size", "masquerade",
              "socket_lb_cgroup", "socket_lb_host_only"},
              "counts": {"services", "frontends", "backends", "endpoints", "conntrack"},
              "programs": [{"name", "id", "type", "tag", "loaded"}],
              "links": [{"pin", "group", "id", "type", "program_id", "program", "attach_type",
              "attached", "ifindex", "interface", "cgroup_id", "cgroup"}],
              "maps": [{"name", "id", "type", "entries", "capacity", "fill_percent", "key_size",
              "value_size", "pending_bytes"}], "errors": [string]}
  services    {"services": [{"frontend", "address", "port", "protocol", "scope", "service": SERVICE,
              "flags": [string], "affinity_timeout_seconds", "backend_count", "backends": [{"slot",
              "backend_id", "address", "port", "protocol", "flags": [string], "missing": null |
              "slot" | "backend"}]}]}
  conntrack   {"entries": [{"protocol", "family", "source": ENDPOINT, "destination": ENDPOINT,
              "kind", "nat": ENDPOINT, "snat": ENDPOINT | null, "age_seconds", "backend_id",
              "service": SERVICE, "flags": [string]}], "total", "capacity"}
  affinity    {"entries": [{"client", "service": SERVICE, "backend_id", "backend": ENDPOINT | null,
              "age_seconds", "state": "active" | "expired" | null}]}
  endpoints   {"endpoints": [{"address", "ifindex", "mac", "kind": "pod" | "host"}]}
  masquerade  {"non_masquerade_cidrs": [string], "uplinks": [{"ifindex", "name"}]}
  metrics     {"counters": [{"name", "drop", "packets", "bytes"}]}
  policy      {"node", "node_audit", "identities", "endpoints": [{"namespace", "name", "policy_id",
              "written", "identity", "addresses": [string], "labels": {}, "namespace_labels": {},
              "ingress"/"egress": {"isolated", "mode": "enforce" | "audit", "policies": [string],
              "allowed": [string]}}]}
  events      {"time", "timestamp_ns", "type", "verdict", "family", "protocol",
              "source": ENDPOINT | null, "destination": ENDPOINT, "backend": ENDPOINT | null,
              "service": SERVICE, "ifindex": number | null} and per type: drop {"reason"},
              translate {"backend_id"}, socket {"backend_id" (when translated), "outcome",
              "socket" ("sk:<hex cookie>" as ss -e shows it), "cgroup_id"}; a socket record has
              no source and no ifindex (no packet exists yet), its destination is the frontend;
              policy {"direction", "endpoint" ("namespace/pod"), "policy" ("default-deny" |
              "pending"), "isolated_by" ("ns/policy,..."), "peer", "policy_id", "peer_identity"}
              (endpoint, policy and isolated_by absent when the agent does not know the pod)
Times are RFC 3339 in UTC; timestamp_ns is the datapath's clock (CLOCK_MONOTONIC).)";

using Runner = absl::Status (*)(const CommandOptions&);

struct Command {
  Runner run;
  std::set<std::string> filters;  // the filter flags it takes
};

const std::map<std::string, Command>& Commands() {
  static const std::map<std::string, Command> commands = {
      {"status", {weir::weirctl::RunStatus, {}}},
      {"services", {weir::weirctl::RunServices, {"addr", "port", "proto", "service"}}},
      {"conntrack", {weir::weirctl::RunConntrack, {"addr", "port", "proto", "service"}}},
      {"affinity", {weir::weirctl::RunAffinity, {"addr", "port", "proto", "service"}}},
      {"endpoints", {weir::weirctl::RunEndpoints, {}}},
      {"masquerade", {weir::weirctl::RunMasquerade, {}}},
      {"metrics", {weir::weirctl::RunMetrics, {}}},
      {"policy", {weir::weirctl::RunPolicy, {}}},
      {"events", {weir::weirctl::RunEvents, {"addr", "port", "proto", "service", "type", "verdict"}}},
  };
  return commands;
}

absl::Status CheckNames(const std::set<std::string>& given, const std::vector<std::string>& known,
                        const char* flag) {
  for (const std::string& name : given) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, " ", name, ": one of ", absl::StrJoin(known, ", ")));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<CommandOptions> Configure(const std::string& command_name, const Command& command) {
  CommandOptions options{.layout = {absl::GetFlag(FLAGS_bpf_root)},
                         .count = absl::GetFlag(FLAGS_count),
                         .timeout_s = absl::GetFlag(FLAGS_timeout_s),
                         .replay = absl::GetFlag(FLAGS_replay)};
  std::string format = absl::GetFlag(FLAGS_o);
  if (const std::string output = absl::GetFlag(FLAGS_output); !output.empty()) {
    if (!format.empty() && format != output) return absl::InvalidArgumentError("-o and --output disagree");
    format = output;
  }
  auto parsed_format = weir::weirctl::ParseOutputFormat(format.empty() ? "table" : format);
  if (!parsed_format.ok()) return parsed_format.status();
  options.format = *parsed_format;

  const weir::weirctl::FilterFlags flags{.addr = absl::GetFlag(FLAGS_addr),
                                         .port = absl::GetFlag(FLAGS_port),
                                         .proto = absl::GetFlag(FLAGS_proto),
                                         .service = absl::GetFlag(FLAGS_service),
                                         .type = absl::GetFlag(FLAGS_type),
                                         .verdict = absl::GetFlag(FLAGS_verdict)};
  const std::map<std::string, const std::string*> given = {
      {"addr", &flags.addr},       {"port", &flags.port}, {"proto", &flags.proto},
      {"service", &flags.service}, {"type", &flags.type}, {"verdict", &flags.verdict}};
  for (const auto& [name, value] : given) {
    if (!value->empty() && !command.filters.contains(name)) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " does not apply to ", command_name));
    }
  }
  if (command_name != "events" && (options.count != 0 || options.timeout_s != 0 || options.replay)) {
    return absl::InvalidArgumentError("--count, --timeout_s and --replay apply to events only");
  }
  auto filter = weir::weirctl::ParseFilter(flags);
  if (!filter.ok()) return filter.status();
  if (absl::Status s = CheckNames(filter->types, weir::weirctl::EventTypeNames(), "type"); !s.ok()) return s;
  if (absl::Status s = CheckNames(filter->verdicts, weir::weirctl::EventVerdictNames(), "verdict"); !s.ok())
    return s;
  options.filter = *std::move(filter);
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  const std::string name = args.size() > 1 ? args[1] : "";
  if (name == "help") {
    absl::PrintF("%s\n", kUsage);
    return 0;
  }
  auto command = Commands().find(name);
  if (command == Commands().end() || args.size() > (name == "policy" ? 3 : 2)) {
    absl::FPrintF(stderr, "%s\n",
                  name.empty() || command != Commands().end()
                      ? absl::StrCat("usage: ", kUsage)
                      : absl::StrCat("weirctl: unknown command ", name, " (weirctl help)"));
    return 2;
  }
  auto options = Configure(name, command->second);
  if (!options.ok()) {
    absl::FPrintF(stderr, "weirctl: %s\n", options.status().message());
    return 2;
  }
  if (args.size() > 2) options->argument = args[2];
  options->agent_socket = absl::GetFlag(FLAGS_agent_socket);
  if (absl::Status s = command->second.run(*options); !s.ok()) {
    absl::FPrintF(stderr, "weirctl: %s\n", s.ToString());
    return 1;
  }
  return 0;
}
