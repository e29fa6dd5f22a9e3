// The BPF PolicyWriter over recorded maps: which entries an enforcement becomes, and the order of
// a rewrite (new entries, then the endpoint flags, then the stale entries).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/abi_codec.h"
#include "proxy/policy_sync/bpf_policy_writer.h"
#include "proxy/policy_sync/fake_policy_maps.h"
#include "proxy/policy_sync/policy_entries.h"

namespace weir::policy_sync {
namespace {

using policy::AllowEntry;
using policy::EndpointEnforcement;
using policy::PeerKind;
using ::testing::ElementsAre;

IpPrefix Prefix(const std::string& text) { return *IpPrefix::Parse(text); }

AllowEntry Tcp(policy::Peer peer, uint16_t first, uint16_t last) {
  return AllowEntry{.peer = std::move(peer), .protocol = L4Proto::kTcp, .ports = {first, last}};
}
policy::Peer Identity(policy::Identity id) { return {.kind = PeerKind::kIdentity, .identity = id}; }
policy::Peer Cidr(const std::string& cidr, std::vector<std::string> except = {}) {
  policy::Peer peer{.kind = PeerKind::kCidr, .cidr = Prefix(cidr)};
  for (const std::string& e : except) peer.except.push_back(Prefix(e));
  return peer;
}

EndpointEnforcement Enforcement(uint32_t id, std::vector<AllowEntry> ingress) {
  EndpointEnforcement e{.policy_id = id};
  e.policy.addresses = {*IpAddress::Parse("10.244.1.3")};
  e.policy.ingress.isolated = true;
  e.policy.ingress.allowed = {ingress.begin(), ingress.end()};
  return e;
}

class PolicyWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    abi::Endpoint pod{.address = *IpAddress::Parse("10.244.1.3"),
                      .host_ifindex = 42,
                      .flags = WEIR_ENDPOINT_LOCAL_POD | WEIR_ENDPOINT_POLICY_PENDING};
    ASSERT_TRUE(maps_.PutEndpoint(abi::EncodeEndpointKey(pod.address), abi::EncodeEndpointValue(pod)).ok());
    maps_.ClearOperations();
  }
  FakePolicyMaps maps_;
  BpfPolicyWriter writer_{maps_};
};

TEST_F(PolicyWriterTest, RulesBeforeFlagsAndThePendingFlagGoes) {
  ASSERT_TRUE(writer_.WriteEndpoint(Enforcement(5, {Tcp(Identity(257), 80, 81)})).ok());
  EXPECT_THAT(maps_.operations(), ElementsAre("put rule policy 5 ingress identity 257 TCP 80-81",
                                              "put endpoint 10.244.1.3 policy 5 local-pod,ingress-isolated"));
}

TEST_F(PolicyWriterTest, RewriteAddsFirstFlipsThenDeletes) {
  ASSERT_TRUE(writer_.WriteEndpoint(Enforcement(5, {Tcp(Identity(257), 80, 80)})).ok());
  maps_.ClearOperations();
  ASSERT_TRUE(writer_.WriteEndpoint(Enforcement(5, {Tcp(Identity(258), 80, 80)})).ok());
  EXPECT_THAT(maps_.operations(), ElementsAre("put rule policy 5 ingress identity 258 TCP 80",
                                              "delete rule policy 5 ingress identity 257 TCP 80"));
  maps_.ClearOperations();
  EndpointEnforcement open = Enforcement(5, {});
  open.policy.ingress.isolated = false;
  ASSERT_TRUE(writer_.WriteEndpoint(open).ok());
  EXPECT_THAT(maps_.operations(), ElementsAre("put endpoint 10.244.1.3 policy 5 local-pod",
                                              "delete rule policy 5 ingress identity 258 TCP 80"));
}

TEST_F(PolicyWriterTest, EndPortRangeIsAFewPrefixesNotAPortEach) {
  ASSERT_TRUE(writer_.WriteEndpoint(Enforcement(5, {Tcp(Identity(257), 1, 65534)})).ok());
  EXPECT_EQ(maps_.rule_count(), 30u);
}

TEST_F(PolicyWriterTest, IpBlockExceptBecomesClassesOfNamedPrefixes) {
  ASSERT_TRUE(writer_
                  .WriteEndpoint(Enforcement(5, {Tcp(Cidr("10.0.0.0/8", {"10.244.1.4/32"}), 80, 80),
                                                 Tcp(Cidr("10.244.0.0/16"), 443, 443)}))
                  .ok());
  std::vector<std::string> lines = maps_.DumpLines();
  EXPECT_THAT(
      lines,
      ElementsAre("cidr policy 5 ingress 10.0.0.0/8 = class 1",
                  "cidr policy 5 ingress 10.244.0.0/16 = class 2",
                  "cidr policy 5 ingress 10.244.1.4/32 = class 3",
                  "endpoint 10.244.1.3 policy 5 local-pod,ingress-isolated",
                  "rule policy 5 ingress cidr-class 1 TCP 80", "rule policy 5 ingress cidr-class 2 TCP 443",
                  "rule policy 5 ingress cidr-class 2 TCP 80", "rule policy 5 ingress cidr-class 3 TCP 443"));
}

