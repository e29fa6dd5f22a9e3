#include "cni/config.h"

#include <gtest/gtest.h>

#include "cni/error.h"
#include "rapidjson/document.h"

namespace weir::cni {
namespace {

constexpr const char* kMinimal =
    R"({"cniVersion":"1.0.0","name":"weir-net","type":"weir","podCIDRs":["10.244.1.0/24"]})";

IpPrefix Prefix(const std::string& text) { return *IpPrefix::Parse(text); }

void ExpectError(absl::string_view json, CniCode code, absl::string_view mentions) {
  absl::StatusOr<NetConfig> config = ParseNetConfig(json);
  ASSERT_FALSE(config.ok()) << json;
  EXPECT_EQ(CniCodeOf(config.status()), code) << config.status();
  EXPECT_NE(config.status().message().find(mentions), absl::string_view::npos) << config.status();
}

TEST(CniConfigTest, MinimalConfigGetsDefaults) {
  absl::StatusOr<NetConfig> config = ParseNetConfig(kMinimal);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->cni_version, "1.0.0");
  EXPECT_EQ(config->name, "weir-net");
  EXPECT_EQ(config->type, "weir");
  EXPECT_EQ(config->mtu, 1500);
  EXPECT_EQ(config->device_mode, DeviceMode::kVeth);
  EXPECT_EQ(config->pod_cidrs, std::vector<IpPrefix>{Prefix("10.244.1.0/24")});
  EXPECT_EQ(config->bpf_root, "/sys/fs/bpf/weir");
  EXPECT_EQ(config->data_dir, "/var/lib/cni/weir");
  EXPECT_EQ(config->log_file, "");
  EXPECT_EQ(config->log_level, LogLevel::kInfo);
  EXPECT_TRUE(config->dns.empty());
  EXPECT_FALSE(config->delegates_ipam());
  EXPECT_FALSE(config->prev_result.has_value());
  EXPECT_FALSE(config->valid_attachments.has_value());
  EXPECT_EQ(config->raw, kMinimal);
}

TEST(CniConfigTest, FullConfig) {
  const char* json = R"({
    "cniVersion": "1.1.0", "name": "weir-net", "type": "weir", "mtu": 1450,
    "podCIDRs": ["10.244.1.0/24", "fd00:10:244:1::/112"],
    "bpfRoot": "/sys/fs/bpf/test", "dataDir": "/tmp/weir-ipam",
    "logFile": "/var/log/weir.log", "logLevel": "debug",
    "dns": {"nameservers": ["10.96.0.10"], "domain": "cluster.local", "search": ["svc.cluster.local"],
            "options": ["ndots:5"]},
    "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]},
    "args": {"cni": {"labels": [{"key": "app", "value": "web"}]}},
    "prevResult": {"cniVersion": "1.1.0", "interfaces": [{"name": "eth0", "sandbox": "/proc/1/ns/net"}],
                   "ips": [{"address": "10.244.1.9/24", "interface": 0}]},
    "cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "eth0"}, {"containerID": "c2", "ifname": "net1"}],
    "somePluginSpecificField": {"ignored": true}
  })";
  absl::StatusOr<NetConfig> config = ParseNetConfig(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->mtu, 1450);
  EXPECT_EQ(config->pod_cidrs,
            (std::vector<IpPrefix>{Prefix("10.244.1.0/24"), Prefix("fd00:10:244:1::/112")}));
  EXPECT_EQ(config->bpf_root, "/sys/fs/bpf/test");
  EXPECT_EQ(config->data_dir, "/tmp/weir-ipam");
  EXPECT_EQ(config->log_file, "/var/log/weir.log");
  EXPECT_EQ(config->log_level, LogLevel::kDebug);
  EXPECT_EQ(config->dns.nameservers, std::vector<std::string>{"10.96.0.10"});
  EXPECT_EQ(config->dns.domain, "cluster.local");
  EXPECT_EQ(config->dns.options, std::vector<std::string>{"ndots:5"});
  EXPECT_EQ(config->runtime_config_raw,
            R"({"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]})");
  EXPECT_EQ(config->args_raw, R"({"cni":{"labels":[{"key":"app","value":"web"}]}})");
  ASSERT_TRUE(config->prev_result.has_value());
  EXPECT_EQ(config->prev_result->ips.at(0).address, Prefix("10.244.1.9/24"));
  EXPECT_EQ(config->prev_result->interfaces.at(0).sandbox, "/proc/1/ns/net");
  EXPECT_EQ(config->prev_result_raw,
            R"({"cniVersion":"1.1.0","interfaces":[{"name":"eth0","sandbox":"/proc/1/ns/net"}],)"
            R"("ips":[{"address":"10.244.1.9/24","interface":0}]})");
  ASSERT_TRUE(config->valid_attachments.has_value());
  EXPECT_EQ(*config->valid_attachments, (std::vector<ValidAttachment>{{"c1", "eth0"}, {"c2", "net1"}}));
}

