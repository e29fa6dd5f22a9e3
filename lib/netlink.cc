#include "lib/netlink.h"

#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "lib/netlink_message.h"

namespace weir {
namespace {

constexpr size_t kInitialReceiveBuffer = 64 * 1024;

// Debian 12's UAPI headers predate netkit (Linux 6.7); these values are the kernel's stable ABI
// (include/uapi/linux/if_link.h: IFLA_NETKIT_*, enum netkit_action, enum netkit_mode).
constexpr uint16_t kIflaNetkitPeerInfo = 1;
constexpr uint16_t kIflaNetkitPolicy = 3;
constexpr uint16_t kIflaNetkitPeerPolicy = 4;
constexpr uint16_t kIflaNetkitMode = 5;
constexpr uint32_t kNetkitPass = 0;
constexpr uint32_t kNetkitDrop = 2;
constexpr uint32_t kNetkitL2 = 0;
constexpr int kDumpAttempts = 5;

absl::Status NetlinkErrnoStatus(int error, const std::string& what, const std::string& kernel_message = {}) {
  std::string message = absl::StrCat(what, ": ", std::strerror(error));
  if (!kernel_message.empty()) absl::StrAppend(&message, " (kernel: ", kernel_message, ")");
  switch (error) {
    case ENOENT:
    case ENODEV:
    case ESRCH:          // route delete: no such route
    case EADDRNOTAVAIL:  // address delete: no such address
      return absl::NotFoundError(message);
    case EEXIST: return absl::AlreadyExistsError(message);
    case EINVAL: return absl::InvalidArgumentError(message);
    case EOPNOTSUPP: return absl::UnimplementedError(message);  // e.g. a link kind this kernel lacks
    default: return absl::InternalError(message);
  }
}

// The status carried by an NLMSG_ERROR message: OK for an ACK, otherwise the errno plus the
// kernel's extended-ACK text when it sent one.
absl::Status StatusFromError(const nlmsghdr& header, const std::string& what) {
  const ByteSpan payload = MessagePayload(header);
  if (payload.size() < sizeof(nlmsgerr)) {
    return absl::InternalError(absl::StrCat(what, ": short NLMSG_ERROR"));
  }
  nlmsgerr error;
  std::memcpy(&error, payload.data(), sizeof(error));
  if (error.error == 0) return absl::OkStatus();

  std::string kernel_message;
  if (header.nlmsg_flags & NLM_F_ACK_TLVS) {
    // The TLVs follow the echoed request, which NETLINK_CAP_ACK trims to its header.
    size_t offset = sizeof(nlmsgerr);
    if (!(header.nlmsg_flags & NLM_F_CAPPED) && error.msg.nlmsg_len >= NLMSG_HDRLEN) {
      offset += NLMSG_ALIGN(error.msg.nlmsg_len - NLMSG_HDRLEN);
    }
    if (offset < payload.size()) {
      const AttributeTable attributes(payload.subspan(offset));
      kernel_message = attributes.GetString(NLMSGERR_ATTR_MSG).value_or("");
    }
  }
  return NetlinkErrnoStatus(-error.error, what, kernel_message);
}

uint8_t AddressFamily(IpFamily family) { return family == IpFamily::kV4 ? AF_INET : AF_INET6; }

std::optional<IpFamily> FamilyOf(uint8_t address_family) {
  if (address_family == AF_INET) return IpFamily::kV4;
  if (address_family == AF_INET6) return IpFamily::kV6;
  return std::nullopt;
}

// An address attribute of `family`, or nullopt when absent or of the wrong size.
std::optional<IpAddress> AddressAttribute(const AttributeTable& attributes, uint16_t type, IpFamily family) {
  std::optional<ByteSpan> payload = attributes.Get(type);
  const size_t expected = family == IpFamily::kV4 ? 4 : 16;
  if (!payload || payload->size() != expected) return std::nullopt;
  return IpAddress::FromBytes(family, payload->data());
}

void AddAddressAttribute(NetlinkMessage& message, uint16_t type, const IpAddress& address) {
  message.AddAttribute(type, address.bytes().data(), address.byte_length());
}

absl::Status CheckInterfaceName(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ) {
    return absl::InvalidArgumentError(absl::StrCat("invalid interface name \"", name, "\""));
  }
  return absl::OkStatus();
}

std::optional<LinkInfo> LinkFromMessage(const nlmsghdr& header) {
  if (header.nlmsg_type != RTM_NEWLINK) return std::nullopt;
  const ByteSpan payload = MessagePayload(header);
  if (payload.size() < sizeof(ifinfomsg)) return std::nullopt;
  ifinfomsg info;
  std::memcpy(&info, payload.data(), sizeof(info));

  const AttributeTable attributes(AttributeArea(header, sizeof(ifinfomsg)));
  LinkInfo link;
  link.index = info.ifi_index;
  link.up = info.ifi_flags & IFF_UP;
  link.name = attributes.GetString(IFLA_IFNAME).value_or("");
  link.mtu = attributes.GetU32(IFLA_MTU).value_or(0);
  // Only Ethernet-like links have a 6-byte hardware address; others (tunnels) keep all zeros.
  std::optional<ByteSpan> mac = attributes.Get(IFLA_ADDRESS);
  if (mac && mac->size() == link.mac.size()) {
    std::memcpy(link.mac.data(), mac->data(), link.mac.size());
  }
  if (std::optional<ByteSpan> link_info = attributes.Get(IFLA_LINKINFO)) {
    link.kind = AttributeTable(*link_info).GetString(IFLA_INFO_KIND).value_or("");
  }
  return link;
}

// Fills the parts of a route request shared by add and delete.
NetlinkMessage RouteMessage(uint16_t type, uint16_t flags, const RouteSpec& route, uint8_t scope,
                            uint8_t protocol) {
  NetlinkMessage message(type, flags);
  rtmsg header{};
  header.rtm_family = AddressFamily(route.destination.family());
  header.rtm_dst_len = static_cast<uint8_t>(route.destination.length());
  header.rtm_table = RT_TABLE_MAIN;
  header.rtm_protocol = protocol;
  header.rtm_scope = scope;
  header.rtm_type = type == RTM_NEWROUTE ? RTN_UNICAST : RTN_UNSPEC;
  header.rtm_flags = route.onlink ? RTNH_F_ONLINK : 0;
  message.Append(header);
  // A default route has no RTA_DST; the kernel reads dst_len 0 as "any".
  if (route.destination.length() > 0) {
    AddAddressAttribute(message, RTA_DST, route.destination.Network().address());
  }
  if (route.gateway) AddAddressAttribute(message, RTA_GATEWAY, *route.gateway);
  if (route.output_ifindex != 0) message.AddU32(RTA_OIF, route.output_ifindex);
  return message;
}

absl::Status CheckRoute(const RouteSpec& route) {
  if (route.gateway && route.gateway->family() != route.destination.family()) {
    return absl::InvalidArgumentError(
        absl::StrCat("route ", route.destination.ToString(), ": gateway of another family"));
  }
  return absl::OkStatus();
}

// -1 for anything but [0-9a-fA-F].
int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string DescribeRoute(const RouteSpec& route) {
  std::string text = route.destination.ToString();
  if (route.gateway) absl::StrAppend(&text, " via ", route.gateway->ToString());
  absl::StrAppend(&text, " dev #", route.output_ifindex, route.onlink ? " onlink" : "");
  return text;
}

}  // namespace