TEST_F(PolicyWriterTest, AClassKeepsItsNumberAcrossRewrites) {
  ASSERT_TRUE(writer_.WriteEndpoint(Enforcement(5, {Tcp(Cidr("10.0.0.0/8"), 80, 80)})).ok());
  maps_.ClearOperations();
  ASSERT_TRUE(writer_
                  .WriteEndpoint(
                      Enforcement(5, {Tcp(Cidr("10.0.0.0/8"), 80, 80), Tcp(Cidr("192.168.0.0/16"), 22, 22)}))
                  .ok());
  EXPECT_THAT(maps_.operations(), ElementsAre("put rule policy 5 ingress cidr-class 2 TCP 22",
                                              "put cidr policy 5 ingress 192.168.0.0/16 = class 2"));
}

TEST_F(PolicyWriterTest, FailedWriteCompletesOnTheNextCall) {
  maps_.FailAfter(1);
  EXPECT_FALSE(
      writer_.WriteEndpoint(Enforcement(5, {Tcp(Identity(257), 80, 80), Tcp(Identity(258), 80, 80)})).ok());
  maps_.StopFailing();
  maps_.ClearOperations();
  ASSERT_TRUE(
      writer_.WriteEndpoint(Enforcement(5, {Tcp(Identity(257), 80, 80), Tcp(Identity(258), 80, 80)})).ok());
  EXPECT_THAT(maps_.operations(), ElementsAre("put rule policy 5 ingress identity 258 TCP 80",
                                              "put endpoint 10.244.1.3 policy 5 local-pod,ingress-isolated"));
}

TEST_F(PolicyWriterTest, RemoveDeletesRulesAndCounters) {
  ASSERT_TRUE(writer_.WriteEndpoint(Enforcement(5, {Tcp(Cidr("10.0.0.0/8"), 80, 80)})).ok());
  maps_.ClearOperations();
  ASSERT_TRUE(writer_.RemoveEndpoint(5).ok());
  EXPECT_THAT(maps_.operations(),
              ElementsAre("delete cidr policy 5 ingress 10.0.0.0/8",
                          "delete rule policy 5 ingress cidr-class 1 TCP 80", "delete counters 5"));
  EXPECT_TRUE(writer_.RemoveEndpoint(99).ok());
}

TEST_F(PolicyWriterTest, PeersAreWrittenByDifference) {
  ASSERT_TRUE(writer_.SetPeers({{Prefix("10.244.1.2/32"), 256}, {Prefix("192.168.0.1/32"), 2}}).ok());
  maps_.ClearOperations();
  ASSERT_TRUE(writer_.SetPeers({{Prefix("10.244.1.2/32"), 257}, {Prefix("10.244.1.9/32"), 256}}).ok());
  EXPECT_THAT(maps_.operations(), ElementsAre("put peer 10.244.1.2/32 = 257", "put peer 10.244.1.9/32 = 256",
                                              "delete peer 192.168.0.1/32"));
}

// A new agent's writer takes over what the last one wrote: stale entries go, classes are not reused.
TEST_F(PolicyWriterTest, AdoptedEntriesAreReplacedByDifference) {
  {
    BpfPolicyWriter earlier(maps_);
    ASSERT_TRUE(earlier.SetPeers({{Prefix("10.244.1.2/32"), 256}}).ok());
    ASSERT_TRUE(
        earlier.WriteEndpoint(Enforcement(5, {Tcp(Cidr("10.0.0.0/8"), 80, 80), Tcp(Identity(257), 22, 22)}))
            .ok());
  }
  maps_.ClearOperations();
  ASSERT_TRUE(writer_.Adopt().ok());
  ASSERT_TRUE(writer_.SetPeers({{Prefix("10.244.1.2/32"), 256}}).ok());
  ASSERT_TRUE(writer_.WriteEndpoint(Enforcement(5, {Tcp(Cidr("10.0.0.0/8"), 80, 80)})).ok());
  EXPECT_THAT(maps_.operations(), ElementsAre("put rule policy 5 ingress cidr-class 2 TCP 80",
                                              "put cidr policy 5 ingress 10.0.0.0/8 = class 2",
                                              "delete rule policy 5 ingress identity 257 TCP 22",
                                              "delete rule policy 5 ingress cidr-class 1 TCP 80"));
}

TEST_F(PolicyWriterTest, PolicyIdZeroIsRefused) {
  absl::Status status = writer_.WriteEndpoint(Enforcement(0, {}));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
}

TEST(PolicyEntriesTest, NotIsolatedHasNoEntries) {
  CidrClasses classes;
  policy::DirectionPolicy open;
  open.allowed.insert(Tcp(Identity(257), 80, 80));
  EXPECT_EQ(DirectionEntriesOf(open, classes), DirectionEntries{});
}

TEST(PolicyCodecTest, RuleKeysRoundTrip) {
  const abi::PolicyRuleFields all{.policy_id = 3, .direction = WEIR_POLICY_EGRESS, .peer = 257};
  EXPECT_EQ(abi::DecodePolicyRuleKey(abi::EncodePolicyRuleKey(all)), all);
  EXPECT_EQ(abi::Render(abi::EncodePolicyRuleKey(all)), "policy 3 egress identity 257 all protocols");
  const abi::PolicyRuleFields range{
      .policy_id = 3, .peer = 0, .proto = WEIR_PROTO_UDP, .port = 1024, .port_prefix_length = 6};
  EXPECT_EQ(abi::DecodePolicyRuleKey(abi::EncodePolicyRuleKey(range)), range);
  EXPECT_EQ(abi::Render(abi::EncodePolicyRuleKey(range)), "policy 3 ingress any UDP 1024-2047");
  EXPECT_EQ(abi::Render(abi::EncodePolicyPeerKey(Prefix("10.244.1.7/24"))), "10.244.1.0/24");
}

}  // namespace
}  // namespace weir::policy_sync