TEST(CniConfigTest, DelegatedIpamKeepsRawObject) {
  const char* json = R"({"cniVersion":"0.4.0","name":"n","type":"weir",
    "ipam":{"type":"host-local","ranges":[[{"subnet":"10.10.0.0/16"}]],"dataDir":"/run/ipam"}})";
  absl::StatusOr<NetConfig> config = ParseNetConfig(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->delegates_ipam());
  EXPECT_EQ(config->ipam_type, "host-local");
  EXPECT_EQ(config->ipam_raw,
            R"({"type":"host-local","ranges":[[{"subnet":"10.10.0.0/16"}]],"dataDir":"/run/ipam"})");
  EXPECT_TRUE(config->pod_cidrs.empty());
  EXPECT_EQ(config->raw, json);
}

TEST(CniConfigTest, EmptyValidAttachmentsMeansNothingIsValid) {
  absl::StatusOr<NetConfig> config = ParseNetConfig(
      R"({"cniVersion":"1.1.0","name":"n","type":"weir","podCIDRs":["10.0.0.0/24"],"cni.dev/valid-attachments":[]})");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->valid_attachments.has_value());
  EXPECT_TRUE(config->valid_attachments->empty());
}

TEST(CniConfigTest, VersionFromCniVersionsList) {
  absl::StatusOr<NetConfig> config = ParseNetConfig(
      R"({"cniVersions":["0.4.0","1.1.0","1.0.0","9.9.9"],"name":"n","type":"weir","podCIDRs":["10.0.0.0/24"]})");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->cni_version, "1.1.0");
  EXPECT_EQ(config->cni_versions.size(), 4u);
}

TEST(CniConfigTest, VersionErrors) {
  ExpectError(R"({"name":"n","type":"weir","podCIDRs":["10.0.0.0/24"]})", CniCode::kIncompatibleVersion,
              "no cniVersion");
  ExpectError(R"({"cniVersion":"0.2.0","name":"n","type":"weir","podCIDRs":["10.0.0.0/24"]})",
              CniCode::kIncompatibleVersion, "0.2.0");
  ExpectError(R"({"cniVersions":["0.1.0"],"name":"n","type":"weir","podCIDRs":["10.0.0.0/24"]})",
              CniCode::kIncompatibleVersion, "0.1.0");
  absl::StatusOr<NetConfig> config =
      ParseNetConfig(R"({"cniVersion":"2.0.0","name":"n","type":"weir","podCIDRs":["10.0.0.0/24"]})");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(CniDetailsOf(config.status()).find("1.1.0"), std::string::npos);
}

TEST(CniConfigTest, PolicyFlag) {
  absl::StatusOr<NetConfig> plain = ParseNetConfig(kMinimal);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->policy);
  absl::StatusOr<NetConfig> policy = ParseNetConfig(
      R"({"cniVersion":"1.0.0","name":"n","type":"weir","policy":true,"podCIDRs":["10.0.0.0/24"]})");
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_TRUE(policy->policy);
  EXPECT_EQ(policy->policy_socket, "@weir-policy");  // a pending pod asks the agent for its policy
  EXPECT_EQ(plain->policy_socket, "");
  ExpectError(R"({"cniVersion":"1.0.0","name":"n","type":"weir","policy":"yes","podCIDRs":["10.0.0.0/24"]})",
              CniCode::kDecodeFailure, "policy must be a boolean");
}

TEST(CniConfigTest, DecodeErrors) {
  ExpectError("", CniCode::kDecodeFailure, "not valid JSON");
  ExpectError("{", CniCode::kDecodeFailure, "not valid JSON");
  ExpectError("[1]", CniCode::kDecodeFailure, "object");
  ExpectError(R"({"cniVersion":1,"name":"n","type":"weir"})", CniCode::kDecodeFailure, "cniVersion");
  ExpectError(R"({"cniVersion":"1.0.0","name":7,"type":"weir","podCIDRs":["10.0.0.0/24"]})",
              CniCode::kDecodeFailure, "name");
  ExpectError(R"({"cniVersion":"1.0.0","name":"n","type":"weir","mtu":"1500","podCIDRs":["10.0.0.0/24"]})",
              CniCode::kDecodeFailure, "mtu");
  ExpectError(R"({"cniVersion":"1.0.0","name":"n","type":"weir","podCIDRs":"10.0.0.0/24"})",
              CniCode::kDecodeFailure, "podCIDRs");
  ExpectError(R"({"cniVersion":"1.0.0","name":"n","type":"weir","podCIDRs":[24]})", CniCode::kDecodeFailure,
              "podCIDRs");
  ExpectError(R"({"cniVersion":"1.0.0","name":"n","type":"weir","ipam":"host-local"})",
              CniCode::kDecodeFailure, "ipam");
  ExpectError(R"({"cniVersion":"1.0.0","name":"n","type":"weir","ipam":{"type":1}})", CniCode::kDecodeFailure,
              "ipam.type");
  ExpectError(R"({"cniVersion":"1.0.0","name":"n","type":"weir","podCIDRs":["10.0.0.0/24"],"dns":[]})",
              CniCode::kDecodeFailure, "dns");
  ExpectError(R"({"cniVersion":"1.0.0","name":"n","type":"weir","podCIDRs":["10.0.0.0/24"],
                  "prevResult":{"ips":[{"address":"nope"}]}})",
              CniCode::kDecodeFailure, "prevResult.ips[0].address");
  ExpectError(R"({"cniVersion":"1.1.0","name":"n","type":"weir","podCIDRs":["10.0.0.0/24"],
                  "cni.dev/valid-attachments":[{"containerID":1}]})",
              CniCode::kDecodeFailure, "valid-attachments");
}

