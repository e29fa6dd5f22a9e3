#include "testlib/packets.h"

#include <arpa/inet.h>

#include <optional>

#include "absl/strings/str_format.h"

namespace weir::testing {
namespace {

IpAddress Ip(const std::string& text) { return *IpAddress::Parse(text); }

void Put16(Bytes& b, uint16_t v) {
  b.push_back(v >> 8);
  b.push_back(v & 0xff);
}
void PutMac(Bytes& b, const MacAddress& mac) { b.insert(b.end(), mac.begin(), mac.end()); }
void PutIp(Bytes& b, const IpAddress& ip) {
  b.insert(b.end(), ip.bytes().begin(), ip.bytes().begin() + ip.byte_length());
}

uint32_t SumWords(const uint8_t* data, size_t len, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += (data[i] << 8) | data[i + 1];
  if (len % 2) sum += data[len - 1] << 8;
  return sum;
}
uint16_t Fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

void Ethernet(Bytes& b, const MacAddress& dst, const MacAddress& src, uint16_t proto) {
  PutMac(b, dst);
  PutMac(b, src);
  Put16(b, proto);
}

const uint8_t kUdpPayload[] = {0, 1, 2, 3, 4, 5, 6, 7};

void Udp(Bytes& b) {
  Put16(b, 40000);
  Put16(b, 8080);
  Put16(b, 8 + sizeof(kUdpPayload));
  Put16(b, 0);  // no checksum: the programs under test do not touch L4
  b.insert(b.end(), std::begin(kUdpPayload), std::end(kUdpPayload));
}

void Ipv6Header(Bytes& b, const IpAddress& src, const IpAddress& dst, uint16_t payload_len, uint8_t next,
                uint8_t hop_limit) {
  b.insert(b.end(), {0x60, 0, 0, 0});
  Put16(b, payload_len);
  b.push_back(next);
  b.push_back(hop_limit);
  PutIp(b, src);
  PutIp(b, dst);
}

// ICMPv6 checksum over the pseudo header and the message starting at `offset`.
void FillIcmp6Checksum(Bytes& b, size_t ip_offset, size_t icmp_offset) {
  uint32_t sum = SumWords(&b[ip_offset + 8], 32);
  uint32_t len = b.size() - icmp_offset;
  sum += len >> 16;
  sum += len & 0xffff;
  sum += 58;
  sum = SumWords(&b[icmp_offset], len, sum);
  uint16_t csum = Fold(sum);
  b[icmp_offset + 2] = csum >> 8;
  b[icmp_offset + 3] = csum & 0xff;
}

}  // namespace

Bytes Ipv4Udp(const L2& l2, const std::string& src, const std::string& dst, uint8_t ttl) {
  Bytes b;
  Ethernet(b, l2.dst, l2.src, 0x0800);
  size_t ip = b.size();
  b.insert(b.end(), {0x45, 0});
  Put16(b, 20 + 8 + sizeof(kUdpPayload));
  b.insert(b.end(), {0x12, 0x34, 0x40, 0, ttl, 17, 0, 0});
  PutIp(b, Ip(src));
  PutIp(b, Ip(dst));
  uint16_t csum = Fold(SumWords(&b[ip], 20));
  b[ip + 10] = csum >> 8;
  b[ip + 11] = csum & 0xff;
  Udp(b);
  return b;
}

Bytes Ipv6Udp(const L2& l2, const std::string& src, const std::string& dst, uint8_t hop_limit) {
  Bytes b;
  Ethernet(b, l2.dst, l2.src, 0x86dd);
  Ipv6Header(b, Ip(src), Ip(dst), 8 + sizeof(kUdpPayload), 17, hop_limit);
  Udp(b);
  return b;
}

static Bytes Arp(uint16_t op, const MacAddress& eth_dst, const MacAddress& sha, const std::string& sip,
                 const MacAddress& tha, const std::string& tip) {
  Bytes b;
  Ethernet(b, eth_dst, sha, 0x0806);
  Put16(b, 1);
  Put16(b, 0x0800);
  b.push_back(6);
  b.push_back(4);
  Put16(b, op);
  PutMac(b, sha);
  PutIp(b, Ip(sip));
  PutMac(b, tha);
  PutIp(b, Ip(tip));
  return b;
}

Bytes ArpRequest(const MacAddress& sender_mac, const std::string& sender_ip, const std::string& target_ip) {
  return Arp(1, MacAddress{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, sender_mac, sender_ip, MacAddress{},
             target_ip);
}

Bytes ArpReply(const MacAddress& sender_mac, const std::string& sender_ip, const MacAddress& target_mac,
               const std::string& target_ip) {
  return Arp(2, target_mac, sender_mac, sender_ip, target_mac, target_ip);
}

Bytes NeighborSolicit(const MacAddress& sender_mac, const std::string& sender_ip, const std::string& target,
                      bool with_option) {
  Bytes b;
  Ethernet(b, MacAddress{0x33, 0x33, 0xff, 0, 0, 1}, sender_mac, 0x86dd);
  size_t ip = b.size();
  uint16_t len = with_option ? 32 : 24;
  Ipv6Header(b, Ip(sender_ip), Ip("ff02::1:ff00:1"), len, 58, 255);
  size_t icmp = b.size();
  b.insert(b.end(), {135, 0, 0, 0, 0, 0, 0, 0});
  PutIp(b, Ip(target));
  if (with_option) {
    b.insert(b.end(), {1, 1});
    PutMac(b, sender_mac);
  }
  FillIcmp6Checksum(b, ip, icmp);
  return b;
}

Bytes NeighborAdvert(const MacAddress& gateway_mac, const std::string& target, const MacAddress& dst_mac,
                     const std::string& dst_ip) {
  Bytes b;
  Ethernet(b, dst_mac, gateway_mac, 0x86dd);
  size_t ip = b.size();
  Ipv6Header(b, Ip(target), Ip(dst_ip), 32, 58, 255);
  size_t icmp = b.size();
  b.insert(b.end(), {136, 0, 0, 0, 0xe0, 0, 0, 0});
  PutIp(b, Ip(target));
  b.insert(b.end(), {2, 1});
  PutMac(b, gateway_mac);
  FillIcmp6Checksum(b, ip, icmp);
  return b;
}

namespace {

// Appends an IP header for `l4` and `l4` itself, filling the L4 checksum at `csum_at` (offset in l4).
// `csum_at` nullopt: an L4 checksum of its own (SCTP's), already in `l4`.
Bytes WithIp(const L2& l2, const IpAddress& src, const IpAddress& dst, uint8_t proto, uint8_t ttl, Bytes l4,
             std::optional<size_t> csum_at) {
  if (csum_at) {
    uint32_t sum = SumWords(src.bytes().data(), src.byte_length());
    sum = SumWords(dst.bytes().data(), dst.byte_length(), sum);
    sum += proto;
    sum += l4.size();
    sum = SumWords(l4.data(), l4.size(), sum);
    uint16_t csum = Fold(sum);
    if (proto == 17 && csum == 0) csum = 0xffff;
    l4[*csum_at] = csum >> 8;
    l4[*csum_at + 1] = csum & 0xff;
  }

  Bytes b;
  if (src.is_v4()) {
    Ethernet(b, l2.dst, l2.src, 0x0800);
    size_t ip = b.size();
    b.insert(b.end(), {0x45, 0});
    Put16(b, 20 + l4.size());
    b.insert(b.end(), {0x12, 0x34, 0x40, 0, ttl, proto, 0, 0});
    PutIp(b, src);
    PutIp(b, dst);
    uint16_t ip_csum = Fold(SumWords(&b[ip], 20));
    b[ip + 10] = ip_csum >> 8;
    b[ip + 11] = ip_csum & 0xff;
  } else {
    Ethernet(b, l2.dst, l2.src, 0x86dd);
    Ipv6Header(b, src, dst, l4.size(), proto, ttl);
  }
  b.insert(b.end(), l4.begin(), l4.end());
  return b;
}

void Put32(Bytes& b, uint32_t v) {
  Put16(b, v >> 16);
  Put16(b, v & 0xffff);
}

}  // namespace

Bytes TcpPacket(const L2& l2, const Tcp& tcp) {
  Bytes l4;
  Put16(l4, tcp.sport);
  Put16(l4, tcp.dport);
  Put32(l4, tcp.seq);
  Put32(l4, tcp.ack);
  l4.push_back(5 << 4);
  l4.push_back(tcp.flags);
  Put16(l4, tcp.window);
  Put16(l4, 0);
  Put16(l4, 0);
  return WithIp(l2, Ip(tcp.src), Ip(tcp.dst), 6, tcp.ttl, l4, 16);
}

uint32_t Crc32c(const uint8_t* data, size_t len) {
  uint32_t crc = ~0u;
  for (size_t i = 0; i < len; ++i) {
    crc ^= data[i];
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) ? 0x82f63b78u : 0);
  }
  return ~crc;
}

