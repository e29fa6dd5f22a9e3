#include "cni/result.h"

#include <gtest/gtest.h>

#include "cni/error.h"
#include "cni/version.h"
#include "rapidjson/document.h"

namespace weir::cni {
namespace {

IpPrefix Prefix(const std::string& text) { return *IpPrefix::Parse(text); }
IpAddress Address(const std::string& text) { return *IpAddress::Parse(text); }

// A dual-stack result using every field, including the 1.1.0-only ones.
Result FullResult() {
  Result result;
  result.interfaces.push_back({.name = "weir1a2b3c", .mac = "0a:58:0a:f4:01:05", .mtu = 1450});
  result.interfaces.push_back({.name = "eth0",
                               .mac = "0a:58:0a:f4:01:06",
                               .mtu = 1450,
                               .sandbox = "/var/run/netns/pod",
                               .socket_path = "/run/vhost.sock",
                               .pci_id = "0000:00:1f.6"});
  result.ips.push_back({Prefix("10.244.1.5/24"), Address("169.254.1.1"), 1});
  result.ips.push_back({Prefix("fd00:10:244:1::5/112"), Address("fe80::1"), 1});
  result.routes.push_back({.dst = Prefix("0.0.0.0/0"), .gw = Address("169.254.1.1")});
  result.routes.push_back({.dst = Prefix("::/0"),
                           .gw = Address("fe80::1"),
                           .mtu = 1400,
                           .advmss = 1360,
                           .priority = 10,
                           .table = 254,
                           .scope = 0});
  result.dns = {.nameservers = {"10.96.0.10"},
                .domain = "cluster.local",
                .search = {"default.svc.cluster.local", "svc.cluster.local"},
                .options = {"ndots:5"}};
  return result;
}

rapidjson::Document ParseJson(const std::string& json) {
  rapidjson::Document document;
  document.Parse(json.c_str());
  EXPECT_FALSE(document.HasParseError()) << json;
  return document;
}

TEST(CniResultTest, RoundTrip110KeepsEverything) {
  const Result original = FullResult();
  const std::string json = ResultJson(original, "1.1.0");
  absl::StatusOr<Result> parsed = ParseResult(json);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->cni_version, "1.1.0");
  Result expected = original;
  expected.cni_version = "1.1.0";
  EXPECT_EQ(*parsed, expected) << json;
  // Serializing the parsed result again is byte-identical.
  EXPECT_EQ(ResultJson(*parsed, "1.1.0"), json);
}

TEST(CniResultTest, V100DropsNewFieldsAndVersion) {
  const std::string json = ResultJson(FullResult(), "1.0.0");
  rapidjson::Document document = ParseJson(json);
  EXPECT_STREQ(document["cniVersion"].GetString(), "1.0.0");
  EXPECT_FALSE(document["interfaces"][1].HasMember("mtu"));
  EXPECT_FALSE(document["interfaces"][1].HasMember("socketPath"));
  EXPECT_FALSE(document["interfaces"][1].HasMember("pciID"));
  EXPECT_FALSE(document["ips"][0].HasMember("version"));
  EXPECT_FALSE(document["routes"][1].HasMember("mtu"));
  EXPECT_FALSE(document["routes"][1].HasMember("table"));
  EXPECT_STREQ(document["ips"][0]["address"].GetString(), "10.244.1.5/24");
  EXPECT_EQ(document["ips"][0]["interface"].GetInt(), 1);
  EXPECT_STREQ(document["interfaces"][1]["sandbox"].GetString(), "/var/run/netns/pod");
  EXPECT_FALSE(document["interfaces"][0].HasMember("sandbox"));  // host side

  absl::StatusOr<Result> parsed = ParseResult(json);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->ips, FullResult().ips);
  EXPECT_EQ(parsed->dns, FullResult().dns);
  EXPECT_EQ(parsed->interfaces[1].mtu, 0);
}

TEST(CniResultTest, V040AddsIpVersion) {
  for (const char* version : {"0.3.0", "0.3.1", "0.4.0"}) {
    const std::string json = ResultJson(FullResult(), version);
    rapidjson::Document document = ParseJson(json);
    EXPECT_STREQ(document["ips"][0]["version"].GetString(), "4") << version;
    EXPECT_STREQ(document["ips"][1]["version"].GetString(), "6") << version;
    absl::StatusOr<Result> parsed = ParseResult(json);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->ips, FullResult().ips);
    EXPECT_EQ(parsed->routes[0], FullResult().routes[0]);
  }
}

