// Netlink message encoding and decoding, and MAC address text, without a socket.
#include "lib/netlink_message.h"

#include <gtest/gtest.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

#include <cstring>

#include "lib/netlink.h"

namespace weir {
namespace {

const nlmsghdr& HeaderOf(ByteSpan bytes) { return *reinterpret_cast<const nlmsghdr*>(bytes.data()); }

template <typename T>
T ReadAt(ByteSpan bytes, size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(value));
  return value;
}

TEST(NetlinkMessageTest, HeaderCarriesTypeFlagsLengthAndSequence) {
  NetlinkMessage message(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK);
  message.Append(ifinfomsg{});
  EXPECT_EQ(message.type(), RTM_GETLINK);
  const ByteSpan bytes = message.Finish(42);
  ASSERT_EQ(bytes.size(), NLMSG_HDRLEN + sizeof(ifinfomsg));
  const auto header = ReadAt<nlmsghdr>(bytes, 0);
  EXPECT_EQ(header.nlmsg_len, bytes.size());
  EXPECT_EQ(header.nlmsg_type, RTM_GETLINK);
  EXPECT_EQ(header.nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
  EXPECT_EQ(header.nlmsg_seq, 42u);
  EXPECT_EQ(header.nlmsg_pid, 0u);
}

TEST(NetlinkMessageTest, StringAttributesAreTerminatedAndPadded) {
  NetlinkMessage message(RTM_NEWLINK, NLM_F_REQUEST);
  message.Append(ifinfomsg{});
  message.AddString(IFLA_IFNAME, "eth0");  // 4 + 5 bytes, padded to 12
  message.AddU32(IFLA_MTU, 1450);
  const ByteSpan bytes = message.Finish(1);
  const size_t first = NLMSG_HDRLEN + sizeof(ifinfomsg);
  ASSERT_EQ(bytes.size(), first + 12 + 8);
  EXPECT_EQ(ReadAt<rtattr>(bytes, first).rta_len, 9);
  EXPECT_EQ(bytes[first + 4 + 4], 0) << "NUL terminator";
  EXPECT_EQ(ReadAt<rtattr>(bytes, first + 12).rta_type, IFLA_MTU);
  EXPECT_EQ(ReadAt<uint32_t>(bytes, first + 16), 1450u);
}

TEST(NetlinkMessageTest, NestedAttributesRoundTrip) {
  NetlinkMessage message(RTM_NEWLINK, NLM_F_REQUEST);
  message.Append(ifinfomsg{});
  message.AddString(IFLA_IFNAME, "veth0");
  const size_t link_info = message.BeginNested(IFLA_LINKINFO);
  message.AddString(IFLA_INFO_KIND, "veth");
  const size_t data = message.BeginNested(IFLA_INFO_DATA);
  ifinfomsg peer_header{};
  peer_header.ifi_index = 7;
  const size_t peer = message.BeginNested(1);
  message.Append(peer_header);
  message.AddString(IFLA_IFNAME, "eth0");
  message.EndNested(peer);
  message.EndNested(data);
  message.EndNested(link_info);
  message.AddU32(IFLA_MTU, 9000);
  const ByteSpan bytes = message.Finish(1);

  const AttributeTable top(AttributeArea(HeaderOf(bytes), sizeof(ifinfomsg)));
  EXPECT_EQ(top.GetString(IFLA_IFNAME), "veth0");
  EXPECT_EQ(top.GetU32(IFLA_MTU), 9000u) << "attributes after a nest are still found";
  ASSERT_TRUE(top.Get(IFLA_LINKINFO).has_value()) << "the nested flag is stripped from the type";

  const AttributeTable info(*top.Get(IFLA_LINKINFO));
  EXPECT_EQ(info.GetString(IFLA_INFO_KIND), "veth");
  ASSERT_TRUE(info.Get(IFLA_INFO_DATA).has_value());
  const AttributeTable veth(*info.Get(IFLA_INFO_DATA));
  const std::optional<ByteSpan> peer_area = veth.Get(1);
  ASSERT_TRUE(peer_area.has_value());
  ASSERT_GE(peer_area->size(), sizeof(ifinfomsg));
  EXPECT_EQ(ReadAt<ifinfomsg>(*peer_area, 0).ifi_index, 7);
  EXPECT_EQ(AttributeTable(peer_area->subspan(sizeof(ifinfomsg))).GetString(IFLA_IFNAME), "eth0");
}

TEST(NetlinkMessageTest, MissingOrShortAttributesAreAbsent) {
  NetlinkMessage message(RTM_NEWLINK, NLM_F_REQUEST);
  message.Append(ifinfomsg{});
  const uint16_t two_bytes = 5;
  message.AddAttribute(IFLA_MTU, &two_bytes, sizeof(two_bytes));
  const ByteSpan bytes = message.Finish(1);
  const AttributeTable table(AttributeArea(HeaderOf(bytes), sizeof(ifinfomsg)));
  EXPECT_TRUE(table.Get(IFLA_MTU).has_value());
  EXPECT_FALSE(table.GetU32(IFLA_MTU).has_value());
  EXPECT_FALSE(table.Get(IFLA_IFNAME).has_value());
  EXPECT_FALSE(table.GetString(IFLA_IFNAME).has_value());
}

TEST(NetlinkMessageTest, AttributeTableStopsAtMalformedAttribute) {
  // An attribute claiming more bytes than the area holds ends parsing without reading past it.
  uint8_t area[8] = {};
  rtattr attribute{.rta_len = 64, .rta_type = IFLA_MTU};
  std::memcpy(area, &attribute, sizeof(attribute));
  EXPECT_FALSE(AttributeTable(ByteSpan(area, sizeof(area))).Get(IFLA_MTU).has_value());
}

TEST(NetlinkMessageTest, SplitMessagesWalksADatagram) {
  NetlinkMessage first(RTM_NEWLINK, NLM_F_MULTI);
  first.AddString(IFLA_IFNAME, "a");  // 4 + 2 bytes: exercises the padding between messages
  NetlinkMessage second(NLMSG_DONE, NLM_F_MULTI);
  second.AddU32(0, 0);
  std::vector<uint8_t> datagram;
  for (ByteSpan part : {first.Finish(3), second.Finish(3)}) {
    datagram.insert(datagram.end(), part.begin(), part.end());
  }
  datagram.push_back(0xff);  // a trailing fragment too short for a header is ignored

  const std::vector<const nlmsghdr*> messages = SplitMessages(ByteSpan(datagram.data(), datagram.size()));
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0]->nlmsg_type, RTM_NEWLINK);
  EXPECT_EQ(messages[1]->nlmsg_type, NLMSG_DONE);
  EXPECT_EQ(MessagePayload(*messages[1]).size(), 8u);
}

