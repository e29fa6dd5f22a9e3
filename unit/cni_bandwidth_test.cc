// The runtime's bandwidth capability as weir reads it: runtimeConfig.bandwidth, the token bucket
// filters made from it, and the refusal of a `bandwidth` plugin chained after weir.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cni/bandwidth_config.h"
#include "cni/chained_plugins.h"
#include "cni/error.h"

namespace weir::cni {
namespace {

using ::testing::HasSubstr;

TEST(BandwidthConfigTest, NoRuntimeConfigOrNoBandwidthIsUnlimited) {
  EXPECT_FALSE(ParseBandwidth("")->limited());
  EXPECT_FALSE(ParseBandwidth(R"({"portMappings":[]})")->limited());
  EXPECT_FALSE(ParseBandwidth(R"({"bandwidth":{}})")->limited());
}

TEST(BandwidthConfigTest, ReadsWhatKubeletSends) {
  auto limit = ParseBandwidth(
      R"({"bandwidth":{"ingressRate":20000000,"ingressBurst":4294967295,"egressRate":1000000,"egressBurst":4294967295}})");
  ASSERT_TRUE(limit.ok()) << limit.status();
  EXPECT_EQ(limit->ingress_bps, 20000000u);
  EXPECT_EQ(limit->egress_bps, 1000000u);
  EXPECT_EQ(limit->egress_burst_bits, 4294967295u);
  EXPECT_EQ(Describe(*limit), "ingress 20000000 bit/s, egress 1000000 bit/s");
  auto ingress_only = ParseBandwidth(R"({"bandwidth":{"ingressRate":5000,"ingressBurst":100000}})");
  ASSERT_TRUE(ingress_only.ok());
  EXPECT_EQ(Describe(*ingress_only), "ingress 5000 bit/s, egress unlimited");
}

struct Bad {
  const char* json;
  CniCode code;
  const char* words;
};

TEST(BandwidthConfigTest, RefusesWhatTheBandwidthPluginRefuses) {
  const Bad cases[] = {
      {R"({"bandwidth":"fast"})", CniCode::kDecodeFailure, "runtimeConfig.bandwidth must be an object"},
      {R"({"bandwidth":{"ingressRate":"20M","ingressBurst":1}})", CniCode::kDecodeFailure,
       "runtimeConfig.bandwidth.ingressRate must be an integer"},
      {R"({"bandwidth":{"egressRate":-5,"egressBurst":1}})", CniCode::kInvalidNetworkConfig,
       "must not be negative"},
      {R"({"bandwidth":{"egressRate":20000000}})", CniCode::kInvalidNetworkConfig,
       "egressRate is set but runtimeConfig.bandwidth.egressBurst is not"},
      {R"({"bandwidth":{"ingressBurst":100}})", CniCode::kInvalidNetworkConfig, "ingressBurst is set but"},
      {R"({"bandwidth":{"ingressRate":20000000,"ingressBurst":34359738368}})", CniCode::kInvalidNetworkConfig,
       "4 GB or more"},
      {R"({"bandwidth":{"ingressRate":999,"ingressBurst":100}})", CniCode::kInvalidNetworkConfig,
       "out of range"},
  };
  for (const Bad& bad : cases) {
    auto limit = ParseBandwidth(bad.json);
    ASSERT_FALSE(limit.ok()) << bad.json;
    EXPECT_EQ(CniCodeOf(limit.status()), bad.code) << bad.json;
    EXPECT_THAT(limit.status().message(), HasSubstr(bad.words)) << bad.json;
  }
}

TEST(BandwidthConfigTest, TheBucketIsTheBurstWithinTenMillisecondsAndTwoFrames) {
  // kubelet's 4 Gbit burst: cut to 10 ms at 20 Mbit/s (25 kB); the queue adds 25 ms (62.5 kB).
  EXPECT_EQ(TbfFor(20'000'000, 4294967295, 1500).burst_bytes, 25'000u);
  EXPECT_EQ(TbfFor(20'000'000, 4294967295, 1500).limit_bytes, 25'000u + 62'500u);
  EXPECT_EQ(TbfFor(20'000'000, 4294967295, 1500).rate_bytes_per_s, 2'500'000u);
  EXPECT_EQ(TbfFor(20'000'000, 80'000, 1500).burst_bytes, 10'000u);   // a smaller burst is kept
  EXPECT_EQ(TbfFor(1'000, 4294967295, 1500).burst_bytes, 2u * 1514);  // never below two frames
  // Rates beyond 32 bits of bytes per second stay whole (TCA_TBF_RATE64).
  EXPECT_EQ(TbfFor(1'000'000'000'000'000, 4294967295, 9000).rate_bytes_per_s, 125'000'000'000'000u);
}

class ChainedBandwidthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("weir-chained-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }

  std::filesystem::path dir_;
};

TEST_F(ChainedBandwidthTest, RefusesBandwidthAfterWeirInItsOwnList) {
  Write("10-weir.conflist",
        R"({"name":"weir","plugins":[{"type":"weir"},{"type":"portmap"},{"type":"bandwidth"}]})");
  absl::Status refused = RefuseChainedBandwidth(dir_, "weir", "weir");
  EXPECT_EQ(CniCodeOf(refused), CniCode::kInvalidNetworkConfig);
  EXPECT_THAT(refused.message(), HasSubstr("10-weir.conflist chains the \"bandwidth\" plugin after weir"));
  EXPECT_THAT(refused.message(), HasSubstr("\"capabilities\": {\"bandwidth\": true}"));
}

TEST_F(ChainedBandwidthTest, LeavesOtherListsAndBrokenFilesAlone) {
  Write("10-other.conflist", R"({"name":"other","plugins":[{"type":"weir"},{"type":"bandwidth"}]})");
  Write("20-before.conflist", R"({"name":"weir","plugins":[{"type":"bandwidth"},{"type":"weir"}]})");
  Write("30-broken.conflist", R"({"name":"weir","plugins":[{"type":"weir"},)");
  Write("40-notes.txt", R"({"name":"weir","plugins":[{"type":"weir"},{"type":"bandwidth"}]})");
  EXPECT_TRUE(RefuseChainedBandwidth(dir_, "weir", "weir").ok());
  EXPECT_TRUE(RefuseChainedBandwidth((dir_ / "missing").string(), "weir", "weir").ok());
}

}  // namespace
}  // namespace weir::cni