Bytes SctpPacket(const L2& l2, const Sctp& sctp) {
  Bytes l4;
  Put16(l4, sctp.sport);
  Put16(l4, sctp.dport);
  Put32(l4, 0x5c7e0001);  // verification tag
  Put32(l4, 0);           // checksum, filled below
  Put16(l4, 0x0003);      // DATA, unfragmented
  Put16(l4, 16 + sctp.payload);
  Put32(l4, sctp.tsn);
  Put32(l4, 0);  // stream 0, sequence 0
  Put32(l4, 0);  // payload protocol
  for (size_t i = 0; i < sctp.payload; ++i) l4.push_back(static_cast<uint8_t>(i * 7 + 3));
  while (l4.size() % 4) l4.push_back(0);
  if (sctp.crc) {
    uint32_t crc = Crc32c(l4.data(), l4.size());
    for (int i = 0; i < 4; ++i) l4[8 + i] = (crc >> (8 * i)) & 0xff;  // least significant byte first
  }
  return WithIp(l2, Ip(sctp.src), Ip(sctp.dst), 132, sctp.ttl, l4, std::nullopt);
}

Bytes UdpPacket(const L2& l2, const std::string& src, uint16_t sport, const std::string& dst, uint16_t dport,
                uint8_t ttl) {
  Bytes l4;
  Put16(l4, sport);
  Put16(l4, dport);
  Put16(l4, 8 + sizeof(kUdpPayload));
  Put16(l4, 0);
  l4.insert(l4.end(), std::begin(kUdpPayload), std::end(kUdpPayload));
  return WithIp(l2, Ip(src), Ip(dst), 17, ttl, l4, 6);
}

