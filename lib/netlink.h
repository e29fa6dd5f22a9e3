// A small rtnetlink client: links, veth and netkit pairs, addresses, routes. One instance talks to the
// namespace its socket was opened in, whichever thread later uses it.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/ip.h"
#include "lib/netns.h"
#include "lib/unique_fd.h"

struct nlmsghdr;

namespace weir {

class NetlinkMessage;

using MacAddress = std::array<uint8_t, 6>;
std::string FormatMac(const MacAddress& mac);
absl::StatusOr<MacAddress> ParseMac(std::string_view text);

struct LinkInfo {
  int index = 0;
  std::string name;
  MacAddress mac{};
  uint32_t mtu = 0;
  bool up = false;
  std::string kind;  // "veth", "dummy", ... empty when the kernel did not say

  bool operator==(const LinkInfo&) const = default;
};

struct RouteSpec {
  IpPrefix destination;              // 0.0.0.0/0 or ::/0 for a default route
  std::optional<IpAddress> gateway;  // none: a direct (scope link) route
  int output_ifindex = 0;
  bool onlink = false;   // RTNH_F_ONLINK: gateway reachable on the link without a subnet
  uint8_t protocol = 3;  // rtm_protocol (RTPROT_BOOT); routing daemons mark their own

  bool operator==(const RouteSpec&) const = default;
};

// A token bucket filter: what leaves the device is held to `rate`, with bursts of up to `burst`
// bytes; up to `limit` bytes wait in its queue, more are dropped.
struct TbfSpec {
  uint64_t rate_bytes_per_s = 0;
  uint32_t burst_bytes = 0;
  uint32_t limit_bytes = 0;
};

// Not thread-safe: one request at a time per instance.
class Netlink {
 public:
  // A socket in the calling thread's namespace.
  static absl::StatusOr<Netlink> Open();
  // A socket in `ns` (opened on a dedicated thread inside it).
  static absl::StatusOr<Netlink> OpenIn(const NetNs& ns);

  // Creates a veth pair: `name` here, `peer_name` created directly inside `peer_ns`.
  // AlreadyExists if `name` exists here.
  absl::Status CreateVethPair(const std::string& name, const std::string& peer_name, const NetNs& peer_ns,
                              uint32_t mtu, std::optional<MacAddress> mac = std::nullopt);
  // Creates a netkit pair in L2 mode (Linux 6.7+): `name` here is the primary, which holds the
  // BPF programs of both ends; `peer_name` is created inside `peer_ns`. Unimplemented when the
  // kernel has no netkit.
  absl::Status CreateNetkitPair(const std::string& name, const std::string& peer_name, const NetNs& peer_ns,
                                uint32_t mtu, std::optional<MacAddress> mac = std::nullopt);
  // NotFound when there is no such link.
  absl::StatusOr<LinkInfo> GetLink(const std::string& name);
  absl::StatusOr<LinkInfo> GetLink(int ifindex);
  absl::StatusOr<std::vector<LinkInfo>> ListLinks();
  absl::Status SetLinkUp(int ifindex);
  absl::Status SetLinkName(int ifindex, const std::string& name);
  // NotFound when the link is already gone.
  absl::Status DeleteLink(const std::string& name);

  // Makes a token bucket filter (tbf) the root qdisc of `ifindex`, replacing whatever was there.
  absl::Status ReplaceRootTbf(int ifindex, const TbfSpec& tbf);

  // Adds an address with IFA_F_NODAD for IPv6 (no duplicate detection wait).
  absl::Status AddAddress(int ifindex, const IpPrefix& prefix);
  absl::StatusOr<std::vector<IpPrefix>> ListAddresses(int ifindex, std::optional<IpFamily> family = {});

  // AlreadyExists when an identical route is there.
  absl::Status AddRoute(const RouteSpec& route);
  absl::Status DeleteRoute(const RouteSpec& route);
  // Routes of the main table whose output interface is `ifindex` (0: any interface).
  absl::StatusOr<std::vector<RouteSpec>> ListRoutes(int ifindex, IpFamily family);

 private:
  using ReplyHandler = std::function<void(const nlmsghdr&)>;

  explicit Netlink(UniqueFd fd) : fd_(std::move(fd)) {}
  // Sends `message` and reads replies until its ACK, error or end of dump. Every non-error reply
  // goes to `on_reply`. `what` describes the operation for error messages.
  absl::Status Exchange(NetlinkMessage& message, const std::string& what,
                        const ReplyHandler& on_reply = nullptr);
  // Creates a pair of `kind` (veth, netkit): `name` here, `peer_name` inside `peer_ns`, the peer's
  // link request nested under `peer_attribute`; `kind_data` adds the kind's own attributes first.
  absl::Status CreatePair(const char* kind, uint16_t peer_attribute, const std::string& name,
                          const std::string& peer_name, const NetNs& peer_ns, uint32_t mtu,
                          std::optional<MacAddress> mac,
                          const std::function<void(NetlinkMessage&)>& kind_data);
  // Exchange for NLM_F_DUMP requests, restarted when the kernel flags the dump as interrupted
  // (the table changed while it was being read). `on_reset` clears partial results before a retry.
  absl::Status Dump(uint16_t type, const void* family_header, size_t header_size, const std::string& what,
                    const std::function<void()>& on_reset, const ReplyHandler& on_reply);

  UniqueFd fd_;
  uint32_t seq_ = 1;
};

}  // namespace weir
