#include "cni/wiring.h"

#include <bpf/bpf.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <future>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cni/error.h"
#include "cni/log.h"
#include "lib/endpoint_map.h"
#include "lib/errno_status.h"
#include "lib/tc_attach.h"
#include "lib/unique_fd.h"

namespace weir::cni {
namespace {

IpPrefix HostPrefix(const IpAddress& address) { return IpPrefix(address, address.bit_length()); }

IpAddress Gateway(IpFamily family) {
  return *IpAddress::Parse(family == IpFamily::kV4 ? kGatewayV4 : kGatewayV6);
}

// Duplicate address detection would hold a pod's IPv6 addresses back for a second or more; the
// addresses are ours alone, so it is switched off on both ends.
absl::Status DisableDad(const std::string& ifname) {
  std::ofstream out("/proc/sys/net/ipv6/conf/" + ifname + "/accept_dad");
  if (!out) return absl::OkStatus();  // IPv6 disabled in this namespace: nothing to wait for
  out << "0";
  return absl::OkStatus();
}

absl::Status ConfigurePodSide(Netlink& pod, const PodWiring& wiring, int pod_ifindex) {
  if (absl::Status s = pod.SetLinkUp(pod_ifindex); !s.ok()) return s;
  for (const IpAddress& address : wiring.addresses) {
    if (absl::Status s = pod.AddAddress(pod_ifindex, HostPrefix(address)); !s.ok()) return s;
  }
  bool has_v4 = false, has_v6 = false;
  for (const IpAddress& address : wiring.addresses) (address.is_v4() ? has_v4 : has_v6) = true;
  if (has_v4) {
    IpAddress gateway = Gateway(IpFamily::kV4);
    RouteSpec to_gateway{.destination = HostPrefix(gateway), .output_ifindex = pod_ifindex};
    if (absl::Status s = pod.AddRoute(to_gateway); !s.ok()) return s;
    RouteSpec default_route{.destination = *IpPrefix::Parse("0.0.0.0/0"),
                            .gateway = gateway,
                            .output_ifindex = pod_ifindex,
                            .onlink = true};
    if (absl::Status s = pod.AddRoute(default_route); !s.ok()) return s;
  }
  if (has_v6) {
    RouteSpec default_route{.destination = *IpPrefix::Parse("::/0"),
                            .gateway = Gateway(IpFamily::kV6),
                            .output_ifindex = pod_ifindex};
    if (absl::Status s = pod.AddRoute(default_route); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// The host end takes the gateway's MAC: the pod's ARP and ND for the gateway are answered with it,
// and the datapath writes it as the source of what it delivers.
absl::Status CreatePair(Netlink& host, const std::string& host_ifname, const PodWiring& pod,
                        const NetNs& pod_ns) {
  if (pod.device_mode == DeviceMode::kVeth) {
    return host.CreateVethPair(host_ifname, pod.ifname, pod_ns, pod.mtu, kGatewayMac);
  }
  absl::Status created = host.CreateNetkitPair(host_ifname, pod.ifname, pod_ns, pod.mtu, kGatewayMac);
  if (absl::IsUnimplemented(created)) {
    return CniError(CniCode::kInvalidNetworkConfig,
                    "deviceMode \"netkit\" needs netkit devices, which this kernel does not have (Linux 6.7 "
                    "or later, built with CONFIG_NETKIT); use \"veth\"",
                    created.ToString());
  }
  return created;
}

// Out of the pod, the limit is the pod end's root qdisc: the pod's own sockets wait for it (TCP
// small queues), before anything reaches weir's datapath. Into the pod, the host end's root qdisc:
// the datapath enters such a pod through it (WEIR_ENDPOINT_BANDWIDTH), and the node's own traffic
// to the pod is routed through it.
absl::Status LimitBandwidth(Netlink& host, Netlink& pod, int host_ifindex, int pod_ifindex,
                            const PodWiring& wiring) {
  const BandwidthLimit& limit = wiring.bandwidth;
  if (limit.egress_bps != 0) {
    TbfSpec tbf = TbfFor(limit.egress_bps, limit.egress_burst_bits, wiring.mtu);
    if (absl::Status s = pod.ReplaceRootTbf(pod_ifindex, tbf); !s.ok()) return s;
  }
  if (limit.ingress_bps != 0) {
    TbfSpec tbf = TbfFor(limit.ingress_bps, limit.ingress_burst_bits, wiring.mtu);
    if (absl::Status s = host.ReplaceRootTbf(host_ifindex, tbf); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<WiredPod> Wiring::Add(const PodWiring& pod) {
  auto pod_ns = NetNs::Open(pod.netns_path);
  if (!pod_ns.ok()) {
    return CniError(CniCode::kInvalidEnv, absl::StrCat("CNI_NETNS ", pod.netns_path, " is not usable"),
                    pod_ns.status().ToString());
  }
  // What exists already belongs to someone else (or to this pod's earlier ADD): refuse before making
  // anything, so that the cleanup below never removes what this ADD did not create.
  auto pod_netlink = Netlink::OpenIn(*pod_ns);
  if (!pod_netlink.ok()) return pod_netlink.status();
  if (pod_netlink->GetLink(pod.ifname).ok()) {
    return CniError(CniCode::kInterfaceExists,
                    absl::StrCat("interface ", pod.ifname, " already exists in ", pod.netns_path));
  }
  std::string host_ifname = HostInterfaceName(pod.container_id, pod.ifname);
  if (host_.GetLink(host_ifname).ok()) {
    return CniError(CniCode::kInterfaceExists,
                    absl::StrCat("host interface ", host_ifname, " for container ", pod.container_id,
                                 " already exists: DEL it first"));
  }
  auto wired = AddSteps(pod, *pod_ns, *pod_netlink);
  if (!wired.ok()) {
    // Deleting the host end takes the pod end, both ends' addresses and routes with it.
    if (absl::Status undo = Remove(pod.container_id, pod.ifname); !undo.ok()) {
      log::Error("undoing the failed ADD of %s/%s: %s", pod.container_id, pod.ifname, undo.ToString());
    }
  }
  return wired;
}

// `pod_netlink` is a socket in `pod_ns`: each one opened costs a thread that enters the namespace.
absl::StatusOr<WiredPod> Wiring::AddSteps(const PodWiring& pod, const NetNs& pod_ns, Netlink& pod_netlink) {
  WiredPod wired{.host_ifname = HostInterfaceName(pod.container_id, pod.ifname), .host_mac = kGatewayMac};
  if (absl::Status s = CreatePair(host_, wired.host_ifname, pod, pod_ns); !s.ok()) return s;

  auto host_link = host_.GetLink(wired.host_ifname);
  if (!host_link.ok()) return host_link.status();
  wired.host_ifindex = host_link->index;
  UniqueFd program(bpf_obj_get(layout_.from_pod_program().c_str()));
  if (!program.valid()) {
    return CniError(CniCode::kDatapathNotReady,
                    absl::StrCat("weir-agent has not pinned its programs under ", layout_.root),
                    ErrnoStatus(errno, layout_.from_pod_program()).ToString());
  }
  // A tcx attach waits out a full RCU grace period (most of an ADD's time) while it holds the RTNL
  // (kernel/bpf/tcx.c: tcx_entry_sync), so the pod end's netlink requests below queue behind it; only
  // work without the RTNL (the sysctl writes) really overlaps. It is joined before anything depends on
  // it, and every return below joins it too. A clsact/cls_bpf filter would cost no such wait, but the
  // clsact qdisc takes the ingress slot that chained plugins need (bandwidth's ingress qdisc).
  // A netkit attach waits the same way (drivers/net/netkit.c: netkit_entry_sync).
  std::future<absl::Status> attached = std::async(std::launch::async, [&] {
    const std::string pin = layout_.link(wired.host_ifname);
    return pod.device_mode == DeviceMode::kNetkit
               ? AttachNetkitPeer(wired.host_ifindex, program.get(), pin)
               : AttachTc(wired.host_ifindex, TcDirection::kIngress, program.get(), pin);
  });

  auto pod_link = pod_netlink.GetLink(pod.ifname);
  if (!pod_link.ok()) return pod_link.status();
  wired.pod_mac = pod_link->mac;
  if (absl::Status s = pod_ns.Run([&] { return DisableDad(pod.ifname); }); !s.ok()) return s;
  if (absl::Status s = ConfigurePodSide(pod_netlink, pod, pod_link->index); !s.ok()) return s;

  if (absl::Status s = DisableDad(wired.host_ifname); !s.ok()) return s;
  if (absl::Status s = host_.SetLinkUp(wired.host_ifindex); !s.ok()) return s;
  if (absl::Status s = LimitBandwidth(host_, pod_netlink, wired.host_ifindex, pod_link->index, pod); !s.ok())
    return s;
  for (const IpAddress& address : pod.addresses) {
    RouteSpec to_pod{.destination = HostPrefix(address), .output_ifindex = wired.host_ifindex};
    if (absl::Status s = host_.AddRoute(to_pod); !s.ok()) return s;
  }
  if (absl::Status s = attached.get(); !s.ok()) return s;

  auto endpoints = EndpointMap::OpenPinned(layout_.endpoints_map());
  if (!endpoints.ok()) return endpoints.status();
  for (const IpAddress& address : pod.addresses) {
    Endpoint endpoint{.address = address,
                      .host_ifindex = wired.host_ifindex,
                      .pod_mac = wired.pod_mac,
                      .flags = static_cast<uint16_t>(
                          WEIR_ENDPOINT_LOCAL_POD | (pod.policy_pending ? WEIR_ENDPOINT_POLICY_PENDING : 0) |
                          (pod.bandwidth.ingress_bps ? WEIR_ENDPOINT_BANDWIDTH : 0)),
                      .pod_id = PodId(pod.container_id, pod.ifname)};
    if (absl::Status s = endpoints->Upsert(endpoint); !s.ok()) return s;
  }
  return wired;
}

absl::Status Wiring::Remove(const std::string& container_id, const std::string& ifname) {
  std::string host_ifname = HostInterfaceName(container_id, ifname);
  absl::Status result;
  // Entries are found by owner, not by address: DEL may come without a result to read addresses
  // from, and an address released earlier may already belong to another pod.
  if (auto endpoints = EndpointMap::OpenPinned(layout_.endpoints_map()); endpoints.ok()) {
    if (auto all = endpoints->List(); all.ok()) {
      for (const Endpoint& endpoint : *all) {
        if (endpoint.pod_id == PodId(container_id, ifname))
          result.Update(endpoints->Remove(endpoint.address));
      }
    }
  }
  // The device goes first: a tcx link whose device is gone is released without another RCU wait.
  absl::Status deleted = host_.DeleteLink(host_ifname);
  if (!deleted.ok() && !absl::IsNotFound(deleted)) result.Update(deleted);
  result.Update(DetachTc(layout_.link(host_ifname)));
  return result;
}

absl::Status Wiring::RemoveStaleLinks() {
  std::error_code ec;
  absl::Status result;
  for (const auto& entry : std::filesystem::directory_iterator(layout_.pod_links_dir(), ec)) {
    std::string ifname = entry.path().filename();
    if (absl::IsNotFound(host_.GetLink(ifname).status())) result.Update(DetachTc(entry.path()));
  }
  return result;
}

absl::Status Wiring::Check(const PodWiring& pod) {
  std::string host_ifname = HostInterfaceName(pod.container_id, pod.ifname);
  auto host_link = host_.GetLink(host_ifname);
  if (!host_link.ok())
    return absl::NotFoundError(absl::StrCat("host interface ", host_ifname, " is missing"));
  if (!host_link->up) return absl::FailedPreconditionError(absl::StrCat(host_ifname, " is down"));
  if (!host_link->kind.empty() && host_link->kind != DeviceModeName(pod.device_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("host interface ", host_ifname, " is a ", host_link->kind,
                     " device, the network config asks for ", DeviceModeName(pod.device_mode)));
  }

  auto pod_ns = NetNs::Open(pod.netns_path);
  if (!pod_ns.ok()) return pod_ns.status();
  auto pod_netlink = Netlink::OpenIn(*pod_ns);
  if (!pod_netlink.ok()) return pod_netlink.status();
  auto pod_link = pod_netlink->GetLink(pod.ifname);
  if (!pod_link.ok()) return absl::NotFoundError(absl::StrCat(pod.ifname, " is missing in ", pod.netns_path));
  if (pod_link->mtu != pod.mtu) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s has MTU %d, expected %d", pod.ifname, pod_link->mtu, pod.mtu));
  }
  auto pod_addresses = pod_netlink->ListAddresses(pod_link->index);
  if (!pod_addresses.ok()) return pod_addresses.status();
  auto endpoints = EndpointMap::OpenPinned(layout_.endpoints_map());
  if (!endpoints.ok()) return endpoints.status();
  for (const IpAddress& address : pod.addresses) {
    bool assigned = false;
    for (const IpPrefix& prefix : *pod_addresses) assigned |= prefix.address() == address;
    if (!assigned) return absl::NotFoundError(absl::StrCat(address.ToString(), " is not on ", pod.ifname));
    auto endpoint = endpoints->Lookup(address);
    if (!endpoint.ok() || endpoint->host_ifindex != host_link->index) {
      return absl::NotFoundError(absl::StrCat("endpoint ", address.ToString(), " is not in the datapath"));
    }
    auto host_routes = host_.ListRoutes(host_link->index, address.family());
    if (!host_routes.ok()) return host_routes.status();
    bool routed = false;
    for (const RouteSpec& route : *host_routes) routed |= route.destination == HostPrefix(address);
    if (!routed) return absl::NotFoundError(absl::StrCat("no host route to ", address.ToString()));
  }
  if (access(layout_.link(host_ifname).c_str(), F_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("no program attached to ", host_ifname));
  }
  return absl::OkStatus();
}

}  // namespace weir::cni