TEST(CniConfigTest, SemanticErrors) {
  ExpectError(R"({"cniVersion":"1.0.0","type":"weir","podCIDRs":["10.0.0.0/24"]})",
              CniCode::kInvalidNetworkConfig, "name");
  ExpectError(R"({"cniVersion":"1.0.0","name":"-bad","type":"weir","podCIDRs":["10.0.0.0/24"]})",
              CniCode::kInvalidNetworkConfig, "-bad");
  ExpectError(R"({"cniVersion":"1.0.0","name":"a/b","type":"weir","podCIDRs":["10.0.0.0/24"]})",
              CniCode::kInvalidNetworkConfig, "a/b");
  ExpectError(R"({"cniVersion":"1.0.0","name":"n","podCIDRs":["10.0.0.0/24"]})",
              CniCode::kInvalidNetworkConfig, "type");
  ExpectError(R"({"cniVersion":"1.0.0","name":"n","type":"weir"})", CniCode::kInvalidNetworkConfig,
              "podCIDRs");
  ExpectError(R"({"cniVersion":"1.0.0","name":"n","type":"weir","ipam":{}})", CniCode::kInvalidNetworkConfig,
              "ipam.type");
  ExpectError(R"({"cniVersion":"1.0.0","name":"n","type":"weir","podCIDRs":["10.0.0.0/24"],
                  "ipam":{"type":"host-local"}})",
              CniCode::kInvalidNetworkConfig, "both");
  ExpectError(R"({"cniVersion":"1.0.0","name":"n","type":"weir","ipam":{"type":"../evil"}})",
              CniCode::kInvalidNetworkConfig, "../evil");
  ExpectError(R"({"cniVersion":"1.0.0","name":"n","type":"weir","podCIDRs":["10.0.0.0/33"]})",
              CniCode::kInvalidNetworkConfig, "10.0.0.0/33");
  ExpectError(R"({"cniVersion":"1.0.0","name":"n","type":"weir","podCIDRs":["10.0.0.5/24"]})",
              CniCode::kInvalidNetworkConfig, "10.0.0.0/24");
  ExpectError(R"({"cniVersion":"1.0.0","name":"n","type":"weir","podCIDRs":["10.0.0.0/24","10.1.0.0/24"]})",
              CniCode::kInvalidNetworkConfig, "at most one IPv4");
  ExpectError(R"({"cniVersion":"1.0.0","name":"n","type":"weir","podCIDRs":["fd00::/64","fd01::/64"]})",
              CniCode::kInvalidNetworkConfig, "at most one IPv6");
  ExpectError(R"({"cniVersion":"1.0.0","name":"n","type":"weir","podCIDRs":["10.0.0.0/31"]})",
              CniCode::kInvalidNetworkConfig, "too small");
  ExpectError(R"({"cniVersion":"1.0.0","name":"n","type":"weir","mtu":100,"podCIDRs":["10.0.0.0/24"]})",
              CniCode::kInvalidNetworkConfig, "mtu");
  ExpectError(R"({"cniVersion":"1.0.0","name":"n","type":"weir","mtu":70000,"podCIDRs":["10.0.0.0/24"]})",
              CniCode::kInvalidNetworkConfig, "mtu");
  ExpectError(R"({"cniVersion":"1.0.0","name":"n","type":"weir","mtu":1000,"podCIDRs":["fd00::/64"]})",
              CniCode::kInvalidNetworkConfig, "IPv6");
  ExpectError(
      R"({"cniVersion":"1.0.0","name":"n","type":"weir","podCIDRs":["10.0.0.0/24"],"logLevel":"trace"})",
      CniCode::kInvalidNetworkConfig, "trace");
  ExpectError(R"({"cniVersion":"1.0.0","name":"n","type":"weir","podCIDRs":["10.0.0.0/24"],"dataDir":"rel"})",
              CniCode::kInvalidNetworkConfig, "dataDir");
}

