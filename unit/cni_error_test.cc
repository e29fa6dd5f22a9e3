#include "cni/error.h"

#include <gtest/gtest.h>

#include "rapidjson/document.h"

namespace weir::cni {
namespace {

TEST(CniErrorTest, CarriesCodeAndDetails) {
  absl::Status status = CniError(CniCode::kInvalidNetworkConfig, "bad cidr", "podCIDRs[0]");
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "bad cidr");
  EXPECT_EQ(CniCodeOf(status), CniCode::kInvalidNetworkConfig);
  EXPECT_EQ(CniDetailsOf(status), "podCIDRs[0]");
}

TEST(CniErrorTest, AbslCodesFollowCniCodes) {
  EXPECT_EQ(CniError(CniCode::kIpamExhausted, "full").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(CniError(CniCode::kTryAgainLater, "x").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(CniError(CniCode::kUnknownContainer, "x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(CniError(CniCode::kIncompatibleVersion, "x").code(), absl::StatusCode::kFailedPrecondition);
}

TEST(CniErrorTest, FallbackWithoutPayload) {
  EXPECT_EQ(CniCodeOf(absl::InternalError("x")), CniCode::kInternal);
  EXPECT_EQ(CniCodeOf(absl::InvalidArgumentError("x")), CniCode::kInternal);
  EXPECT_EQ(CniCodeOf(absl::UnavailableError("x")), CniCode::kTryAgainLater);
  EXPECT_EQ(CniCodeOf(absl::DeadlineExceededError("x")), CniCode::kTryAgainLater);
  EXPECT_EQ(CniCodeOf(absl::OkStatus()), CniCode::kInternal);
  EXPECT_EQ(CniDetailsOf(absl::InternalError("x")), "");
}

TEST(CniErrorTest, WrapKeepsCodeOrAddsFallback) {
  absl::Status wrapped =
      WrapCniError(CniError(CniCode::kIpamExhausted, "range full", "d"), CniCode::kInternal, "allocating");
  EXPECT_EQ(CniCodeOf(wrapped), CniCode::kIpamExhausted);
  EXPECT_EQ(wrapped.message(), "allocating: range full");
  EXPECT_EQ(CniDetailsOf(wrapped), "d");

  absl::Status plain = WrapCniError(absl::NotFoundError("no such file"), CniCode::kIoFailure, "reading");
  EXPECT_EQ(CniCodeOf(plain), CniCode::kIoFailure);
  EXPECT_EQ(plain.message(), "reading: no such file");

  EXPECT_TRUE(WrapCniError(absl::OkStatus(), CniCode::kInternal, "x").ok());
}

TEST(CniErrorTest, JsonHasSpecFields) {
  const std::string json =
      CniErrorJson(CniError(CniCode::kInvalidEnv, "CNI_NETNS is required", "more \"info\""), "1.0.0");
  rapidjson::Document document;
  document.Parse(json.c_str());
  ASSERT_FALSE(document.HasParseError()) << json;
  EXPECT_STREQ(document["cniVersion"].GetString(), "1.0.0");
  EXPECT_EQ(document["code"].GetInt(), 4);
  EXPECT_STREQ(document["msg"].GetString(), "CNI_NETNS is required");
  EXPECT_STREQ(document["details"].GetString(), "more \"info\"");
}

TEST(CniErrorTest, JsonOmitsEmptyDetailsAndDefaultsVersion) {
  const std::string json = CniErrorJson(absl::InternalError("boom"), "");
  EXPECT_EQ(json, R"({"cniVersion":"1.1.0","code":100,"msg":"boom"})");
}

TEST(CniErrorTest, CodeValuesMatchSpec) {
  EXPECT_EQ(static_cast<int>(CniCode::kIncompatibleVersion), 1);
  EXPECT_EQ(static_cast<int>(CniCode::kDecodeFailure), 6);
  EXPECT_EQ(static_cast<int>(CniCode::kInvalidNetworkConfig), 7);
  EXPECT_EQ(static_cast<int>(CniCode::kTryAgainLater), 11);
  EXPECT_EQ(static_cast<int>(CniCode::kPluginNotAvailable), 50);
  EXPECT_EQ(static_cast<int>(CniCode::kPluginNotAvailableLimitedConnectivity), 51);
  EXPECT_EQ(CniCodeName(CniCode::kInvalidEnv), "invalid necessary environment variables");
}

}  // namespace
}  // namespace weir::cni
