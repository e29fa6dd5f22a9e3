// The agent's side of service names: what it publishes after complete and partial syncs.
#include "proxy/sync/service_names.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "proxy/sync/fake_map_writer.h"

namespace weir::sync {
namespace {

class FakeNameStore : public ServiceNameStore {
 public:
  absl::Status Put(uint32_t id, const ServiceName& name) override {
    ++puts;
    names[id] = name;
    return absl::OkStatus();
  }
  absl::Status Delete(uint32_t id) override {
    names.erase(id);
    return absl::OkStatus();
  }
  absl::StatusOr<std::map<uint32_t, ServiceName>> List() const override { return names; }

  std::map<uint32_t, ServiceName> names;
  int puts = 0;
};

lb::FrontendSpec Frontend(const std::string& ip, uint16_t port, const std::string& service) {
  lb::FrontendSpec frontend;
  frontend.address = *IpAddress::Parse(ip);
  frontend.port = port;
  frontend.service = service;
  frontend.flags = WEIR_SVC_CLUSTER_IP;
  return frontend;
}

lb::DesiredState State(std::vector<lb::FrontendSpec> frontends) {
  std::sort(frontends.begin(), frontends.end(),
            [](const auto& a, const auto& b) { return lb::KeyOf(a) < lb::KeyOf(b); });
  return {std::move(frontends)};
}

// Service id -> "namespace/name:port", as weirctl would show them.
std::map<uint32_t, std::string> Shown(const FakeNameStore& store) {
  std::map<uint32_t, std::string> shown;
  for (const auto& [id, name] : store.names) shown[id] = name.ToString();
  return shown;
}

TEST(ServiceNameTest, ParsesWhatTheTranslatorWrites) {
  auto name = ServiceName::Parse("kube-system/kube-dns:dns-tcp");
  ASSERT_TRUE(name.has_value());
  EXPECT_EQ(name->namespace_name, "kube-system");
  EXPECT_EQ(name->name, "kube-dns");
  EXPECT_EQ(name->port_name, "dns-tcp");
  EXPECT_EQ(name->ToString(), "kube-system/kube-dns:dns-tcp");
  // An unnamed port (a Service with one port) leaves the port name empty.
  EXPECT_EQ(ServiceName::Parse("default/web:")->ToString(), "default/web");
  EXPECT_EQ(ServiceName::Parse("default/web")->port_name, "");
  EXPECT_FALSE(ServiceName::Parse("").has_value());
  EXPECT_FALSE(ServiceName::Parse("web").has_value());
  EXPECT_FALSE(ServiceName::Parse("/web").has_value());
  EXPECT_FALSE(ServiceName::Parse("default/").has_value());
}

TEST(ServiceNamePublisherTest, CompleteSyncNamesEveryFrontendAndDropsOtherIds) {
  FakeMapWriter writer;
  Reconciler reconciler(writer, {});
  FakeNameStore store;
  store.names[42] = {"old", "gone", ""};  // left by an earlier agent for an id no frontend uses
  ServiceNamePublisher publisher(store);

  const lb::DesiredState desired = State(
      {Frontend("10.96.0.10", 80, "default/web:http"), Frontend("10.96.0.11", 53, "kube-system/dns:dns")});
  ASSERT_TRUE(reconciler.Apply(desired).ok());
  ASSERT_TRUE(publisher.PublishAll(desired, reconciler).ok());
  const uint32_t web = *reconciler.ServiceIdOf(lb::KeyOf(desired.frontends[0]));
  const uint32_t dns = *reconciler.ServiceIdOf(lb::KeyOf(desired.frontends[1]));
  EXPECT_EQ(Shown(store),
            (std::map<uint32_t, std::string>{{web, "default/web:http"}, {dns, "kube-system/dns:dns"}}));

  // The same state again writes nothing.
  const int puts = store.puts;
  ASSERT_TRUE(publisher.PublishAll(desired, reconciler).ok());
  EXPECT_EQ(store.puts, puts);
}

TEST(ServiceNamePublisherTest, PartialSyncRenamesAddsAndRemoves) {
  FakeMapWriter writer;
  Reconciler reconciler(writer, {});
  FakeNameStore store;
  ServiceNamePublisher publisher(store);
  const lb::DesiredState desired =
      State({Frontend("10.96.0.10", 80, "default/web:http"), Frontend("10.96.0.11", 80, "default/api:http")});
  ASSERT_TRUE(reconciler.Apply(desired).ok());
  ASSERT_TRUE(publisher.PublishAll(desired, reconciler).ok());
  const uint32_t api = *reconciler.ServiceIdOf(lb::KeyOf(desired.frontends[1]));

  // api goes; a new Service takes over web's address (same key, so the same id); one more appears.
  lb::DesiredChanges changes;
  changes.upserts = {Frontend("10.96.0.10", 80, "default/web2:http"),
                     Frontend("10.96.0.12", 80, "default/new:")};
  changes.removals = {lb::KeyOf(desired.frontends[1])};
  const std::vector<uint32_t> removed = publisher.IdsBeforeRemoval(changes, reconciler);
  EXPECT_EQ(removed, std::vector<uint32_t>{api});
  ASSERT_TRUE(reconciler.ApplyChanges(changes).ok());
  ASSERT_TRUE(publisher.PublishChanges(changes, removed, reconciler).ok());

  std::map<uint32_t, std::string> expected;
  expected[*reconciler.ServiceIdOf(lb::KeyOf(changes.upserts[0]))] = "default/web2:http";
  expected[*reconciler.ServiceIdOf(lb::KeyOf(changes.upserts[1]))] = "default/new";
  EXPECT_EQ(Shown(store), expected);
}

TEST(ServiceNamePublisherTest, AnIdReleasedAndReusedInOneSyncKeepsTheNewName) {
  FakeMapWriter writer;
  Reconciler reconciler(writer, {});
  FakeNameStore store;
  ServiceNamePublisher publisher(store);
  const lb::DesiredState desired = State({Frontend("10.96.0.10", 80, "default/old:")});
  ASSERT_TRUE(reconciler.Apply(desired).ok());
  ASSERT_TRUE(publisher.PublishAll(desired, reconciler).ok());

  lb::DesiredChanges changes;
  changes.upserts = {Frontend("10.96.0.20", 80, "default/new:")};
  changes.removals = {lb::KeyOf(desired.frontends[0])};
  const std::vector<uint32_t> removed = publisher.IdsBeforeRemoval(changes, reconciler);
  ASSERT_TRUE(reconciler.ApplyChanges(changes).ok());
  ASSERT_TRUE(publisher.PublishChanges(changes, removed, reconciler).ok());
  const uint32_t id = *reconciler.ServiceIdOf(lb::KeyOf(changes.upserts[0]));
  EXPECT_EQ(Shown(store), (std::map<uint32_t, std::string>{{id, "default/new"}}));
}

}  // namespace
}  // namespace weir::sync