TEST(CniConfigTest, DeviceMode) {
  absl::StatusOr<NetConfig> netkit = ParseNetConfig(
      R"({"cniVersion":"1.0.0","name":"n","type":"weir","podCIDRs":["10.0.0.0/24"],"deviceMode":"netkit"})");
  ASSERT_TRUE(netkit.ok()) << netkit.status();
  EXPECT_EQ(netkit->device_mode, DeviceMode::kNetkit);
  absl::StatusOr<NetConfig> veth = ParseNetConfig(
      R"({"cniVersion":"1.0.0","name":"n","type":"weir","podCIDRs":["10.0.0.0/24"],"deviceMode":"veth"})");
  ASSERT_TRUE(veth.ok()) << veth.status();
  EXPECT_EQ(veth->device_mode, DeviceMode::kVeth);

  ExpectError(
      R"({"cniVersion":"1.0.0","name":"n","type":"weir","podCIDRs":["10.0.0.0/24"],"deviceMode":"ipvlan"})",
      CniCode::kInvalidNetworkConfig, "deviceMode \"ipvlan\" is not one of veth, netkit");
  ExpectError(
      R"({"cniVersion":"1.0.0","name":"n","type":"weir","podCIDRs":["10.0.0.0/24"],"deviceMode":"Netkit"})",
      CniCode::kInvalidNetworkConfig, "Netkit");
  ExpectError(R"({"cniVersion":"1.0.0","name":"n","type":"weir","podCIDRs":["10.0.0.0/24"],"deviceMode":1})",
              CniCode::kDecodeFailure, "deviceMode");
}

TEST(CniVersionTest, Compare) {
  EXPECT_TRUE(VersionAtLeast("1.1.0", "1.0.0"));
  EXPECT_TRUE(VersionAtLeast("1.0.0", "1.0.0"));
  EXPECT_FALSE(VersionAtLeast("0.4.0", "1.0.0"));
  EXPECT_TRUE(VersionAtLeast("0.10.0", "0.4.0"));  // numeric, not lexicographic
  EXPECT_FALSE(VersionAtLeast("1.0", "0.1.0"));
  EXPECT_FALSE(VersionAtLeast("x.y.z", "0.1.0"));
  EXPECT_TRUE(IsSupportedVersion("0.3.1"));
  EXPECT_FALSE(IsSupportedVersion("0.2.0"));
}

TEST(CniVersionTest, CommandsNeedTheVersionThatDefinesThem) {
  for (const char* version : {"0.3.0", "0.3.1"}) {
    absl::Status refused = RequireVersionFor("CHECK", version, kCheckSince);
    EXPECT_EQ(CniCodeOf(refused), CniCode::kIncompatibleVersion) << version;
    EXPECT_NE(refused.message().find("CHECK"), absl::string_view::npos) << refused;
  }
  for (const char* version : {"0.4.0", "1.0.0", "1.1.0"}) {
    EXPECT_TRUE(RequireVersionFor("CHECK", version, kCheckSince).ok()) << version;
  }
  for (const char* version : {"0.3.0", "0.3.1", "0.4.0", "1.0.0"}) {
    EXPECT_EQ(CniCodeOf(RequireVersionFor("GC", version, kStatusAndGcSince)), CniCode::kIncompatibleVersion)
        << version;
  }
  EXPECT_TRUE(RequireVersionFor("STATUS", "1.1.0", kStatusAndGcSince).ok());
}

TEST(CniVersionTest, VersionInfo) {
  rapidjson::Document document;
  document.Parse(VersionInfoJson("1.0.0").c_str());
  ASSERT_TRUE(document.IsObject());
  EXPECT_STREQ(document["cniVersion"].GetString(), "1.0.0");
  ASSERT_EQ(document["supportedVersions"].Size(), kSupportedVersions.size());
  EXPECT_STREQ(document["supportedVersions"][4].GetString(), "1.1.0");

  EXPECT_EQ(VersionInfoJson(""),
            R"({"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]})");
  document.Parse(VersionInfoJson("5.0.0").c_str());
  EXPECT_STREQ(document["cniVersion"].GetString(), "1.1.0");
}

TEST(CniVersionTest, ParseVersionRequest) {
  EXPECT_EQ(*ParseVersionRequest(R"({"cniVersion":"0.4.0"})"), "0.4.0");
  EXPECT_EQ(*ParseVersionRequest(""), "");
  EXPECT_EQ(*ParseVersionRequest(" \n"), "");
  EXPECT_EQ(*ParseVersionRequest("{}"), "");
  EXPECT_EQ(CniCodeOf(ParseVersionRequest("{").status()), CniCode::kDecodeFailure);
}

}  // namespace
}  // namespace weir::cni
