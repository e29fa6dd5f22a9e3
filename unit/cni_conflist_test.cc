// The conflist weir-agent installs, read the way libcni reads it: the list's cniVersion (libcni
// before 1.2) or the newest of cniVersions it knows (1.2+), injected with the list's name into each
// plugin's config.
#include <gtest/gtest.h>

#include "cni/config.h"
#include "proxy/agent/cni_config_writer.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace weir::agent {
namespace {

CniConfigSettings Settings() {
  return {.conf_dir = "/etc/cni/net.d",
          .pod_cidrs = {*IpPrefix::Parse("10.244.1.0/24"), *IpPrefix::Parse("fd00:10:244:1::/112")},
          .bpf_root = "/sys/fs/bpf/weir",
          .data_dir = "/var/lib/cni/weir",
          .mtu = 1450};
}

// The config libcni hands the plugin at `index` for list version `version`.
std::string PluginConfig(const rapidjson::Document& list, size_t index, const char* version) {
  rapidjson::Document plugin;
  plugin.CopyFrom(list["plugins"][static_cast<rapidjson::SizeType>(index)], plugin.GetAllocator());
  plugin.AddMember("name", rapidjson::Value(list["name"], plugin.GetAllocator()), plugin.GetAllocator());
  plugin.AddMember("cniVersion", rapidjson::StringRef(version), plugin.GetAllocator());
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  plugin.Accept(writer);
  return buffer.GetString();
}

TEST(CniConflistTest, OldestNeededVersionFirstNewerInCniVersions) {
  rapidjson::Document list;
  list.Parse(RenderCniConflist(Settings()).c_str());
  ASSERT_FALSE(list.HasParseError());
  // libcni 1.1 (containerd 1.6) uses this one for the whole chain, portmap 1.1 included.
  EXPECT_STREQ(list["cniVersion"].GetString(), "1.0.0");
  ASSERT_TRUE(list["cniVersions"].IsArray());
  ASSERT_EQ(list["cniVersions"].Size(), 2u);
  EXPECT_STREQ(list["cniVersions"][0].GetString(), "1.0.0");
  EXPECT_STREQ(list["cniVersions"][1].GetString(), "1.1.0");
  ASSERT_EQ(list["plugins"].Size(), 2u);
  EXPECT_STREQ(list["plugins"][0]["type"].GetString(), "weir");
  EXPECT_STREQ(list["plugins"][1]["type"].GetString(), "portmap");
}

TEST(CniConflistTest, WeirTakesTheBandwidthCapabilityItself) {
  // The runtime hands runtimeConfig.bandwidth only to plugins that declare it; no `bandwidth` plugin
  // is chained, since it would limit nothing behind weir's datapath (docs/bandwidth.md).
  rapidjson::Document list;
  list.Parse(RenderCniConflist(Settings()).c_str());
  ASSERT_FALSE(list.HasParseError());
  EXPECT_TRUE(list["plugins"][0]["capabilities"]["bandwidth"].GetBool());
  for (const rapidjson::Value& plugin : list["plugins"].GetArray())
    EXPECT_STRNE(plugin["type"].GetString(), "bandwidth");
}

TEST(CniConflistTest, WeirAcceptsItsEntryInEveryListedVersion) {
  rapidjson::Document list;
  list.Parse(RenderCniConflist(Settings()).c_str());
  ASSERT_FALSE(list.HasParseError());
  for (const rapidjson::Value& version : list["cniVersions"].GetArray()) {
    auto config = cni::ParseNetConfig(PluginConfig(list, 0, version.GetString()));
    ASSERT_TRUE(config.ok()) << version.GetString() << ": " << config.status();
    EXPECT_EQ(config->cni_version, version.GetString());
    EXPECT_EQ(config->name, "weir");
    EXPECT_EQ(config->mtu, 1450);
    EXPECT_EQ(config->bpf_root, "/sys/fs/bpf/weir");
    EXPECT_EQ(config->data_dir, "/var/lib/cni/weir");
    EXPECT_EQ(config->pod_cidrs, Settings().pod_cidrs);
  }
}

TEST(CniConflistTest, DeviceModeIsTheSetting) {
  for (const char* mode : {"veth", "netkit"}) {
    CniConfigSettings settings = Settings();
    settings.device_mode = mode;
    rapidjson::Document list;
    list.Parse(RenderCniConflist(settings).c_str());
    auto config = cni::ParseNetConfig(PluginConfig(list, 0, "1.0.0"));
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(cni::DeviceModeName(config->device_mode), mode);
  }
}

TEST(CniConflistTest, DataDirIsTheSetting) {
  CniConfigSettings settings = Settings();
  settings.data_dir = "/run/weir-lab/ipam";
  rapidjson::Document list;
  list.Parse(RenderCniConflist(settings).c_str());
  auto config = cni::ParseNetConfig(PluginConfig(list, 0, "1.0.0"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->data_dir, "/run/weir-lab/ipam");
}

TEST(CniConflistTest, PolicyAsksTheAgentOnItsSocket) {
  rapidjson::Document list;
  list.Parse(RenderCniConflist(Settings()).c_str());
  auto off = cni::ParseNetConfig(PluginConfig(list, 0, "1.0.0"));
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ(off->policy_socket, "");  // no request without policy
  CniConfigSettings settings = Settings();
  settings.policy = true;
  settings.policy_socket = "@weir-policy";
  settings.policy_timeout_ms = 1500;
  list.Parse(RenderCniConflist(settings).c_str());
  ASSERT_FALSE(list.HasParseError());
  EXPECT_TRUE(list["plugins"][0]["policy"].GetBool());  // ADD starts the pod denied
  auto on = cni::ParseNetConfig(PluginConfig(list, 0, "1.0.0"));
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_EQ(on->policy_socket, "@weir-policy");
  EXPECT_EQ(on->policy_timeout_ms, 1500);
}

}  // namespace
}  // namespace weir::agent
