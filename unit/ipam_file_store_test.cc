#include "cni/ipam/file_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "cni/ipam/allocator.h"

namespace weir::ipam {
namespace {

constexpr const char* kNetwork = "weir-net";

IpPrefix Prefix(const std::string& text) { return *IpPrefix::Parse(text); }
IpAddress Address(const std::string& text) { return *IpAddress::Parse(text); }

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

class FileStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "weir-ipam-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Nested below the temp dir so the store has to create parents.
  std::string DataDir() const { return (dir_ / "var" / "lib" / "cni").string(); }
  std::filesystem::path NetworkDir() const { return std::filesystem::path(DataDir()) / kNetwork; }

  std::filesystem::path dir_;
};

TEST_F(FileStoreTest, UsesHostLocalLayout) {
  FileStore store(DataDir());
  Allocator allocator(kNetwork, {Prefix("10.244.1.0/24"), Prefix("fd00:10:244:1::/112")}, store);
  ASSERT_TRUE(allocator.Allocate({"abc", "eth0"}).ok());

  EXPECT_EQ(ReadFile(NetworkDir() / "10.244.1.1"), "abc\r\neth0");
  EXPECT_EQ(ReadFile(NetworkDir() / "fd00:10:244:1::1"), "abc\r\neth0");
  EXPECT_EQ(ReadFile(NetworkDir() / "last_reserved_ip.4"), "10.244.1.1");
  EXPECT_EQ(ReadFile(NetworkDir() / "last_reserved_ip.6"), "fd00:10:244:1::1");
  EXPECT_TRUE(std::filesystem::exists(NetworkDir() / "lock"));
  // No temp files are left behind.
  for (const auto& entry : std::filesystem::directory_iterator(NetworkDir())) {
    EXPECT_NE(entry.path().filename().string()[0], '.') << entry.path();
  }
}

TEST_F(FileStoreTest, ReserveDoesNotOverwrite) {
  FileStore store(DataDir());
  ASSERT_TRUE(store.Lock(kNetwork).ok());
  EXPECT_TRUE(*store.Reserve(kNetwork, Address("10.0.0.5"), {"a", "eth0"}));
  EXPECT_FALSE(*store.Reserve(kNetwork, Address("10.0.0.5"), {"b", "eth0"}));
  absl::StatusOr<std::vector<Allocation>> list = store.List(kNetwork);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].owner, (AllocationOwner{"a", "eth0"}));
  EXPECT_TRUE(store.Release(kNetwork, Address("10.0.0.5")).ok());
  EXPECT_TRUE(store.Release(kNetwork, Address("10.0.0.5")).ok());  // idempotent
  EXPECT_TRUE(store.List(kNetwork)->empty());
  store.Unlock(kNetwork);
}

TEST_F(FileStoreTest, LockIsNotReentrant) {
  FileStore store(DataDir());
  ASSERT_TRUE(store.Lock(kNetwork).ok());
  EXPECT_FALSE(store.Lock(kNetwork).ok());
  store.Unlock(kNetwork);
  EXPECT_TRUE(store.Lock(kNetwork).ok());
  store.Unlock(kNetwork);
}

TEST_F(FileStoreTest, RejectsNetworkNamesThatEscapeDataDir) {
  FileStore store(DataDir());
  EXPECT_FALSE(store.Lock("..").ok());
  EXPECT_FALSE(store.Lock("a/b").ok());
  EXPECT_FALSE(store.List("").ok());
}

TEST_F(FileStoreTest, ListOfUnknownNetworkIsEmpty) {
  FileStore store(DataDir());
  absl::StatusOr<std::vector<Allocation>> list = store.List("never-used");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_TRUE(list->empty());
  absl::StatusOr<std::optional<IpAddress>> last = store.LastReserved("never-used", IpFamily::kV4);
  ASSERT_TRUE(last.ok());
  EXPECT_FALSE(last->has_value());
}

TEST_F(FileStoreTest, StatePersistsAcrossInstances) {
  {
    FileStore store(DataDir());
    Allocator allocator(kNetwork, {Prefix("10.244.1.0/24")}, store);
    ASSERT_TRUE(allocator.Allocate({"c1", "eth0"}).ok());
    ASSERT_TRUE(allocator.Allocate({"c2", "eth0"}).ok());
    ASSERT_TRUE(allocator.Release({"c1", "eth0"}).ok());
  }
  FileStore store(DataDir());
  Allocator allocator(kNetwork, {Prefix("10.244.1.0/24")}, store);
  // The cursor survived: c3 gets .3, not the just-released .1.
  absl::StatusOr<std::vector<AllocatedAddress>> allocated = allocator.Allocate({"c3", "eth0"});
  ASSERT_TRUE(allocated.ok()) << allocated.status();
  EXPECT_EQ((*allocated)[0].address, Address("10.244.1.3"));
  // c2's allocation survived and is returned again on a retried ADD.
  absl::StatusOr<std::vector<AllocatedAddress>> retried = allocator.Allocate({"c2", "eth0"});
  ASSERT_TRUE(retried.ok());
  EXPECT_EQ((*retried)[0].address, Address("10.244.1.2"));
  absl::StatusOr<std::vector<AllocatedAddress>> lookup = allocator.Lookup({"c2", "eth0"});
  ASSERT_TRUE(lookup.ok());
  EXPECT_EQ(*lookup, *retried);
}