std::string FormatMac(const MacAddress& mac) {
  return absl::StrFormat("%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

absl::StatusOr<MacAddress> ParseMac(std::string_view text) {
  const auto invalid = [&] {
    return absl::InvalidArgumentError(absl::StrCat("invalid MAC \"", std::string(text), "\""));
  };
  const std::vector<absl::string_view> parts =
      absl::StrSplit(absl::string_view(text.data(), text.size()), ':');
  MacAddress mac{};
  if (parts.size() != mac.size()) return invalid();
  for (size_t i = 0; i < mac.size(); ++i) {
    const int high = HexDigitValue(parts[i].empty() ? '\0' : parts[i][0]);
    const int low = HexDigitValue(parts[i].size() < 2 ? '\0' : parts[i][1]);
    if (parts[i].size() != 2 || high < 0 || low < 0) return invalid();
    mac[i] = static_cast<uint8_t>(high << 4 | low);
  }
  return mac;
}

absl::StatusOr<Netlink> Netlink::Open() {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd.valid()) return NetlinkErrnoStatus(errno, "netlink socket");
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;  // nl_pid 0: the kernel picks a unique port id
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
    return NetlinkErrnoStatus(errno, "netlink bind");
  }
  // Best effort: extended ACKs add the kernel's reason to errors; capped ACKs keep them small.
  const int on = 1;
  ::setsockopt(fd.get(), SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof(on));
  ::setsockopt(fd.get(), SOL_NETLINK, NETLINK_CAP_ACK, &on, sizeof(on));
  return Netlink(std::move(fd));
}