TEST(CniResultTest, EmptyPartsAreOmitted) {
  Result ipam_only;
  ipam_only.ips.push_back({Prefix("10.1.0.2/16"), std::nullopt, std::nullopt});
  EXPECT_EQ(ResultJson(ipam_only, "1.0.0"), R"({"cniVersion":"1.0.0","ips":[{"address":"10.1.0.2/16"}]})");
  EXPECT_EQ(ResultJson(Result{}, "1.1.0"), R"({"cniVersion":"1.1.0"})");
}

TEST(CniResultTest, ParsesHostLocalOutput) {
  // What host-local prints for a 0.4.0 dual-stack config.
  const char* json = R"({
    "cniVersion": "0.4.0",
    "ips": [
      {"version": "4", "address": "10.1.2.3/24", "gateway": "10.1.2.1"},
      {"version": "6", "address": "2001:db8::3/64", "gateway": "2001:db8::1"}
    ],
    "routes": [{"dst": "0.0.0.0/0"}],
    "dns": {}
  })";
  absl::StatusOr<Result> parsed = ParseResult(json);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->ips.size(), 2u);
  EXPECT_EQ(parsed->ips[0].address, Prefix("10.1.2.3/24"));
  EXPECT_EQ(parsed->ips[0].gateway, Address("10.1.2.1"));
  EXPECT_FALSE(parsed->ips[0].interface.has_value());
  EXPECT_EQ(parsed->ips[1].address, Prefix("2001:db8::3/64"));
  EXPECT_EQ(parsed->routes.size(), 1u);
  EXPECT_FALSE(parsed->routes[0].gw.has_value());
  EXPECT_TRUE(parsed->dns.empty());
  EXPECT_TRUE(parsed->interfaces.empty());
}