TEST_F(FileStoreTest, ReadsLegacyAndForeignFiles) {
  std::filesystem::create_directories(NetworkDir());
  std::ofstream(NetworkDir() / "10.0.0.7") << "legacy-container";  // old host-local: no ifname
  std::ofstream(NetworkDir() / "README") << "not an address";
  std::ofstream(NetworkDir() / "last_reserved_ip.4") << "garbage";
  FileStore store(DataDir());
  ASSERT_TRUE(store.Lock(kNetwork).ok());
  absl::StatusOr<std::vector<Allocation>> list = store.List(kNetwork);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].owner, (AllocationOwner{"legacy-container", ""}));
  absl::StatusOr<std::optional<IpAddress>> last = store.LastReserved(kNetwork, IpFamily::kV4);
  ASSERT_TRUE(last.ok());
  EXPECT_FALSE(last->has_value());  // a damaged cursor is ignored, not fatal
  // A legacy entry belongs to every interface of its container.
  absl::StatusOr<std::vector<IpAddress>> released =
      store.ReleaseByOwner(kNetwork, {"legacy-container", "eth0"});
  ASSERT_TRUE(released.ok());
  EXPECT_EQ(*released, std::vector<IpAddress>{Address("10.0.0.7")});
  store.Unlock(kNetwork);
  EXPECT_TRUE(std::filesystem::exists(NetworkDir() / "README"));
}

TEST_F(FileStoreTest, GcAcrossInstances) {
  {
    FileStore store(DataDir());
    Allocator allocator(kNetwork, {Prefix("10.244.1.0/24")}, store);
    for (const char* id : {"a", "b", "c"}) ASSERT_TRUE(allocator.Allocate({id, "eth0"}).ok());
  }
  FileStore store(DataDir());
  Allocator allocator(kNetwork, {Prefix("10.244.1.0/24")}, store);
  absl::StatusOr<std::vector<Allocation>> released = allocator.Gc({{"b", "eth0"}});
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_EQ(released->size(), 2u);
  EXPECT_FALSE(std::filesystem::exists(NetworkDir() / "10.244.1.1"));
  EXPECT_TRUE(std::filesystem::exists(NetworkDir() / "10.244.1.2"));
  EXPECT_FALSE(std::filesystem::exists(NetworkDir() / "10.244.1.3"));
}

// CNI invocations are separate processes racing on the same node: the flock must keep them from
// handing out one address twice.
TEST_F(FileStoreTest, ConcurrentProcessesNeverShareAnAddress) {
  constexpr int kProcesses = 8;
  constexpr int kPerProcess = 10;
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);

  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(pipe_fds[0]);
      // Each child uses its own store instance, as separate CNI processes would.
      FileStore store(DataDir());
      Allocator allocator(kNetwork, {Prefix("10.244.1.0/24")}, store);
      for (int i = 0; i < kPerProcess; ++i) {
        const std::string id = "p" + std::to_string(p) + "-c" + std::to_string(i);
        absl::StatusOr<std::vector<AllocatedAddress>> allocated = allocator.Allocate({id, "eth0"});
        if (!allocated.ok() || allocated->size() != 1) ::_exit(1);
        // One line per allocation; short writes to a pipe are atomic (< PIPE_BUF).
        const std::string line = id + " " + (*allocated)[0].address.ToString() + "\n";
        if (::write(pipe_fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) ::_exit(2);
      }
      ::_exit(0);
    }
    children.push_back(pid);
  }
  ::close(pipe_fds[1]);

  std::string output;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buffer, sizeof(buffer))) > 0) output.append(buffer, static_cast<size_t>(n));
  ::close(pipe_fds[0]);
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  }

  std::set<std::string> addresses;
  std::map<std::string, std::string> owner_of;
  std::istringstream lines(output);
  std::string id, address;
  int count = 0;
  while (lines >> id >> address) {
    ++count;
    EXPECT_TRUE(addresses.insert(address).second) << address << " handed out twice";
    owner_of[address] = id;
  }
  EXPECT_EQ(count, kProcesses * kPerProcess);
  EXPECT_EQ(addresses.size(), static_cast<size_t>(kProcesses * kPerProcess));

  // The store agrees with what the processes were told.
  FileStore store(DataDir());
  ASSERT_TRUE(store.Lock(kNetwork).ok());
  absl::StatusOr<std::vector<Allocation>> list = store.List(kNetwork);
  store.Unlock(kNetwork);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), static_cast<size_t>(kProcesses * kPerProcess));
  for (const Allocation& allocation : *list) {
    EXPECT_EQ(owner_of[allocation.address.ToString()], allocation.owner.container_id);
  }
}

}  // namespace
}  // namespace weir::ipam
