// weirctl's output without a datapath: every command's JSON parses and keeps its documented keys,
// Services show by name (an unnamed id by its number), filters keep what they should.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "bpf/abi/conntrack.h"
#include "bpf/abi/events.h"
#include "bpf/abi/metrics.h"
#include "lib/abi_codec.h"
#include "proxy/weirctl/conntrack_command.h"
#include "proxy/weirctl/event_view.h"
#include "proxy/weirctl/node_commands.h"
#include "proxy/weirctl/service_commands.h"
#include "proxy/weirctl/status_command.h"
#include "rapidjson/document.h"

namespace weir::weirctl {
namespace {

IpAddress Ip(const std::string& text) { return *IpAddress::Parse(text); }
weir_addr Addr(const std::string& text) { return abi::EncodeAddress(Ip(text)); }
uint8_t FamilyOf(const std::string& text) { return abi::FamilyCode(Ip(text)); }

rapidjson::Document Parse(const std::string& text) {
  EXPECT_EQ(text.find('\n'), text.size() - 1) << "one document on one line: " << text;
  rapidjson::Document document;
  document.Parse(text.c_str());
  EXPECT_FALSE(document.HasParseError()) << text;
  return document;
}

FlowFilter Filter(FilterFlags flags) {
  auto filter = ParseFilter(flags);
  EXPECT_TRUE(filter.ok()) << filter.status();
  return filter.ok() ? *filter : FlowFilter{};
}

// Two Services: web (id 1, named) with two backends, and id 2, which the agent did not name.
ServiceTables Tables() {
  ServiceTables tables;
  const weir_service_key web = abi::EncodeServiceKey({Ip("10.96.0.10"), 80, WEIR_PROTO_TCP});
  tables.frontends.push_back({web,
                              {.service_id = 1,
                               .backend_count = 2,
                               .flags = WEIR_SVC_CLUSTER_IP | WEIR_SVC_AFFINITY,
                               .affinity_timeout = 300}});
  const weir_service_key other = abi::EncodeServiceKey({Ip("10.96.0.99"), 80, WEIR_PROTO_UDP});
  tables.frontends.push_back({other, {.service_id = 2, .backend_count = 0, .flags = WEIR_SVC_CLUSTER_IP}});
  tables.slots[{1, 1}] = 7;
  tables.slots[{1, 2}] = 8;
  tables.backends[7] = abi::EncodeBackend({Ip("10.244.1.5"), 8080, WEIR_PROTO_TCP, WEIR_BACKEND_LOCAL});
  return tables;  // backend 8 is missing
}

ServiceDirectory Names() { return ServiceDirectory({{1, {"default", "web", "http"}}}); }

TEST(WeirctlServicesTest, JsonNamesServicesAndShowsMissingBackends) {
  rapidjson::Document doc = Parse(RenderServices(Tables(), Names(), {}, OutputFormat::kJson));
  const auto& services = doc["services"];
  ASSERT_EQ(services.Size(), 2u);
  const auto& web = services[0];
  EXPECT_STREQ(web["frontend"].GetString(), "10.96.0.10:80/TCP");
  EXPECT_EQ(web["port"].GetUint(), 80u);
  EXPECT_STREQ(web["scope"].GetString(), "external");
  EXPECT_EQ(web["service"]["id"].GetUint(), 1u);
  EXPECT_STREQ(web["service"]["namespace"].GetString(), "default");
  EXPECT_STREQ(web["service"]["name"].GetString(), "web");
  EXPECT_STREQ(web["service"]["port_name"].GetString(), "http");
  EXPECT_STREQ(web["flags"][0].GetString(), "cluster-ip");
  EXPECT_STREQ(web["flags"][1].GetString(), "affinity");
  EXPECT_EQ(web["affinity_timeout_seconds"].GetUint(), 300u);
  ASSERT_EQ(web["backends"].Size(), 2u);
  EXPECT_STREQ(web["backends"][0]["address"].GetString(), "10.244.1.5");
  EXPECT_EQ(web["backends"][0]["port"].GetUint(), 8080u);
  EXPECT_STREQ(web["backends"][0]["flags"][0].GetString(), "local");
  EXPECT_TRUE(web["backends"][0]["missing"].IsNull());
  EXPECT_EQ(web["backends"][1]["backend_id"].GetUint(), 8u);
  EXPECT_TRUE(web["backends"][1]["address"].IsNull());
  EXPECT_STREQ(web["backends"][1]["missing"].GetString(), "backend");
  // Unnamed: the id, and null names.
  EXPECT_EQ(services[1]["service"]["id"].GetUint(), 2u);
  EXPECT_TRUE(services[1]["service"]["name"].IsNull());
}

TEST(WeirctlServicesTest, TableShowsNamesAndNumbersForUnnamedIds) {
  const std::string table = RenderServices(Tables(), Names(), {}, OutputFormat::kTable);
  EXPECT_NE(table.find("10.96.0.10:80/TCP   external  default/web:http  service 1  backends=2"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("10.96.0.99:80/UDP   external  -                 service 2  backends=0"),
            std::string::npos)
      << table;
}

TEST(WeirctlServicesTest, FiltersByServiceNameAddressAndProtocol) {
  auto frontends = [](const std::string& json) {
    std::vector<std::string> list;
    rapidjson::Document doc = Parse(json);
    for (const auto& s : doc["services"].GetArray()) list.push_back(s["frontend"].GetString());
    return list;
  };
  const std::vector<std::string> web = {"10.96.0.10:80/TCP"};
  EXPECT_EQ(
      frontends(RenderServices(Tables(), Names(), Filter({.service = "default/web"}), OutputFormat::kJson)),
      web);
  EXPECT_EQ(frontends(RenderServices(Tables(), Names(), Filter({.service = "default/web:http"}),
                                     OutputFormat::kJson)),
            web);
  EXPECT_TRUE(frontends(RenderServices(Tables(), Names(), Filter({.service = "default/web:dns"}),
                                       OutputFormat::kJson))
                  .empty());
  EXPECT_EQ(frontends(RenderServices(Tables(), Names(), Filter({.service = "2"}), OutputFormat::kJson)),
            std::vector<std::string>{"10.96.0.99:80/UDP"});
  // A backend's address or port finds its frontend.
  EXPECT_EQ(
      frontends(RenderServices(Tables(), Names(), Filter({.addr = "10.244.1.0/24"}), OutputFormat::kJson)),
      web);
  EXPECT_EQ(frontends(RenderServices(Tables(), Names(), Filter({.port = "8080"}), OutputFormat::kJson)), web);
  EXPECT_EQ(frontends(RenderServices(Tables(), Names(), Filter({.proto = "UDP"}), OutputFormat::kJson)),
            std::vector<std::string>{"10.96.0.99:80/UDP"});
}

sync::ConntrackEntry Flow(const std::string& src, uint16_t sport, const std::string& dst, uint16_t dport,
                          uint8_t proto, const std::string& nat, uint16_t nat_port, uint32_t service_id) {
  sync::ConntrackEntry entry{};
  entry.key = abi::EncodeConntrackKey({Ip(src), sport, Ip(dst), dport, proto});
  entry.value.kind = WEIR_CT_FORWARD;
  entry.value.nat_addr = Addr(nat);
  entry.value.nat_port = htons(nat_port);
  entry.value.service_id = service_id;
  entry.value.backend_id = 7;
  entry.value.last_seen_ns = 1'000'000'000;
  return entry;
}

std::vector<sync::ConntrackEntry> Flows() {
  return {Flow("10.244.1.2", 40000, "10.96.0.10", 80, WEIR_PROTO_TCP, "10.244.1.5", 8080, 1),
          Flow("10.244.1.3", 40001, "10.96.0.99", 53, WEIR_PROTO_UDP, "10.244.2.9", 5353, 2),
          Flow("fd00::2", 40002, "fd00::10", 80, WEIR_PROTO_TCP, "fd00::5", 8080, 0)};
}

TEST(WeirctlConntrackTest, JsonHasEveryEntryWithNames) {
  rapidjson::Document doc =
      Parse(RenderConntrack(Flows(), 1000, 11'000'000'000, Names(), {}, OutputFormat::kJson));
  ASSERT_EQ(doc["entries"].Size(), 3u);
  EXPECT_EQ(doc["total"].GetUint(), 3u);
  EXPECT_EQ(doc["capacity"].GetUint(), 1000u);
  const auto& first = doc["entries"][0];
  EXPECT_STREQ(first["protocol"].GetString(), "TCP");
  EXPECT_STREQ(first["source"]["address"].GetString(), "10.244.1.2");
  EXPECT_EQ(first["destination"]["port"].GetUint(), 80u);
  EXPECT_STREQ(first["kind"].GetString(), "forward");
  EXPECT_STREQ(first["nat"]["address"].GetString(), "10.244.1.5");
  EXPECT_TRUE(first["snat"].IsNull());
  EXPECT_EQ(first["age_seconds"].GetUint(), 10u);
  EXPECT_STREQ(first["service"]["name"].GetString(), "web");
  EXPECT_TRUE(first["flags"].IsArray());
  // TCP before UDP, IPv4 before IPv6. No service (e.g. masquerade): null; an unnamed id: its id.
  EXPECT_STREQ(doc["entries"][1]["source"]["address"].GetString(), "fd00::2");
  EXPECT_TRUE(doc["entries"][1]["service"].IsNull());
  EXPECT_EQ(doc["entries"][2]["service"]["id"].GetUint(), 2u);
  EXPECT_TRUE(doc["entries"][2]["service"]["namespace"].IsNull());
}

TEST(WeirctlConntrackTest, FiltersByAddressPortAndProtocol) {
  auto sources = [](const FlowFilter& filter) {
    rapidjson::Document doc = Parse(RenderConntrack(Flows(), 1000, 0, Names(), filter, OutputFormat::kJson));
    std::vector<std::string> list;
    for (const auto& e : doc["entries"].GetArray()) list.push_back(e["source"]["address"].GetString());
    EXPECT_EQ(doc["total"].GetUint(), 3u);  // the total is before filtering
    return list;
  };
  using List = std::vector<std::string>;
  EXPECT_EQ(sources(Filter({.addr = "10.96.0.10"})), List{"10.244.1.2"});  // destination
  EXPECT_EQ(sources(Filter({.addr = "10.244.1.3"})), List{"10.244.1.3"});  // source
  EXPECT_EQ(sources(Filter({.addr = "10.244.2.9"})), List{"10.244.1.3"});  // the backend it went to
  EXPECT_EQ(sources(Filter({.addr = "fd00::/64"})), List{"fd00::2"});
  EXPECT_EQ(sources(Filter({.port = "80"})), (List{"10.244.1.2", "fd00::2"}));
  EXPECT_EQ(sources(Filter({.port = "5353"})), List{"10.244.1.3"});
  EXPECT_EQ(sources(Filter({.proto = "udp"})), List{"10.244.1.3"});
  EXPECT_EQ(sources(Filter({.addr = "10.96.0.10", .port = "80", .proto = "tcp"})), List{"10.244.1.2"});
  EXPECT_EQ(sources(Filter({.addr = "10.96.0.10", .proto = "udp"})), List{});
  EXPECT_EQ(sources(Filter({.service = "default/web"})), List{"10.244.1.2"});

  const std::string table =
      RenderConntrack(Flows(), 1000, 0, Names(), Filter({.proto = "udp"}), OutputFormat::kTable);
  EXPECT_NE(table.find("1 shown of 3 entries, capacity 1000"), std::string::npos) << table;
  EXPECT_NE(RenderConntrack(Flows(), 1000, 0, Names(), {}, OutputFormat::kTable).find("default/web:http"),
            std::string::npos);
}

TEST(WeirctlFilterTest, RejectsBadFlags) {
  EXPECT_FALSE(ParseFilter({.addr = "10.0.0.300"}).ok());
  EXPECT_FALSE(ParseFilter({.addr = "10.0.0.0/33"}).ok());
  EXPECT_FALSE(ParseFilter({.port = "0"}).ok());
  EXPECT_FALSE(ParseFilter({.port = "65536"}).ok());
  EXPECT_FALSE(ParseFilter({.port = "http"}).ok());
  EXPECT_FALSE(ParseFilter({.proto = "icmp"}).ok());
  EXPECT_FALSE(ParseFilter({.service = "web"}).ok());
  EXPECT_TRUE(ParseFilter({.service = "17"}).ok());
  EXPECT_TRUE(ParseFilter({.addr = "fd00::1", .port = "443", .proto = "SCTP"}).ok());
}

std::vector<uint8_t> Record(uint8_t type, const std::string& src, const std::string& dst,
                            uint32_t service_id) {
  weir_event ev{};
  ev.timestamp_ns = 5'000'000'000;
  ev.type = type;
  ev.family = FamilyOf(src);
  ev.proto = WEIR_PROTO_TCP;
  ev.saddr = Addr(src);
  ev.daddr = Addr(dst);
  ev.sport = htons(40000);
  ev.dport = htons(80);
  ev.service_id = service_id;
  ev.ifindex = 4;
  if (type == WEIR_EVENT_DROP) ev.reason = WEIR_METRIC_NO_BACKEND;
  if (type == WEIR_EVENT_TRANSLATION) {
    ev.nat_addr = Addr("10.244.1.5");
    ev.nat_port = htons(8080);
    ev.backend_id = 7;
  }
  std::vector<uint8_t> bytes(sizeof(ev));
  std::memcpy(bytes.data(), &ev, sizeof(ev));
  return bytes;
}

EventView Decode(const std::vector<uint8_t>& bytes) {
  std::optional<EventView> view = DecodeEvent(bytes.data(), bytes.size());
  EXPECT_TRUE(view.has_value());
  return view.value_or(EventView{});
}

TEST(WeirctlEventsTest, EachKindRendersAsOneJsonObjectPerLine) {
  rapidjson::Document drop =
      Parse(EventJson(Decode(Record(WEIR_EVENT_DROP, "10.244.1.2", "10.96.0.99", 2)), Names()));
  EXPECT_STREQ(drop["type"].GetString(), "drop");
  EXPECT_STREQ(drop["verdict"].GetString(), "dropped");
  EXPECT_STREQ(drop["reason"].GetString(), "no_backend");
  EXPECT_STREQ(drop["protocol"].GetString(), "TCP");
  EXPECT_STREQ(drop["family"].GetString(), "ipv4");
  EXPECT_STREQ(drop["destination"]["address"].GetString(), "10.96.0.99");
  EXPECT_TRUE(drop["backend"].IsNull());
  EXPECT_EQ(drop["service"]["id"].GetUint(), 2u);
  EXPECT_EQ(drop["timestamp_ns"].GetUint64(), 5'000'000'000u);
  EXPECT_EQ(std::string(drop["time"].GetString()).back(), 'Z');

  rapidjson::Document translate =
      Parse(EventJson(Decode(Record(WEIR_EVENT_TRANSLATION, "10.244.1.2", "10.96.0.10", 1)), Names()));
  EXPECT_STREQ(translate["type"].GetString(), "translate");
  EXPECT_STREQ(translate["verdict"].GetString(), "translated");
  EXPECT_STREQ(translate["backend"]["address"].GetString(), "10.244.1.5");
  EXPECT_EQ(translate["backend_id"].GetUint(), 7u);
  EXPECT_STREQ(translate["service"]["name"].GetString(), "web");

  const std::string line =
      EventLine(Decode(Record(WEIR_EVENT_TRANSLATION, "10.244.1.2", "10.96.0.10", 1)), Names());
  EXPECT_NE(
      line.find(
          "translate  TCP 10.244.1.2:40000 -> 10.96.0.10:80 => 10.244.1.5:8080 service=default/web:http"),
      std::string::npos)
      << line;

  // A kind this build does not know still shows, by number; a short record does not.
  EXPECT_EQ(Decode(Record(99, "10.244.1.2", "10.96.0.10", 0)).type, "type-99");
  EXPECT_FALSE(DecodeEvent(Record(WEIR_EVENT_DROP, "10.0.0.1", "10.0.0.2", 0).data(), 8).has_value());
}

TEST(WeirctlEventsTest, SocketRecordsHaveNoSourceAndNameTheSocket) {
  weir_event ev{};
  ev.timestamp_ns = 5'000'000'000;
  ev.type = WEIR_EVENT_SOCKET;
  ev.family = WEIR_FAMILY_IPV4;
  ev.proto = WEIR_PROTO_TCP;
  ev.daddr = Addr("10.96.0.99");
  ev.dport = htons(80);
  ev.reason = WEIR_METRIC_SOCK_CONNECT_REFUSED;
  ev.service_id = 2;
  ev.socket_cookie = 0x2a;
  ev.cgroup_id = 1234;
  const EventView refused = *DecodeEvent(&ev, sizeof(ev));
  rapidjson::Document doc = Parse(EventJson(refused, Names()));
  EXPECT_STREQ(doc["type"].GetString(), "socket");
  EXPECT_STREQ(doc["verdict"].GetString(), "refused");
  EXPECT_TRUE(doc["source"].IsNull());
  EXPECT_TRUE(doc["ifindex"].IsNull());
  EXPECT_TRUE(doc["backend"].IsNull());
  EXPECT_STREQ(doc["destination"]["address"].GetString(), "10.96.0.99");
  EXPECT_STREQ(doc["outcome"].GetString(), "sock_connect_refused");
  EXPECT_STREQ(doc["socket"].GetString(), "sk:2a");
  EXPECT_EQ(doc["cgroup_id"].GetUint(), 1234u);
  const std::string line = EventLine(refused, Names());
  EXPECT_NE(
      line.find(
          "socket     TCP 10.96.0.99:80 service=2 outcome=sock_connect_refused socket=sk:2a cgroup_id=1234"),
      std::string::npos)
      << line;
  EXPECT_EQ(line.find("->"), std::string::npos) << line;
  EXPECT_TRUE(EventMatches(refused, Filter({.verdict = "refused"}), Names()));
  EXPECT_TRUE(EventMatches(refused, Filter({.addr = "10.96.0.99", .type = "socket"}), Names()));
  EXPECT_FALSE(EventMatches(refused, Filter({.addr = "0.0.0.0"}), Names()));  // no source to match

  ev.reason = WEIR_METRIC_SOCK_CONNECT4_TRANSLATED;
  ev.nat_addr = Addr("10.244.1.5");
  ev.nat_port = htons(8080);
  ev.backend_id = 7;
  rapidjson::Document translated = Parse(EventJson(*DecodeEvent(&ev, sizeof(ev)), Names()));
  EXPECT_STREQ(translated["verdict"].GetString(), "translated");
  EXPECT_STREQ(translated["backend"]["address"].GetString(), "10.244.1.5");
  EXPECT_EQ(translated["backend_id"].GetUint(), 7u);
}

TEST(WeirctlEventsTest, FiltersByTypeVerdictAddressPortAndService) {
  const EventView drop = Decode(Record(WEIR_EVENT_DROP, "10.244.1.2", "10.96.0.99", 2));
  const EventView translate = Decode(Record(WEIR_EVENT_TRANSLATION, "10.244.1.3", "10.96.0.10", 1));
  auto matches = [](const EventView& event, FilterFlags flags) {
    return EventMatches(event, Filter(flags), Names());
  };
  EXPECT_TRUE(matches(drop, {.type = "drop"}));
  EXPECT_FALSE(matches(translate, {.type = "drop"}));
  EXPECT_TRUE(matches(translate, {.type = "drop,translate"}));
  EXPECT_TRUE(matches(drop, {.verdict = "dropped"}));
  EXPECT_FALSE(matches(drop, {.verdict = "translated"}));
  EXPECT_TRUE(matches(drop, {.addr = "10.244.1.2"}));  // source
  EXPECT_TRUE(matches(drop, {.addr = "10.96.0.99"}));  // destination
  EXPECT_FALSE(matches(drop, {.addr = "10.244.1.5"}));
  EXPECT_TRUE(matches(translate, {.addr = "10.244.1.5"}));  // the backend
  EXPECT_TRUE(matches(translate, {.port = "8080"}));
  EXPECT_TRUE(matches(drop, {.port = "40000"}));
  EXPECT_FALSE(matches(drop, {.port = "443"}));
  EXPECT_FALSE(matches(drop, {.proto = "udp"}));
  EXPECT_TRUE(matches(translate, {.service = "default/web"}));
  EXPECT_FALSE(matches(drop, {.service = "default/web"}));
  EXPECT_TRUE(matches(drop, {.service = "2"}));
  EXPECT_TRUE(matches(translate, {.addr = "10.96.0.10", .port = "80", .proto = "tcp", .type = "translate"}));
}

TEST(WeirctlNodeCommandsTest, JsonParses) {
  Endpoint pod{.address = *IpAddress::Parse("10.244.1.2"), .host_ifindex = 4, .pod_mac = {2, 0, 0, 0, 0, 1}};
  rapidjson::Document endpoints = Parse(RenderEndpoints({pod}, OutputFormat::kJson));
  EXPECT_STREQ(endpoints["endpoints"][0]["address"].GetString(), "10.244.1.2");
  EXPECT_EQ(endpoints["endpoints"][0]["ifindex"].GetUint(), 4u);
  EXPECT_STREQ(endpoints["endpoints"][0]["mac"].GetString(), "02:00:00:00:00:01");
  EXPECT_STREQ(endpoints["endpoints"][0]["kind"].GetString(), "pod");

  rapidjson::Document masquerade = Parse(
      RenderMasquerade({*IpPrefix::Parse("10.244.0.0/16")}, {{3, "eth0"}, {9, ""}}, OutputFormat::kJson));
  EXPECT_STREQ(masquerade["non_masquerade_cidrs"][0].GetString(), "10.244.0.0/16");
  EXPECT_STREQ(masquerade["uplinks"][0]["name"].GetString(), "eth0");
  EXPECT_TRUE(masquerade["uplinks"][1]["name"].IsNull());

  rapidjson::Document metrics = Parse(RenderMetrics(
      {{.id = WEIR_METRIC_NO_BACKEND, .name = "no_backend", .drop = true, .packets = 3, .bytes = 180}},
      OutputFormat::kJson));
  EXPECT_STREQ(metrics["counters"][0]["name"].GetString(), "no_backend");
  EXPECT_TRUE(metrics["counters"][0]["drop"].GetBool());
  EXPECT_EQ(metrics["counters"][0]["packets"].GetUint(), 3u);
}

TEST(WeirctlAffinityTest, JsonNamesTheServiceAndTellsActiveFromExpired) {
  AffinityEntry recent{}, old{};
  recent.key = abi::EncodeAffinityKey(Ip("192.168.1.10"), 1);
  recent.value.backend_id = 7;
  recent.value.last_used_ns = 900'000'000'000;
  old = recent;
  old.key = abi::EncodeAffinityKey(Ip("192.168.1.11"), 1);
  old.value.last_used_ns = 100'000'000'000;
  const ServiceTables tables = Tables();
  rapidjson::Document doc = Parse(RenderAffinity({recent, old}, tables.backends, {{1, 300}}, 1000'000'000'000,
                                                 Names(), {}, OutputFormat::kJson));
  ASSERT_EQ(doc["entries"].Size(), 2u);
  EXPECT_STREQ(doc["entries"][0]["client"].GetString(), "192.168.1.10");
  EXPECT_STREQ(doc["entries"][0]["service"]["name"].GetString(), "web");
  EXPECT_STREQ(doc["entries"][0]["backend"]["address"].GetString(), "10.244.1.5");
  EXPECT_STREQ(doc["entries"][0]["state"].GetString(), "active");
  EXPECT_STREQ(doc["entries"][1]["state"].GetString(), "expired");
  rapidjson::Document one =
      Parse(RenderAffinity({recent, old}, tables.backends, {{1, 300}}, 1000'000'000'000, Names(),
                           Filter({.addr = "192.168.1.11"}), OutputFormat::kJson));
  EXPECT_EQ(one["entries"].Size(), 1u);
}

TEST(WeirctlStatusTest, JsonHasAgentCountsProgramsLinksAndMaps) {
  StatusReport report{.now_unix_ns = 2'000'000'000'000'000'000};
  report.agent = AgentInfo{.version = "0.1.0",
                           .node_name = "node1",
                           .source = SyncSource::kKubernetes,
                           .lb_mode = "snat",
                           .dsr_dispatch = "ipip",
                           .node_port_acceleration = "generic",
                           .maglev = true,
                           .maglev_table_size = 1021,
                           .started_unix_ns = 1'999'999'000'000'000'000,
                           .last_sync_unix_ns = 1'999'999'990'000'000'000};
  report.services = 2;
  report.programs.push_back({.name = "from_pod", .id = 10, .type = "sched_cls", .tag = "00ff"});
  report.links.push_back({.pin = "uplinks/eth0",
                          .group = "uplinks",
                          .id = 3,
                          .type = "tcx",
                          .program_id = 11,
                          .attach_type = "tcx_ingress",
                          .attached = true,
                          .ifindex = 2,
                          .interface = "eth0"});
  report.maps.push_back(
      {.name = WEIR_CONNTRACK_MAP_NAME, .type = "lru_hash", .entries = 50, .capacity = 200});
  report.maps.push_back({.name = "weir_events", .type = "ringbuf", .capacity = 4096, .pending_bytes = 128});

  rapidjson::Document doc = Parse(RenderStatus(report, OutputFormat::kJson));
  EXPECT_STREQ(doc["agent"]["version"].GetString(), "0.1.0");
  EXPECT_STREQ(doc["agent"]["source"].GetString(), "kubernetes");
  EXPECT_EQ(doc["agent"]["last_sync_age_seconds"].GetUint(), 10u);
  EXPECT_TRUE(doc["agent"]["last_sync_error"].IsNull());
  EXPECT_TRUE(doc["agent"]["socket_lb_cgroup"].IsNull());
  EXPECT_STREQ(doc["agent"]["node_port_acceleration"].GetString(), "generic");
  EXPECT_EQ(doc["counts"]["services"].GetUint(), 2u);
  EXPECT_EQ(doc["counts"]["conntrack"].GetUint(), 50u);
  EXPECT_TRUE(doc["counts"]["frontends"].IsNull());  // the map was not read
  EXPECT_STREQ(doc["programs"][0]["name"].GetString(), "from_pod");
  EXPECT_TRUE(doc["links"][0]["attached"].GetBool());
  EXPECT_TRUE(doc["links"][0]["program"].IsNull());  // runs a program that is not pinned any more
  EXPECT_EQ(doc["maps"][0]["fill_percent"].GetDouble(), 25.0);
  EXPECT_TRUE(doc["maps"][1]["entries"].IsNull());
  EXPECT_EQ(doc["maps"][1]["pending_bytes"].GetUint(), 128u);

  const std::string table = RenderStatus(report, OutputFormat::kTable);
  EXPECT_NE(table.find("0.1.0 on node node1"), std::string::npos) << table;
  EXPECT_NE(table.find("id 11 (not pinned)"), std::string::npos) << table;
  EXPECT_NE(table.find("XDP generic"), std::string::npos) << table;
  EXPECT_NE(table.find("25.0%"), std::string::npos) << table;

  report.agent.reset();
  report.agent_missing = "not found";
  EXPECT_TRUE(Parse(RenderStatus(report, OutputFormat::kJson))["agent"].IsNull());
}

}  // namespace
}  // namespace weir::weirctl