TEST(CniResultTest, NullsAreAbsent) {
  absl::StatusOr<Result> parsed = ParseResult(
      R"({"cniVersion":"1.0.0","interfaces":null,"ips":[{"address":"10.0.0.2/8","gateway":null}]})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_FALSE(parsed->ips[0].gateway.has_value());
}

// What weir's ADD returns for a dual-stack pod (cni/commands.cc BuildResult), in each version's
// exact form: the result a runtime of that version parses (libcni's types/040 for 0.3.0-0.4.0,
// types/100 for 1.0.0 and 1.1.0).
Result WeirAddResult() {
  Result result;
  result.interfaces.push_back({.name = "weir0123456789a", .mac = "ee:ee:ee:ee:ee:ee", .mtu = 1500});
  result.interfaces.push_back(
      {.name = "eth0", .mac = "0a:58:0a:f4:01:05", .mtu = 1500, .sandbox = "/var/run/netns/pod"});
  result.ips.push_back({Prefix("10.244.1.5/32"), Address("169.254.1.1"), 1});
  result.ips.push_back({Prefix("fd00:10:244:1::5/128"), Address("fe80::1"), 1});
  result.routes.push_back({.dst = Prefix("0.0.0.0/0"), .gw = Address("169.254.1.1")});
  result.routes.push_back({.dst = Prefix("::/0"), .gw = Address("fe80::1")});
  result.dns = {.nameservers = {"10.96.0.10"}};
  return result;
}

TEST(CniResultTest, WeirAddResultInEachSupportedVersion) {
  const std::string host_pre_1_1 = R"({"name":"weir0123456789a","mac":"ee:ee:ee:ee:ee:ee"})";
  const std::string pod_pre_1_1 =
      R"({"name":"eth0","mac":"0a:58:0a:f4:01:05","sandbox":"/var/run/netns/pod"})";
  const std::string ips_pre_1_0 =
      R"([{"version":"4","address":"10.244.1.5/32","gateway":"169.254.1.1","interface":1},)"
      R"({"version":"6","address":"fd00:10:244:1::5/128","gateway":"fe80::1","interface":1}])";
  const std::string ips_1_0 = R"([{"address":"10.244.1.5/32","gateway":"169.254.1.1","interface":1},)"
                              R"({"address":"fd00:10:244:1::5/128","gateway":"fe80::1","interface":1}])";
  const std::string tail =
      R"("routes":[{"dst":"0.0.0.0/0","gw":"169.254.1.1"},{"dst":"::/0","gw":"fe80::1"}],)"
      R"("dns":{"nameservers":["10.96.0.10"]}})";
  const std::pair<const char*, std::string> expected[] = {
      {"0.3.0", R"({"cniVersion":"0.3.0","interfaces":[)" + host_pre_1_1 + "," + pod_pre_1_1 + R"(],"ips":)" +
                    ips_pre_1_0 + "," + tail},
      {"0.3.1", R"({"cniVersion":"0.3.1","interfaces":[)" + host_pre_1_1 + "," + pod_pre_1_1 + R"(],"ips":)" +
                    ips_pre_1_0 + "," + tail},
      {"0.4.0", R"({"cniVersion":"0.4.0","interfaces":[)" + host_pre_1_1 + "," + pod_pre_1_1 + R"(],"ips":)" +
                    ips_pre_1_0 + "," + tail},
      {"1.0.0", R"({"cniVersion":"1.0.0","interfaces":[)" + host_pre_1_1 + "," + pod_pre_1_1 + R"(],"ips":)" +
                    ips_1_0 + "," + tail},
      {"1.1.0",
       R"({"cniVersion":"1.1.0","interfaces":[{"name":"weir0123456789a","mac":"ee:ee:ee:ee:ee:ee",)"
       R"("mtu":1500},{"name":"eth0","mac":"0a:58:0a:f4:01:05","mtu":1500,"sandbox":"/var/run/netns/pod"}],)"
       R"("ips":)" +
           ips_1_0 + "," + tail},
  };
  ASSERT_EQ(std::size(expected), kSupportedVersions.size());
  for (const auto& [version, json] : expected) {
    EXPECT_EQ(ResultJson(WeirAddResult(), version), json) << version;
    // ... and it reads back as the same result (as weir reads a prevResult of that version).
    absl::StatusOr<Result> parsed = ParseResult(json);
    ASSERT_TRUE(parsed.ok()) << version << ": " << parsed.status();
    Result expected_back = WeirAddResult();
    expected_back.cni_version = version;
    if (!VersionAtLeast(version, "1.1.0")) {
      for (Interface& interface : expected_back.interfaces) interface.mtu = 0;
    }
    EXPECT_EQ(*parsed, expected_back) << version;
  }
}

void ExpectDecodeFailure(absl::string_view json, absl::string_view mentions) {
  absl::StatusOr<Result> parsed = ParseResult(json);
  ASSERT_FALSE(parsed.ok()) << json;
  EXPECT_EQ(CniCodeOf(parsed.status()), CniCode::kDecodeFailure) << parsed.status();
  EXPECT_NE(parsed.status().message().find(mentions), absl::string_view::npos) << parsed.status();
}

TEST(CniResultTest, RejectsBadResults) {
  ExpectDecodeFailure("not json", "not valid JSON");
  ExpectDecodeFailure("[]", "object");
  ExpectDecodeFailure(R"({"ips":{}})", "ips");
  ExpectDecodeFailure(R"({"ips":[{}]})", "address");
  ExpectDecodeFailure(R"({"ips":[{"address":"10.0.0.1"}]})", "ips[0].address");
  ExpectDecodeFailure(R"({"ips":[{"address":"10.0.0.1/24","gateway":"fe80::1"}]})", "gateway");
  ExpectDecodeFailure(R"({"ips":[{"version":"6","address":"10.0.0.1/24"}]})", "version");
  ExpectDecodeFailure(R"({"ips":[{"address":"10.0.0.1/24","interface":-1}]})", "interface");
  ExpectDecodeFailure(R"({"interfaces":[{"name":"eth0"}],"ips":[{"address":"10.0.0.1/24","interface":1}]})",
                      "interface");
  ExpectDecodeFailure(R"({"routes":[{"gw":"10.0.0.1"}]})", "dst");
  ExpectDecodeFailure(R"({"routes":[{"dst":"0.0.0.0/0","table":"main"}]})", "table");
  ExpectDecodeFailure(R"({"interfaces":[{"name":5}]})", "interfaces[0].name");
  ExpectDecodeFailure(R"({"dns":{"nameservers":"10.0.0.10"}})", "dns.nameservers");
}

}  // namespace
}  // namespace weir::cni