absl::StatusOr<Netlink> Netlink::OpenIn(const NetNs& ns) {
  // A netlink socket belongs to the namespace it was created in, for its whole life.
  absl::StatusOr<Netlink> result = absl::InternalError("netlink open did not run");
  absl::Status status = ns.Run([&] {
    result = Open();
    return result.status();
  });
  if (!status.ok()) return status;
  return result;
}

absl::Status Netlink::Exchange(NetlinkMessage& message, const std::string& what,
                               const ReplyHandler& on_reply) {
  const uint32_t sequence = seq_++;
  const ByteSpan request = message.Finish(sequence);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t sent;
  do {
    sent = ::sendto(fd_.get(), request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
                    sizeof(kernel));
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return NetlinkErrnoStatus(errno, absl::StrCat(what, ": netlink send"));

  std::vector<uint8_t> buffer(kInitialReceiveBuffer);
  bool interrupted = false;
  for (;;) {
    // Peek first so a datagram larger than the buffer grows it instead of being truncated.
    ssize_t length;
    do {
      length = ::recv(fd_.get(), buffer.data(), buffer.size(), MSG_PEEK | MSG_TRUNC);
    } while (length < 0 && errno == EINTR);
    if (length < 0) return NetlinkErrnoStatus(errno, absl::StrCat(what, ": netlink receive"));
    if (static_cast<size_t>(length) > buffer.size()) buffer.resize(length);
    do {
      length = ::recv(fd_.get(), buffer.data(), buffer.size(), 0);
    } while (length < 0 && errno == EINTR);
    if (length < 0) return NetlinkErrnoStatus(errno, absl::StrCat(what, ": netlink receive"));

    for (const nlmsghdr* reply : SplitMessages(ByteSpan(buffer.data(), length))) {
      // Replies to an earlier request that gave up early (an error mid-dump) are stale.
      if (reply->nlmsg_seq != sequence) continue;
      if (reply->nlmsg_flags & NLM_F_DUMP_INTR) interrupted = true;
      switch (reply->nlmsg_type) {
        case NLMSG_ERROR: return StatusFromError(*reply, what);
        case NLMSG_DONE: {
          // A dump may end with a negative errno in place of an error message.
          const ByteSpan payload = MessagePayload(*reply);
          int error = 0;
          if (payload.size() >= sizeof(error)) std::memcpy(&error, payload.data(), sizeof(error));
          if (error < 0) return NetlinkErrnoStatus(-error, what);
          if (interrupted) return absl::AbortedError(absl::StrCat(what, ": dump interrupted"));
          return absl::OkStatus();
        }
        case NLMSG_NOOP:
        case NLMSG_OVERRUN: break;
        default:
          if (on_reply) on_reply(*reply);
      }
    }
  }
}

absl::Status Netlink::Dump(uint16_t type, const void* family_header, size_t header_size,
                           const std::string& what, const std::function<void()>& on_reset,
                           const ReplyHandler& on_reply) {
  absl::Status status;
  for (int attempt = 0; attempt < kDumpAttempts; ++attempt) {
    on_reset();
    NetlinkMessage message(type, NLM_F_REQUEST | NLM_F_DUMP);
    message.Append(family_header, header_size);
    status = Exchange(message, what, on_reply);
    if (!absl::IsAborted(status)) return status;
  }
  return status;
}

absl::Status Netlink::CreatePair(const char* kind, uint16_t peer_attribute, const std::string& name,
                                 const std::string& peer_name, const NetNs& peer_ns, uint32_t mtu,
                                 std::optional<MacAddress> mac,
                                 const std::function<void(NetlinkMessage&)>& kind_data) {
  if (absl::Status status = CheckInterfaceName(name); !status.ok()) return status;
  if (absl::Status status = CheckInterfaceName(peer_name); !status.ok()) return status;

  NetlinkMessage message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
  message.Append(ifinfomsg{});
  message.AddString(IFLA_IFNAME, name);
  message.AddU32(IFLA_MTU, mtu);
  if (mac) message.AddAttribute(IFLA_ADDRESS, mac->data(), mac->size());
  const size_t link_info = message.BeginNested(IFLA_LINKINFO);
  message.AddString(IFLA_INFO_KIND, kind);
  const size_t info_data = message.BeginNested(IFLA_INFO_DATA);
  if (kind_data) kind_data(message);
  // The peer is described by a full link request of its own: an ifinfomsg, then its attributes.
  const size_t peer = message.BeginNested(peer_attribute);
  message.Append(ifinfomsg{});
  message.AddString(IFLA_IFNAME, peer_name);
  message.AddU32(IFLA_MTU, mtu);
  message.AddU32(IFLA_NET_NS_FD, static_cast<uint32_t>(peer_ns.fd()));
  message.EndNested(peer);
  message.EndNested(info_data);
  message.EndNested(link_info);
  return Exchange(
      message, absl::StrCat("create ", kind, " ", name, " (peer ", peer_name, " in ", peer_ns.path(), ")"));
}

absl::Status Netlink::CreateVethPair(const std::string& name, const std::string& peer_name,
                                     const NetNs& peer_ns, uint32_t mtu, std::optional<MacAddress> mac) {
  return CreatePair("veth", VETH_INFO_PEER, name, peer_name, peer_ns, mtu, mac, nullptr);
}

absl::Status Netlink::CreateNetkitPair(const std::string& name, const std::string& peer_name,
                                       const NetNs& peer_ns, uint32_t mtu, std::optional<MacAddress> mac) {
  return CreatePair("netkit", kIflaNetkitPeerInfo, name, peer_name, peer_ns, mtu, mac, [](NetlinkMessage& m) {
    // L2: the pod keeps resolving its gateway with ARP and ND, which the from-pod program answers as
    // it does on a veth (L3 mode would make the pod's routes and the datapath's answers differ by
    // device kind).
    m.AddU32(kIflaNetkitMode, kNetkitL2);
    // What the host sends into the pod passes; what the pod sends is dropped while no program is
    // attached, so a pod is never on the network without the datapath in front of it.
    m.AddU32(kIflaNetkitPolicy, kNetkitPass);
    m.AddU32(kIflaNetkitPeerPolicy, kNetkitDrop);
  });
}

absl::StatusOr<LinkInfo> Netlink::GetLink(const std::string& name) {
  if (absl::Status status = CheckInterfaceName(name); !status.ok()) return status;
  NetlinkMessage message(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK);
  message.Append(ifinfomsg{});
  message.AddString(IFLA_IFNAME, name);
  std::optional<LinkInfo> link;
  absl::Status status = Exchange(message, absl::StrCat("get link ", name),
                                 [&](const nlmsghdr& reply) { link = LinkFromMessage(reply); });
  if (!status.ok()) return status;
  if (!link) return absl::InternalError(absl::StrCat("get link ", name, ": no reply"));
  return *link;
}

absl::StatusOr<LinkInfo> Netlink::GetLink(int ifindex) {
  NetlinkMessage message(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK);
  ifinfomsg header{};
  header.ifi_index = ifindex;
  message.Append(header);
  std::optional<LinkInfo> link;
  const std::string what = absl::StrCat("get link #", ifindex);
  absl::Status status =
      Exchange(message, what, [&](const nlmsghdr& reply) { link = LinkFromMessage(reply); });
  if (!status.ok()) return status;
  if (!link) return absl::InternalError(absl::StrCat(what, ": no reply"));
  return *link;
}

absl::StatusOr<std::vector<LinkInfo>> Netlink::ListLinks() {
  std::vector<LinkInfo> links;
  const ifinfomsg header{};
  absl::Status status = Dump(
      RTM_GETLINK, &header, sizeof(header), "list links", [&] { links.clear(); },
      [&](const nlmsghdr& reply) {
        std::optional<LinkInfo> link = LinkFromMessage(reply);
        if (link) links.push_back(std::move(*link));
      });
  if (!status.ok()) return status;
  return links;
}

absl::Status Netlink::SetLinkUp(int ifindex) {
  NetlinkMessage message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
  ifinfomsg header{};
  header.ifi_index = ifindex;
  header.ifi_flags = IFF_UP;
  header.ifi_change = IFF_UP;  // touch only the UP flag
  message.Append(header);
  return Exchange(message, absl::StrCat("set link #", ifindex, " up"));
}

absl::Status Netlink::ReplaceRootTbf(int ifindex, const TbfSpec& tbf) {
  NetlinkMessage message(RTM_NEWQDISC, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
  tcmsg header{};
  header.tcm_family = AF_UNSPEC;
  header.tcm_ifindex = ifindex;
  header.tcm_parent = TC_H_ROOT;
  message.Append(header);
  message.AddString(TCA_KIND, "tbf");
  tc_tbf_qopt options{};
  // A link layer other than "unaware": the kernel computes packet times from the rate itself and
  // needs no rate table (net/sched/sch_tbf.c).
  options.rate.linklayer = TC_LINKLAYER_ETHERNET;
  options.rate.rate = static_cast<uint32_t>(std::min<uint64_t>(tbf.rate_bytes_per_s, ~0U));
  options.limit = tbf.limit_bytes;
  size_t nest = message.BeginNested(TCA_OPTIONS);
  message.AddAttribute(TCA_TBF_PARMS, &options, sizeof(options));
  if (tbf.rate_bytes_per_s > ~0U) {
    uint64_t rate64 = tbf.rate_bytes_per_s;
    message.AddAttribute(TCA_TBF_RATE64, &rate64, sizeof(rate64));
  }
  message.AddU32(TCA_TBF_BURST, tbf.burst_bytes);
  message.EndNested(nest);
  return Exchange(message, absl::StrFormat("set root qdisc tbf (%d bytes/s, burst %d, limit %d) on link #%d",
                                           tbf.rate_bytes_per_s, tbf.burst_bytes, tbf.limit_bytes, ifindex));
}

absl::Status Netlink::SetLinkName(int ifindex, const std::string& name) {
  if (absl::Status status = CheckInterfaceName(name); !status.ok()) return status;
  NetlinkMessage message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
  ifinfomsg header{};
  header.ifi_index = ifindex;
  message.Append(header);
  message.AddString(IFLA_IFNAME, name);
  return Exchange(message, absl::StrCat("rename link #", ifindex, " to ", name));
}

absl::Status Netlink::DeleteLink(const std::string& name) {
  if (absl::Status status = CheckInterfaceName(name); !status.ok()) return status;
  NetlinkMessage message(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK);
  message.Append(ifinfomsg{});
  message.AddString(IFLA_IFNAME, name);
  return Exchange(message, absl::StrCat("delete link ", name));
}

absl::Status Netlink::AddAddress(int ifindex, const IpPrefix& prefix) {
  NetlinkMessage message(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
  ifaddrmsg header{};
  header.ifa_family = AddressFamily(prefix.family());
  header.ifa_prefixlen = static_cast<uint8_t>(prefix.length());
  header.ifa_scope = RT_SCOPE_UNIVERSE;
  header.ifa_index = static_cast<uint32_t>(ifindex);
  // Without NODAD an IPv6 address stays tentative (unusable as a source) for about a second.
  const uint32_t flags = prefix.family() == IpFamily::kV6 ? IFA_F_NODAD : 0;
  header.ifa_flags = static_cast<uint8_t>(flags);
  message.Append(header);
  // IFA_LOCAL is the address itself; IFA_ADDRESS equal to it means "not point-to-point".
  AddAddressAttribute(message, IFA_LOCAL, prefix.address());
  AddAddressAttribute(message, IFA_ADDRESS, prefix.address());
  message.AddU32(IFA_FLAGS, flags);
  return Exchange(message, absl::StrCat("add address ", prefix.ToString(), " to link #", ifindex));
}

absl::StatusOr<std::vector<IpPrefix>> Netlink::ListAddresses(int ifindex, std::optional<IpFamily> family) {
  std::vector<IpPrefix> prefixes;
  ifaddrmsg request{};
  request.ifa_family = family ? AddressFamily(*family) : AF_UNSPEC;
  absl::Status status = Dump(
      RTM_GETADDR, &request, sizeof(request), absl::StrCat("list addresses of link #", ifindex),
      [&] { prefixes.clear(); },
      [&](const nlmsghdr& reply) {
        const ByteSpan payload = MessagePayload(reply);
        if (reply.nlmsg_type != RTM_NEWADDR || payload.size() < sizeof(ifaddrmsg)) return;
        ifaddrmsg header;
        std::memcpy(&header, payload.data(), sizeof(header));
        const std::optional<IpFamily> reply_family = FamilyOf(header.ifa_family);
        if (static_cast<int>(header.ifa_index) != ifindex || !reply_family) return;
        if (family && *reply_family != *family) return;
        const AttributeTable attributes(AttributeArea(reply, sizeof(ifaddrmsg)));
        // IFA_LOCAL is the local address; IFA_ADDRESS is the peer on point-to-point links and the
        // only one present for most IPv6 addresses.
        std::optional<IpAddress> address = AddressAttribute(attributes, IFA_LOCAL, *reply_family);
        if (!address) address = AddressAttribute(attributes, IFA_ADDRESS, *reply_family);
        if (address) prefixes.emplace_back(*address, header.ifa_prefixlen);
      });
  if (!status.ok()) return status;
  return prefixes;
}

absl::Status Netlink::AddRoute(const RouteSpec& route) {
  if (absl::Status status = CheckRoute(route); !status.ok()) return status;
  const uint8_t scope = route.gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  const uint16_t flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
  NetlinkMessage message = RouteMessage(RTM_NEWROUTE, flags, route, scope, route.protocol);
  return Exchange(message, absl::StrCat("add route ", DescribeRoute(route)));
}

absl::Status Netlink::DeleteRoute(const RouteSpec& route) {
  if (absl::Status status = CheckRoute(route); !status.ok()) return status;
  // Scope NOWHERE and protocol 0 are wildcards for deletion: match the route whoever added it.
  NetlinkMessage message =
      RouteMessage(RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK, route, RT_SCOPE_NOWHERE, RTPROT_UNSPEC);
  return Exchange(message, absl::StrCat("delete route ", DescribeRoute(route)));
}

absl::StatusOr<std::vector<RouteSpec>> Netlink::ListRoutes(int ifindex, IpFamily family) {
  std::vector<RouteSpec> routes;
  rtmsg request{};
  request.rtm_family = AddressFamily(family);
  absl::Status status = Dump(
      RTM_GETROUTE, &request, sizeof(request), absl::StrCat("list routes of link #", ifindex),
      [&] { routes.clear(); },
      [&](const nlmsghdr& reply) {
        const ByteSpan payload = MessagePayload(reply);
        if (reply.nlmsg_type != RTM_NEWROUTE || payload.size() < sizeof(rtmsg)) return;
        rtmsg header;
        std::memcpy(&header, payload.data(), sizeof(header));
        if (header.rtm_family != AddressFamily(family) || header.rtm_type != RTN_UNICAST) return;
        const AttributeTable attributes(AttributeArea(reply, sizeof(rtmsg)));
        // rtm_table only holds 8 bits; RTA_TABLE is authoritative when present.
        if (attributes.GetU32(RTA_TABLE).value_or(header.rtm_table) != RT_TABLE_MAIN) return;
        const uint32_t oif = attributes.GetU32(RTA_OIF).value_or(0);
        if (ifindex != 0 && oif != static_cast<uint32_t>(ifindex)) return;

        RouteSpec route;
        const IpAddress any = family == IpFamily::kV4 ? IpAddress::V4(0) : *IpAddress::Parse("::");
        route.destination =
            IpPrefix(AddressAttribute(attributes, RTA_DST, family).value_or(any), header.rtm_dst_len);
        route.gateway = AddressAttribute(attributes, RTA_GATEWAY, family);
        route.output_ifindex = static_cast<int>(oif);
        route.onlink = header.rtm_flags & RTNH_F_ONLINK;
        route.protocol = header.rtm_protocol;
        routes.push_back(route);
      });
  if (!status.ok()) return status;
  return routes;
}

}  // namespace weir
