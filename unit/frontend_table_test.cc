#include "proxy/lb/frontend_table.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace weir::lb {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

k8s::ServiceRef Ref(const std::string& name) { return {"default", name}; }

FrontendClaim Claim(const std::string& ip, uint16_t port, const std::string& service,
                    bool with_internal = false, uint16_t backend_port = 8080) {
  FrontendClaim claim;
  claim.external.address = *IpAddress::Parse(ip);
  claim.external.port = port;
  claim.external.service = service;
  claim.external.backends.push_back({.address = *IpAddress::Parse("10.0.0.1"), .port = backend_port});
  if (with_internal) {
    claim.internal = claim.external;
    claim.internal->scope = Scope::kInternal;
  }
  return claim;
}

FrontendKey Key(const std::string& ip, uint16_t port, Scope scope = Scope::kExternal) {
  return {*IpAddress::Parse(ip), port, L4Proto::kTcp, scope};
}

std::vector<std::string> Owners(const DesiredState& state) {
  std::vector<std::string> owners;
  for (const FrontendSpec& spec : state.frontends) owners.push_back(spec.service);
  return owners;
}

TEST(FrontendTableTest, TheFirstServiceByNamespaceAndNameKeepsAContestedFrontendWhateverTheOrder) {
  FrontendTable b_first;
  b_first.SetClaims(Ref("b"), {Claim("10.96.0.1", 80, "b")});
  b_first.SetClaims(Ref("a"), {Claim("10.96.0.1", 80, "a")});
  FrontendTable a_first;
  a_first.SetClaims(Ref("a"), {Claim("10.96.0.1", 80, "a")});
  a_first.SetClaims(Ref("b"), {Claim("10.96.0.1", 80, "b")});
  EXPECT_THAT(Owners(b_first.Desired()), ElementsAre("a"));
  EXPECT_THAT(Owners(a_first.Desired()), ElementsAre("a"));
}

TEST(FrontendTableTest, WhenTheOwnerLetsGoTheNextClaimantTakesOverAndIsReported) {
  FrontendTable table;
  table.SetClaims(Ref("a"), {Claim("10.96.0.1", 80, "a", /*with_internal=*/true)});
  table.SetClaims(Ref("b"), {Claim("10.96.0.1", 80, "b")});
  table.DiscardChanges();

  table.SetClaims(Ref("a"), {});
  DesiredChanges changes = table.TakeChanges();
  EXPECT_THAT(Owners(DesiredState{changes.upserts}), ElementsAre("b"));
  // b has no internal twin, so a's goes.
  EXPECT_THAT(changes.removals, ElementsAre(Key("10.96.0.1", 80, Scope::kInternal)));

  table.SetClaims(Ref("b"), {});
  changes = table.TakeChanges();
  EXPECT_THAT(changes.upserts, IsEmpty());
  EXPECT_THAT(changes.removals, ElementsAre(Key("10.96.0.1", 80), Key("10.96.0.1", 80, Scope::kInternal)));
  EXPECT_THAT(table.Desired().frontends, IsEmpty());
}

TEST(FrontendTableTest, AnUnchangedClaimIsNotReportedAndAServiceRepeatingAKeyKeepsItsFirstClaim) {
  FrontendTable table;
  table.SetClaims(Ref("a"), {Claim("10.96.0.1", 80, "a"), Claim("10.96.0.2", 80, "a")});
  EXPECT_EQ(table.TakeChanges().upserts.size(), 2u);

  table.SetClaims(Ref("a"), {Claim("10.96.0.1", 80, "a"), Claim("10.96.0.2", 80, "a", false, 9090)});
  DesiredChanges changes = table.TakeChanges();
  ASSERT_EQ(changes.upserts.size(), 1u);
  EXPECT_EQ(KeyOf(changes.upserts[0]), Key("10.96.0.2", 80));

  table.SetClaims(Ref("a"), {Claim("10.96.0.3", 80, "a"), Claim("10.96.0.3", 80, "a", false, 9090)});
  ASSERT_EQ(table.Desired().frontends.size(), 1u);
  EXPECT_EQ(table.Desired().frontends[0].backends[0].port, 8080);
}

// Random claims over a few contested keys: following TakeChanges() always reproduces Desired(),
// and Desired() is what a table built from scratch, in another order, resolves.
TEST(FrontendTableTest, FollowingTheChangesReproducesTheWholeState) {
  std::mt19937 random(11);
  std::map<k8s::ServiceRef, std::vector<FrontendClaim>> current;
  FrontendTable table;
  std::map<FrontendKey, FrontendSpec> followed;
  for (int step = 0; step < 500; ++step) {
    SCOPED_TRACE(absl::StrCat("step ", step));
    const std::string name = absl::StrCat("svc-", random() % 6);
    std::vector<FrontendClaim> claims;
    for (int key = 0; key < 4; ++key) {
      if (random() % 2 == 0) continue;
      claims.push_back(Claim(absl::StrCat("10.96.0.", 1 + key), 80, name, random() % 2 == 0,
                             static_cast<uint16_t>(8080 + random() % 2)));
    }
    current[Ref(name)] = claims;
    table.SetClaims(Ref(name), std::move(claims));

    DesiredChanges changes = table.TakeChanges();
    for (const FrontendKey& key : changes.removals) followed.erase(key);
    for (const FrontendSpec& spec : changes.upserts) followed[KeyOf(spec)] = spec;
    std::vector<FrontendSpec> followed_list;
    for (const auto& [key, spec] : followed) followed_list.push_back(spec);
    ASSERT_EQ(followed_list, table.Desired().frontends);
  }
  FrontendTable rebuilt;
  for (auto it = current.rbegin(); it != current.rend(); ++it) rebuilt.SetClaims(it->first, it->second);
  EXPECT_EQ(rebuilt.Desired().frontends, table.Desired().frontends);
}

}  // namespace
}  // namespace weir::lb