TEST(NetlinkMessageTest, SplitMessagesRejectsOverlongLength) {
  NetlinkMessage message(RTM_NEWLINK, 0);
  const ByteSpan bytes = message.Finish(1);
  std::vector<uint8_t> datagram(bytes.begin(), bytes.end());
  reinterpret_cast<nlmsghdr*>(datagram.data())->nlmsg_len = 1000;
  EXPECT_TRUE(SplitMessages(ByteSpan(datagram.data(), datagram.size())).empty());
}

TEST(NetlinkMessageTest, AttributeAreaOfShortMessageIsEmpty) {
  NetlinkMessage message(RTM_NEWLINK, 0);
  const ByteSpan bytes = message.Finish(1);
  EXPECT_TRUE(AttributeArea(HeaderOf(bytes), sizeof(ifinfomsg)).empty());
}

TEST(MacAddressTest, FormatsLowercase) {
  EXPECT_EQ(FormatMac({0xaa, 0xBB, 0x0c, 0x00, 0x01, 0xff}), "aa:bb:0c:00:01:ff");
}

TEST(MacAddressTest, ParsesEitherCase) {
  absl::StatusOr<MacAddress> mac = ParseMac("AA:bb:0C:00:01:fF");
  ASSERT_TRUE(mac.ok()) << mac.status();
  EXPECT_EQ(*mac, (MacAddress{0xaa, 0xbb, 0x0c, 0x00, 0x01, 0xff}));
  EXPECT_EQ(FormatMac(*mac), "aa:bb:0c:00:01:ff");
}

TEST(MacAddressTest, RejectsMalformed) {
  for (std::string_view text :
       {"", "aa:bb:cc:dd:ee", "aa:bb:cc:dd:ee:ff:00", "aa-bb-cc-dd-ee-ff", "a:bb:cc:dd:ee:ff",
        "aaa:bb:cc:dd:ee:f", "gg:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee:ff:", "aa:bb:cc:dd:ee: f"}) {
    EXPECT_EQ(ParseMac(text).status().code(), absl::StatusCode::kInvalidArgument) << text;
  }
}

}  // namespace
}  // namespace weir
