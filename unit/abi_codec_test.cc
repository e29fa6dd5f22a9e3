// The ABI codec: what a key encodes to is what the datapath expects (network byte order, family
// codes), decoding gives back what was encoded, and the text is what weirctl and the logs show.
#include "lib/abi_codec.h"

#include <arpa/inet.h>

#include "gtest/gtest.h"

namespace weir::abi {
namespace {

IpAddress Ip(const char* text) { return *IpAddress::Parse(text); }

TEST(AbiCodecTest, ServiceKeyInNetworkOrderWithFamilyCode) {
  const weir_service_key key = EncodeServiceKey({Ip("10.96.0.1"), 8080, WEIR_PROTO_UDP, WEIR_SCOPE_INTERNAL});
  EXPECT_EQ(key.port, htons(8080));
  EXPECT_EQ(key.family, WEIR_FAMILY_IPV4);
  EXPECT_EQ(key.addr.v4, htonl(0x0a600001));
  EXPECT_EQ(key.addr.v6[1], 0u) << "the rest of an IPv4 address is zero";
  std::optional<ServiceKeyFields> decoded = DecodeServiceKey(key);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->address, Ip("10.96.0.1"));
  EXPECT_EQ(decoded->port, 8080);
  EXPECT_EQ(Render(key), "10.96.0.1:8080/UDP/internal");
}

TEST(AbiCodecTest, BackendsRoundTripAndRenderTheirFlags) {
  const weir_backend backend =
      EncodeBackend({Ip("fd00::5"), 443, WEIR_PROTO_TCP, WEIR_BACKEND_LOCAL | WEIR_BACKEND_TERMINATING});
  EXPECT_EQ(backend.family, WEIR_FAMILY_IPV6);
  EXPECT_EQ(Render(backend), "[fd00::5]:443/TCP local terminating");
  EXPECT_EQ(DecodeBackend(backend)->address, Ip("fd00::5"));
}

TEST(AbiCodecTest, UnknownFamiliesAndNumbersAreShownNotGuessed) {
  weir_service_key key{};
  key.family = 9;
  key.proto = 99;
  key.scope = 7;
  key.port = htons(80);
  EXPECT_FALSE(DecodeServiceKey(key).has_value());
  EXPECT_EQ(Render(key), "<family 9>:80/proto-99/scope-7");
  EXPECT_EQ(ServiceFlagList(WEIR_SVC_NODE_PORT | 0x8000), (std::vector<std::string>{"node-port", "0x8000"}));
}

TEST(AbiCodecTest, EndpointsRoundTrip) {
  Endpoint endpoint{
      .address = Ip("10.1.0.7"), .host_ifindex = 12, .pod_mac = {2, 0, 0, 0, 0, 7}, .pod_id = 99};
  std::optional<Endpoint> decoded =
      DecodeEndpoint(EncodeEndpointKey(endpoint.address), EncodeEndpointValue(endpoint));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->address, endpoint.address);
  EXPECT_EQ(decoded->host_ifindex, 12);
  EXPECT_EQ(decoded->pod_mac, endpoint.pod_mac);
  EXPECT_EQ(decoded->pod_id, 99u);
}

TEST(AbiCodecTest, ConntrackAndNonMasqueradeKeys) {
  const weir_ct_key key = EncodeConntrackKey({Ip("10.1.0.7"), 5000, Ip("10.96.0.1"), 80, WEIR_PROTO_TCP});
  EXPECT_EQ(Render(key), "TCP 10.1.0.7:5000 -> 10.96.0.1:80");
  const weir_nonmasq_key cidr = EncodeNonMasqueradeKey(*IpPrefix::Parse("10.1.2.3/16"));
  EXPECT_EQ(cidr.prefixlen, WEIR_NONMASQ_FAMILY_BITS + 16);
  EXPECT_EQ(Render(cidr), "10.1.0.0/16");
}

}  // namespace
}  // namespace weir::abi
