#include "cni/env.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "cni/error.h"

namespace weir::cni {
namespace {

// A fake environment: only the given variables are set.
absl::StatusOr<CniEnv> Parse(const std::map<std::string, std::string>& vars) {
  return ParseCniEnv([&vars](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

std::map<std::string, std::string> AddEnv() {
  return {{"CNI_COMMAND", "ADD"},
          {"CNI_CONTAINERID", "abc123"},
          {"CNI_NETNS", "/var/run/netns/pod"},
          {"CNI_IFNAME", "eth0"},
          {"CNI_PATH", "/opt/cni/bin::/usr/lib/cni"}};
}

void ExpectInvalidEnv(const absl::StatusOr<CniEnv>& env, absl::string_view mentions) {
  ASSERT_FALSE(env.ok());
  EXPECT_EQ(CniCodeOf(env.status()), CniCode::kInvalidEnv);
  EXPECT_NE(env.status().message().find(mentions), absl::string_view::npos) << env.status();
}

TEST(CniEnvTest, ParsesAdd) {
  absl::StatusOr<CniEnv> env = Parse(AddEnv());
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->command, CniCommand::kAdd);
  EXPECT_EQ(env->container_id, "abc123");
  EXPECT_EQ(env->netns, "/var/run/netns/pod");
  EXPECT_EQ(env->ifname, "eth0");
  EXPECT_EQ(env->path, (std::vector<std::string>{"/opt/cni/bin", "/usr/lib/cni"}));
  EXPECT_TRUE(env->args.empty());
}

TEST(CniEnvTest, ParsesKubernetesArgs) {
  auto vars = AddEnv();
  vars["CNI_ARGS"] =
      "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;"
      "K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=1234-5678;FOO=bar=baz;";
  absl::StatusOr<CniEnv> env = Parse(vars);
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_TRUE(env->ignore_unknown_args);
  EXPECT_EQ(env->k8s_pod_namespace, "default");
  EXPECT_EQ(env->k8s_pod_name, "web-0");
  EXPECT_EQ(env->k8s_pod_infra_container_id, "abc123");
  EXPECT_EQ(env->k8s_pod_uid, "1234-5678");
  EXPECT_EQ(env->args.at("FOO"), "bar=baz");  // only the first '=' separates
  EXPECT_EQ(env->args.size(), 6u);
}

TEST(CniEnvTest, UnknownArgsNeedIgnoreUnknown) {
  auto vars = AddEnv();
  vars["CNI_ARGS"] = "K8S_POD_NAME=web-0;FOO=bar";
  ExpectInvalidEnv(Parse(vars), "FOO");
  vars["CNI_ARGS"] = "K8S_POD_NAME=web-0;FOO=bar;IgnoreUnknown=true";
  EXPECT_TRUE(Parse(vars).ok());
  vars["CNI_ARGS"] = "FOO=bar;IgnoreUnknown=0";
  ExpectInvalidEnv(Parse(vars), "FOO");
  vars["CNI_ARGS"] = "IgnoreUnknown=maybe";
  ExpectInvalidEnv(Parse(vars), "IgnoreUnknown");
  // VERSION never fails over CNI_ARGS.
  EXPECT_TRUE(Parse({{"CNI_COMMAND", "VERSION"}, {"CNI_ARGS", "FOO=bar"}}).ok());
}

TEST(CniEnvTest, RejectsMalformedArgs) {
  auto vars = AddEnv();
  vars["CNI_ARGS"] = "K8S_POD_NAME";
  ExpectInvalidEnv(Parse(vars), "KEY=VALUE");
  vars["CNI_ARGS"] = "=value";
  ExpectInvalidEnv(Parse(vars), "KEY=VALUE");
}

TEST(CniEnvTest, AddAndCheckNeedContainerNetnsIfname) {
  for (const char* command : {"ADD", "CHECK"}) {
    for (const char* missing : {"CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"}) {
      auto vars = AddEnv();
      vars["CNI_COMMAND"] = command;
      vars.erase(missing);
      ExpectInvalidEnv(Parse(vars), missing);
    }
  }
}

TEST(CniEnvTest, DelAllowsMissingNetns) {
  auto vars = AddEnv();
  vars["CNI_COMMAND"] = "DEL";
  vars.erase("CNI_NETNS");
  absl::StatusOr<CniEnv> env = Parse(vars);
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->command, CniCommand::kDel);
  EXPECT_EQ(env->netns, "");

  vars.erase("CNI_IFNAME");
  ExpectInvalidEnv(Parse(vars), "CNI_IFNAME");
}

TEST(CniEnvTest, VersionStatusGcNeedNothing) {
  for (const char* command : {"VERSION", "STATUS", "GC"}) {
    absl::StatusOr<CniEnv> env = Parse({{"CNI_COMMAND", command}});
    ASSERT_TRUE(env.ok()) << command << ": " << env.status();
    EXPECT_EQ(CniCommandName(env->command), command);
  }
}

TEST(CniEnvTest, CommandMustBeKnown) {
  ExpectInvalidEnv(Parse({}), "CNI_COMMAND");
  ExpectInvalidEnv(Parse({{"CNI_COMMAND", "add"}}), "CNI_COMMAND");
  ExpectInvalidEnv(Parse({{"CNI_COMMAND", "UPDATE"}}), "UPDATE");
}

TEST(CniEnvTest, ValidatesContainerId) {
  EXPECT_TRUE(IsValidContainerId("a"));
  EXPECT_TRUE(IsValidContainerId("0ab_c.d-e"));
  EXPECT_FALSE(IsValidContainerId(""));
  EXPECT_FALSE(IsValidContainerId("-abc"));
  EXPECT_FALSE(IsValidContainerId("_abc"));
  EXPECT_FALSE(IsValidContainerId("ab/c"));
  EXPECT_FALSE(IsValidContainerId("ab c"));

  auto vars = AddEnv();
  vars["CNI_CONTAINERID"] = "../etc";
  ExpectInvalidEnv(Parse(vars), "CNI_CONTAINERID");
}

TEST(CniEnvTest, ValidatesInterfaceName) {
  EXPECT_TRUE(IsValidInterfaceName("eth0"));
  EXPECT_TRUE(IsValidInterfaceName("123456789012345"));
  EXPECT_FALSE(IsValidInterfaceName("1234567890123456"));
  EXPECT_FALSE(IsValidInterfaceName(""));
  EXPECT_FALSE(IsValidInterfaceName("."));
  EXPECT_FALSE(IsValidInterfaceName(".."));
  EXPECT_TRUE(IsValidInterfaceName("..."));
  EXPECT_FALSE(IsValidInterfaceName("eth/0"));
  EXPECT_FALSE(IsValidInterfaceName("eth:0"));
  EXPECT_FALSE(IsValidInterfaceName("eth 0"));
  EXPECT_FALSE(IsValidInterfaceName("eth\t0"));

  auto vars = AddEnv();
  vars["CNI_IFNAME"] = "averyveryverylongname";
  ExpectInvalidEnv(Parse(vars), "CNI_IFNAME");
}

}  // namespace
}  // namespace weir::cni
