// The maps the agent publishes for weirctl, pinned in a private bpffs: what a reader gets back, and
// that a map pinned with another shape (another services capacity, an older build's agent facts) is
// replaced, not misread.
#include "lib/agent_state_maps.h"

#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <thread>

namespace weir {
namespace {

// Runs `body` on a thread of its own in a mount namespace of its own, with a bpffs mounted there:
// the mount and everything pinned in it go with the thread.
void WithPrivateBpffs(const std::function<void(const std::filesystem::path& root)>& body) {
  const std::filesystem::path root =
      std::filesystem::path(::testing::TempDir()) / ("weir-agent-state-" + std::to_string(::getpid()));
  std::filesystem::create_directories(root);
  std::thread([&] {
    ASSERT_EQ(unshare(CLONE_NEWNS), 0) << strerror(errno);
    ASSERT_EQ(mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0) << strerror(errno);
    ASSERT_EQ(mount("bpf", root.c_str(), "bpf", 0, nullptr), 0) << strerror(errno);
    body(root);
  }).join();
  std::filesystem::remove_all(root);
}

std::string Path(const std::filesystem::path& root, const char* name) { return (root / name).string(); }

TEST(AgentStateMapsTest, NamesSurviveReopeningAndGoWithAnotherCapacity) {
  WithPrivateBpffs([](const std::filesystem::path& root) {
    {
      auto names = ServiceNamesMap::OpenOrCreate(Path(root, WEIR_SERVICE_NAMES_MAP_NAME), 16);
      ASSERT_TRUE(names.ok()) << names.status();
      ASSERT_TRUE(names->Put(3, {"kube-system", "kube-dns", "dns-tcp"}).ok());
      ASSERT_TRUE(names->Put(4, {"default", "web", ""}).ok());
      ASSERT_TRUE(names->Delete(4).ok());
      ASSERT_TRUE(names->Delete(99).ok());  // absent: not an error
    }
    auto reader = ServiceNamesMap::OpenPinned(Path(root, WEIR_SERVICE_NAMES_MAP_NAME));
    ASSERT_TRUE(reader.ok()) << reader.status();
    auto listed = reader->List();
    ASSERT_TRUE(listed.ok());
    EXPECT_EQ(*listed, (std::map<uint32_t, ServiceName>{{3, {"kube-system", "kube-dns", "dns-tcp"}}}));

    // The same shape keeps what is there; another capacity starts over (the next sync rewrites it).
    ASSERT_TRUE(ServiceNamesMap::OpenOrCreate(Path(root, WEIR_SERVICE_NAMES_MAP_NAME), 16)->List()->size() ==
                1);
    auto resized = ServiceNamesMap::OpenOrCreate(Path(root, WEIR_SERVICE_NAMES_MAP_NAME), 32);
    ASSERT_TRUE(resized.ok()) << resized.status();
    EXPECT_TRUE(resized->List()->empty());
    EXPECT_TRUE(ServiceNamesMap::OpenPinned(Path(root, WEIR_SERVICE_NAMES_MAP_NAME))->List()->empty());
    EXPECT_FALSE(std::filesystem::exists(Path(root, WEIR_SERVICE_NAMES_MAP_NAME "_staging")));
  });
}

TEST(AgentStateMapsTest, AgentInfoRoundTripsAndIsAbsentUntilWritten) {
  WithPrivateBpffs([](const std::filesystem::path& root) {
    EXPECT_TRUE(absl::IsNotFound(AgentInfoMap::OpenPinned(Path(root, WEIR_AGENT_INFO_MAP_NAME)).status()));
    auto writer = AgentInfoMap::OpenOrCreate(Path(root, WEIR_AGENT_INFO_MAP_NAME));
    ASSERT_TRUE(writer.ok()) << writer.status();
    EXPECT_TRUE(absl::IsNotFound(writer->Read().status()));  // created, nothing written yet

    const AgentInfo info{.version = "0.1.0",
                         .node_name = "node-a",
                         .source = SyncSource::kKubernetes,
                         .lb_mode = "hybrid",
                         .dsr_dispatch = "option",
                         .node_port_acceleration = "disabled",
                         .cgroup_path = "/sys/fs/cgroup",
                         .maglev = true,
                         .masquerade = true,
                         .maglev_table_size = 1021,
                         .pid = 42,
                         .started_unix_ns = 1,
                         .last_sync_unix_ns = 2,
                         .syncs = 3,
                         .frontends = 4};
    ASSERT_TRUE(writer->Write(info).ok());
    auto read = AgentInfoMap::OpenPinned(Path(root, WEIR_AGENT_INFO_MAP_NAME))->Read();
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(read->node_name, "node-a");
    EXPECT_EQ(read->source, SyncSource::kKubernetes);
    EXPECT_EQ(read->lb_mode, "hybrid");
    EXPECT_EQ(read->dsr_dispatch, "option");
    EXPECT_EQ(read->node_port_acceleration, "disabled");  // the longest value, whole
    EXPECT_EQ(read->cgroup_path, "/sys/fs/cgroup");
    EXPECT_TRUE(read->maglev);
    EXPECT_EQ(read->pid, 42u);
    EXPECT_EQ(read->last_sync_unix_ns, 2u);
    EXPECT_EQ(read->syncs, 3u);
    EXPECT_EQ(read->frontends, 4u);
  });
}

// An upgrade: the agent before this build pinned its facts in a record of another size (632 bytes,
// before node_port_acceleration). This build's weirctl says so instead of misreading it; this
// build's agent pins a map of its own over it.
TEST(AgentStateMapsTest, AgentInfoOfAnotherBuildIsReplacedNotMisread) {
  WithPrivateBpffs([](const std::filesystem::path& root) {
    const std::string path = Path(root, WEIR_AGENT_INFO_MAP_NAME);
    const int older = bpf_map_create(BPF_MAP_TYPE_ARRAY, WEIR_AGENT_INFO_MAP_NAME, 4, 632, 1, nullptr);
    ASSERT_GE(older, 0) << strerror(errno);
    ASSERT_EQ(bpf_obj_pin(older, path.c_str()), 0) << strerror(errno);
    close(older);

    const absl::Status misread = AgentInfoMap::OpenPinned(path).status();
    EXPECT_TRUE(absl::IsFailedPrecondition(misread)) << misread;
    EXPECT_NE(misread.message().find("another build"), std::string::npos) << misread;

    auto writer = AgentInfoMap::OpenOrCreate(path);
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE(
        writer->Write({.version = "0.2.0", .node_port_acceleration = "generic", .started_unix_ns = 1}).ok());
    auto read = AgentInfoMap::OpenPinned(path)->Read();
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(read->version, "0.2.0");
    EXPECT_EQ(read->node_port_acceleration, "generic");
  });
}

}  // namespace
}  // namespace weir
