// Builds the test packets for the BPF_PROG_TEST_RUN tables, with correct checksums, so that an
// expected output is written the same way as an input.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lib/ip.h"
#include "lib/netlink.h"

namespace weir::testing {

using Bytes = std::vector<uint8_t>;

struct L2 {
  MacAddress src{};
  MacAddress dst{};
};

Bytes Ipv4Udp(const L2& l2, const std::string& src, const std::string& dst, uint8_t ttl = 64);
Bytes Ipv6Udp(const L2& l2, const std::string& src, const std::string& dst, uint8_t hop_limit = 64);
Bytes ArpRequest(const MacAddress& sender_mac, const std::string& sender_ip, const std::string& target_ip);
Bytes ArpReply(const MacAddress& sender_mac, const std::string& sender_ip, const MacAddress& target_mac,
               const std::string& target_ip);
// A neighbour solicitation with the source link-layer option; `with_option` false leaves it out.
Bytes NeighborSolicit(const MacAddress& sender_mac, const std::string& sender_ip, const std::string& target,
                      bool with_option = true);
Bytes NeighborAdvert(const MacAddress& gateway_mac, const std::string& target, const MacAddress& dst_mac,
                     const std::string& dst_ip);

// A TCP segment (no payload) with correct IP and TCP checksums; works for either family.
struct Tcp {
  std::string src;
  uint16_t sport = 0;
  std::string dst;
  uint16_t dport = 0;
  uint8_t flags = 0x02;  // SYN
  uint32_t seq = 1000;
  uint32_t ack = 0;
  uint8_t ttl = 64;
  uint16_t window = 64240;
};
Bytes TcpPacket(const L2& l2, const Tcp& tcp);
// A connection's first segment, and the answer to it (seq 5000, acknowledging 1001), as the
// datapath tables write them.
Tcp SynSegment(std::string src, uint16_t sport, std::string dst, uint16_t dport, uint8_t ttl = 64);
Tcp SynAckSegment(std::string src, uint16_t sport, std::string dst, uint16_t dport, uint8_t ttl = 64);
// A UDP datagram with a correct checksum.
Bytes UdpPacket(const L2& l2, const std::string& src, uint16_t sport, const std::string& dst, uint16_t dport,
                uint8_t ttl = 64);

// An ICMP (IPv4) or ICMPv6 echo request (`reply` false) or reply with identifier `id`, sequence 1 and
// 8 bytes of payload, with correct checksums.
Bytes IcmpEcho(const L2& l2, const std::string& src, const std::string& dst, uint16_t id, bool reply = false,
               uint8_t ttl = 64);

// Whether the TCP, UDP, ICMP or ICMPv6 checksum of `frame` (Ethernet, IPv4 without options or IPv6
// without extension headers) verifies.
bool L4ChecksumValid(const Bytes& frame);

// An SCTP packet: common header and one DATA chunk of `payload` bytes (padded to 4), its CRC32c
// computed bit by bit here, independently of the datapath's. `crc` false leaves the checksum field
// zero, as a local sender with CRC offload (CHECKSUM_PARTIAL) does.
struct Sctp {
  std::string src;
  uint16_t sport = 0;
  std::string dst;
  uint16_t dport = 0;
  size_t payload = 20;
  uint8_t ttl = 64;
  bool crc = true;
  uint32_t tsn = 1;
};
Bytes SctpPacket(const L2& l2, const Sctp& sctp);
// The CRC32c (Castagnoli) of `data`, bit by bit.
uint32_t Crc32c(const uint8_t* data, size_t len);

// `inner` (an Ethernet frame) wrapped in an outer IPv4 header (protocol 4) with the given id.
Bytes Ipip(const L2& l2, const std::string& outer_src, const std::string& outer_dst, uint16_t id,
           const Bytes& inner);

// `inner` (an Ethernet frame carrying IPv6) wrapped in an outer IPv6 header (next header 41) with the
// given flow label.
Bytes Ip6ip6(const L2& l2, const std::string& outer_src, const std::string& outer_dst, uint32_t flow_label,
             const Bytes& inner);

// ICMP (v4) or ICMPv6 port unreachable from `src` to `dst`, quoting `original`'s IP header and the
// first 8 bytes after it (`original` is an Ethernet frame without IP options).
Bytes PortUnreachable(const L2& l2, const std::string& src, const std::string& dst, const Bytes& original);

// An IPv4 packet (Ethernet frame, no options) with `option` inserted after its IP header.
Bytes WithIpv4Option(const Bytes& packet, const Bytes& option);

std::string Hex(const Bytes& bytes);

}  // namespace weir::testing
