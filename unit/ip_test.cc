#include "lib/ip.h"

#include <gtest/gtest.h>

namespace weir {
namespace {

IpAddress Addr(std::string_view text) {
  absl::StatusOr<IpAddress> address = IpAddress::Parse(text);
  EXPECT_TRUE(address.ok()) << text << ": " << address.status();
  return address.value_or(IpAddress());
}

IpPrefix Prefix(std::string_view text) {
  absl::StatusOr<IpPrefix> prefix = IpPrefix::Parse(text);
  EXPECT_TRUE(prefix.ok()) << text << ": " << prefix.status();
  return prefix.value_or(IpPrefix());
}

TEST(IpAddressTest, ParsesAndFormatsV4) {
  const IpAddress address = Addr("10.244.1.5");
  EXPECT_TRUE(address.is_v4());
  EXPECT_EQ(address.family(), IpFamily::kV4);
  EXPECT_EQ(address.bit_length(), 32);
  EXPECT_EQ(address.byte_length(), 4);
  EXPECT_EQ(address.bytes()[0], 10);
  EXPECT_EQ(address.bytes()[3], 5);
  EXPECT_EQ(address.bytes()[4], 0);
  EXPECT_EQ(address.ToString(), "10.244.1.5");
}

TEST(IpAddressTest, ParsesAndFormatsV6InCanonicalForm) {
  const IpAddress address = Addr("FD00:0:0:0:0:0:0:0001");
  EXPECT_FALSE(address.is_v4());
  EXPECT_EQ(address.family(), IpFamily::kV6);
  EXPECT_EQ(address.bit_length(), 128);
  EXPECT_EQ(address.byte_length(), 16);
  EXPECT_EQ(address.ToString(), "fd00::1");
  EXPECT_EQ(Addr("::").ToString(), "::");
  EXPECT_EQ(Addr("::ffff:10.0.0.1").ToString(), "::ffff:10.0.0.1");
}

TEST(IpAddressTest, RejectsInvalidText) {
  for (std::string_view text : {"", "10.0.0", "10.0.0.256", "10.0.0.1/24", " 10.0.0.1", "10.0.0.1 ",
                                "fd00:::1", "fd00::1/64", "hello", "1.2.3.4.5", "fd00::g"}) {
    EXPECT_EQ(IpAddress::Parse(text).status().code(), absl::StatusCode::kInvalidArgument) << text;
  }
}

TEST(IpAddressTest, V4FromHostOrder) {
  EXPECT_EQ(IpAddress::V4(0x0af40105).ToString(), "10.244.1.5");
  EXPECT_EQ(IpAddress::V4(0), Addr("0.0.0.0"));
  EXPECT_EQ(IpAddress::V4(0xffffffff), Addr("255.255.255.255"));
}

TEST(IpAddressTest, FromBytes) {
  const uint8_t v4[] = {192, 168, 0, 1};
  EXPECT_EQ(IpAddress::FromBytes(IpFamily::kV4, v4), Addr("192.168.0.1"));
  uint8_t v6[16] = {0xfd};
  v6[15] = 0x2a;
  EXPECT_EQ(IpAddress::FromBytes(IpFamily::kV6, v6), Addr("fd00::2a"));
}

TEST(IpAddressTest, PlusCarriesAcrossBytes) {
  EXPECT_EQ(Addr("10.0.0.255").Plus(1), Addr("10.0.1.0"));
  EXPECT_EQ(Addr("10.0.255.255").Plus(2), Addr("10.1.0.1"));
  EXPECT_EQ(Addr("10.0.0.1").Plus(0), Addr("10.0.0.1"));
  EXPECT_EQ(Addr("10.0.0.0").Plus(65536), Addr("10.1.0.0"));
  EXPECT_EQ(Addr("fd00::ffff").Plus(1), Addr("fd00::1:0"));
  EXPECT_EQ(Addr("fd00::ffff:ffff:ffff:ffff").Plus(1), Addr("fd00:0:0:1::"));
  EXPECT_EQ(Addr("fd00::").Plus(uint64_t{1} << 40), Addr("fd00::100:0:0"));
}

TEST(IpAddressTest, PlusWrapsWithinFamily) {
  EXPECT_EQ(Addr("255.255.255.255").Plus(1), Addr("0.0.0.0"));
  EXPECT_TRUE(Addr("255.255.255.255").Plus(1).is_v4());
}

TEST(IpAddressTest, MinusIsDistance) {
  EXPECT_EQ(Addr("10.0.1.0").Minus(Addr("10.0.0.255")), 1u);
  EXPECT_EQ(Addr("10.1.0.1").Minus(Addr("10.0.0.0")), 65537u);
  EXPECT_EQ(Addr("10.0.0.7").Minus(Addr("10.0.0.7")), 0u);
  EXPECT_EQ(Addr("fd00::1:0:5").Minus(Addr("fd00::")), (uint64_t{1} << 32) + 5);
  EXPECT_EQ(Addr("fd00::1:0").Minus(Addr("fd00::ffff")), 1u);
  EXPECT_EQ(Addr("fd00::").Plus(123456789).Minus(Addr("fd00::")), 123456789u);
}

TEST(IpAddressTest, OrdersByFamilyThenBytes) {
  EXPECT_LT(Addr("10.0.0.1"), Addr("10.0.0.2"));
  EXPECT_LT(Addr("9.255.255.255"), Addr("10.0.0.0"));
  EXPECT_LT(Addr("255.255.255.255"), Addr("::"));
  EXPECT_EQ(Addr("fd00::1"), Addr("fd00:0::1"));
  EXPECT_NE(Addr("0.0.0.0"), Addr("::"));
}

TEST(IpPrefixTest, ParsesAndFormats) {
  const IpPrefix prefix = Prefix("10.244.1.5/24");
  EXPECT_EQ(prefix.address(), Addr("10.244.1.5"));
  EXPECT_EQ(prefix.length(), 24);
  EXPECT_EQ(prefix.family(), IpFamily::kV4);
  EXPECT_EQ(prefix.ToString(), "10.244.1.5/24");
  EXPECT_EQ(Prefix("FD00::/64").ToString(), "fd00::/64");
  EXPECT_EQ(Prefix("0.0.0.0/0").length(), 0);
  EXPECT_EQ(Prefix("::/0").family(), IpFamily::kV6);
  EXPECT_EQ(Prefix("fd00::1/128").length(), 128);
}

TEST(IpPrefixTest, RejectsInvalidText) {
  for (std::string_view text :
       {"", "10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/ 8",
        "10.0.0.0/8 ", "10.0.0.0/8/8", "10.0.0/8", "/8", "fd00::/129", "fd00::/0x10", "10.0.0.0/0008"}) {
    EXPECT_EQ(IpPrefix::Parse(text).status().code(), absl::StatusCode::kInvalidArgument) << text;
  }
}

TEST(IpPrefixTest, NetworkClearsHostBits) {
  EXPECT_EQ(Prefix("10.244.1.5/24").Network(), Prefix("10.244.1.0/24"));
  EXPECT_EQ(Prefix("10.244.1.5/32").Network(), Prefix("10.244.1.5/32"));
  EXPECT_EQ(Prefix("10.244.1.5/0").Network(), Prefix("0.0.0.0/0"));
  EXPECT_EQ(Prefix("10.244.255.255/15").Network(), Prefix("10.244.0.0/15"));
  EXPECT_EQ(Prefix("fd00:1:2:3:4:5:6:7/64").Network(), Prefix("fd00:1:2:3::/64"));
  EXPECT_EQ(Prefix("fd00::7/0").Network(), Prefix("::/0"));
  EXPECT_EQ(Prefix("fd00::7/128").Network(), Prefix("fd00::7/128"));
  EXPECT_EQ(Prefix("fd00::ff/121").Network(), Prefix("fd00::80/121"));
}

TEST(IpPrefixTest, Contains) {
  const IpPrefix pods = Prefix("10.244.0.0/16");
  EXPECT_TRUE(pods.Contains(Addr("10.244.0.0")));
  EXPECT_TRUE(pods.Contains(Addr("10.244.255.255")));
  EXPECT_FALSE(pods.Contains(Addr("10.245.0.0")));
  EXPECT_FALSE(pods.Contains(Addr("10.243.255.255")));
  EXPECT_FALSE(pods.Contains(Addr("::")));
  // Host bits in the prefix itself do not matter.
  EXPECT_TRUE(Prefix("10.244.3.9/16").Contains(Addr("10.244.200.1")));
  EXPECT_TRUE(Prefix("0.0.0.0/0").Contains(Addr("1.2.3.4")));
  EXPECT_FALSE(Prefix("0.0.0.0/0").Contains(Addr("::1")));
  EXPECT_TRUE(Prefix("::/0").Contains(Addr("fd00::1")));
  EXPECT_TRUE(Prefix("fd00:10::/64").Contains(Addr("fd00:10::ffff:1")));
  EXPECT_FALSE(Prefix("fd00:10::/64").Contains(Addr("fd00:10:0:1::")));
  EXPECT_TRUE(Prefix("fd00::5/128").Contains(Addr("fd00::5")));
  EXPECT_FALSE(Prefix("fd00::5/128").Contains(Addr("fd00::4")));
}

TEST(IpPrefixTest, SizeSaturates) {
  EXPECT_EQ(Prefix("10.0.0.0/24").Size(), 256u);
  EXPECT_EQ(Prefix("10.0.0.1/32").Size(), 1u);
  EXPECT_EQ(Prefix("0.0.0.0/0").Size(), uint64_t{1} << 32);
  EXPECT_EQ(Prefix("fd00::/120").Size(), 256u);
  EXPECT_EQ(Prefix("fd00::/65").Size(), uint64_t{1} << 63);
  EXPECT_EQ(Prefix("fd00::/64").Size(), uint64_t{1} << 63);
  EXPECT_EQ(Prefix("::/0").Size(), uint64_t{1} << 63);
  EXPECT_EQ(Prefix("fd00::/66").Size(), uint64_t{1} << 62);
}

TEST(IpPrefixTest, OrdersAndCompares) {
  EXPECT_EQ(Prefix("10.0.0.0/8"), Prefix("10.0.0.0/8"));
  EXPECT_NE(Prefix("10.0.0.0/8"), Prefix("10.0.0.0/9"));
  EXPECT_LT(Prefix("10.0.0.0/8"), Prefix("10.0.0.0/9"));
  EXPECT_LT(Prefix("10.0.0.0/24"), Prefix("10.0.1.0/24"));
}

}  // namespace
}  // namespace weir