Bytes IcmpEcho(const L2& l2, const std::string& src, const std::string& dst, uint16_t id, bool reply,
               uint8_t ttl) {
  const IpAddress from = Ip(src), to = Ip(dst);
  const bool v4 = from.is_v4();
  Bytes l4 = {static_cast<uint8_t>(v4 ? (reply ? 0 : 8) : (reply ? 129 : 128)), 0, 0, 0};
  Put16(l4, id);
  Put16(l4, 1);
  l4.insert(l4.end(), std::begin(kUdpPayload), std::end(kUdpPayload));
  if (v4) {
    // ICMP's checksum covers the message alone.
    const uint16_t csum = Fold(SumWords(l4.data(), l4.size()));
    l4[2] = csum >> 8;
    l4[3] = csum & 0xff;
    return WithIp(l2, from, to, 1, ttl, l4, std::nullopt);
  }
  return WithIp(l2, from, to, 58, ttl, l4, 2);
}

bool L4ChecksumValid(const Bytes& frame) {
  if (frame.size() < 14) return false;
  const bool v4 = frame[12] == 0x08 && frame[13] == 0x00;
  const size_t l3 = 14, l4 = v4 ? l3 + 20 : l3 + 40;
  if (frame.size() < l4) return false;
  const uint8_t proto = v4 ? frame[l3 + 9] : frame[l3 + 6];
  const size_t length = frame.size() - l4;
  uint32_t sum = 0;
  if (proto != 1) {  // every other checksum here covers the pseudo header
    const size_t address_bytes = v4 ? 4 : 16;
    sum = SumWords(&frame[v4 ? l3 + 12 : l3 + 8], 2 * address_bytes);
    sum += proto;
    sum += length;
  }
  sum = SumWords(&frame[l4], length, sum);
  return Fold(sum) == 0;
}

Bytes Ipip(const L2& l2, const std::string& outer_src, const std::string& outer_dst, uint16_t id,
           const Bytes& inner) {
  Bytes b;
  Ethernet(b, l2.dst, l2.src, 0x0800);
  size_t ip = b.size();
  b.insert(b.end(), {0x45, 0});
  Put16(b, 20 + inner.size() - 14);
  Put16(b, id);
  b.insert(b.end(), {0, 0, 64, 4, 0, 0});
  PutIp(b, Ip(outer_src));
  PutIp(b, Ip(outer_dst));
  uint16_t csum = Fold(SumWords(&b[ip], 20));
  b[ip + 10] = csum >> 8;
  b[ip + 11] = csum & 0xff;
  b.insert(b.end(), inner.begin() + 14, inner.end());
  return b;
}

Bytes Ip6ip6(const L2& l2, const std::string& outer_src, const std::string& outer_dst, uint32_t flow_label,
             const Bytes& inner) {
  Bytes b;
  Ethernet(b, l2.dst, l2.src, 0x86dd);
  Ipv6Header(b, Ip(outer_src), Ip(outer_dst), inner.size() - 14, 41, 64);
  b[15] = (flow_label >> 16) & 0x0f;
  b[16] = (flow_label >> 8) & 0xff;
  b[17] = flow_label & 0xff;
  b.insert(b.end(), inner.begin() + 14, inner.end());
  return b;
}

Bytes PortUnreachable(const L2& l2, const std::string& src, const std::string& dst, const Bytes& original) {
  IpAddress from = Ip(src), to = Ip(dst);
  size_t ip_len = from.is_v4() ? 20 : 40;
  Bytes icmp = {static_cast<uint8_t>(from.is_v4() ? 3 : 1),
                static_cast<uint8_t>(from.is_v4() ? 3 : 4),
                0,
                0,
                0,
                0,
                0,
                0};
  icmp.insert(icmp.end(), original.begin() + 14, original.begin() + 14 + ip_len + 8);
  Bytes b;
  if (from.is_v4()) {
    uint16_t csum = Fold(SumWords(icmp.data(), icmp.size()));
    icmp[2] = csum >> 8;
    icmp[3] = csum & 0xff;
    Ethernet(b, l2.dst, l2.src, 0x0800);
    size_t ip = b.size();
    b.insert(b.end(), {0x45, 0});
    Put16(b, 20 + icmp.size());
    b.insert(b.end(), {0, 0, 0, 0, 64, 1, 0, 0});
    PutIp(b, from);
    PutIp(b, to);
    uint16_t ip_csum = Fold(SumWords(&b[ip], 20));
    b[ip + 10] = ip_csum >> 8;
    b[ip + 11] = ip_csum & 0xff;
    b.insert(b.end(), icmp.begin(), icmp.end());
  } else {
    Ethernet(b, l2.dst, l2.src, 0x86dd);
    size_t ip = b.size();
    Ipv6Header(b, from, to, icmp.size(), 58, 64);
    size_t at = b.size();
    b.insert(b.end(), icmp.begin(), icmp.end());
    FillIcmp6Checksum(b, ip, at);
  }
  return b;
}

Bytes WithIpv4Option(const Bytes& packet, const Bytes& option) {
  Bytes b(packet.begin(), packet.begin() + 34);
  b.insert(b.end(), option.begin(), option.end());
  b.insert(b.end(), packet.begin() + 34, packet.end());
  b[14] = 0x40 | ((20 + option.size()) / 4);
  uint16_t total = ((b[16] << 8) | b[17]) + option.size();
  b[16] = total >> 8;
  b[17] = total & 0xff;
  b[24] = b[25] = 0;
  uint16_t csum = Fold(SumWords(&b[14], 20 + option.size()));
  b[24] = csum >> 8;
  b[25] = csum & 0xff;
  return b;
}

std::string Hex(const Bytes& bytes) {
  std::string out;
  for (size_t i = 0; i < bytes.size(); ++i) {
    absl::StrAppendFormat(&out, "%02x%s", bytes[i], (i % 16 == 15) ? "\n" : " ");
  }
  return out;
}

Tcp SynSegment(std::string src, uint16_t sport, std::string dst, uint16_t dport, uint8_t ttl) {
  return Tcp{.src = std::move(src), .sport = sport, .dst = std::move(dst), .dport = dport, .ttl = ttl};
}

Tcp SynAckSegment(std::string src, uint16_t sport, std::string dst, uint16_t dport, uint8_t ttl) {
  return Tcp{.src = std::move(src),
             .sport = sport,
             .dst = std::move(dst),
             .dport = dport,
             .flags = 0x12,
             .seq = 5000,
             .ack = 1001,
             .ttl = ttl};
}

}  // namespace weir::testing
