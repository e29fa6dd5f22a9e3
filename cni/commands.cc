#include "cni/commands.h"

#include <chrono>
#include <set>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "cni/bandwidth_config.h"
#include "cni/chained_plugins.h"
#include "cni/error.h"
#include "cni/ipam/allocator.h"
#include "cni/ipam/delegate.h"
#include "cni/ipam/file_store.h"
#include "cni/log.h"
#include "cni/result.h"
#include "cni/version.h"
#include "cni/wiring.h"
#include "lib/agent_socket.h"
#include "lib/pin_layout.h"

namespace weir::cni {
namespace {

ipam::AllocationOwner OwnerOf(const CniEnv& env) { return {env.container_id, env.ifname}; }

ipam::DelegateCall Delegate(const CniEnv& env, const NetConfig& config, std::string command) {
  return {config.ipam_type, env.path, std::move(command), config.raw};
}

// The pod's addresses, from the built-in allocator or the delegated IPAM plugin. `undo` releases them.
struct Addresses {
  std::vector<IpAddress> addresses;
  Dns dns;
  // The owner held these before this ADD (a retried ADD): a failure must not release them.
  bool held_before = false;
};

absl::StatusOr<Addresses> AllocateAddresses(const CniEnv& env, const NetConfig& config) {
  Addresses out;
  if (config.delegates_ipam()) {
    auto result = ipam::DelegateAdd(Delegate(env, config, "ADD"));
    if (!result.ok()) return result.status();
    for (const IpConfig& ip : result->ips) out.addresses.push_back(ip.address.address());
    out.dns = result->dns;
    return out;
  }
  ipam::FileStore store(config.data_dir);
  ipam::Allocator allocator(config.name, config.pod_cidrs, store);
  auto held = allocator.Lookup(OwnerOf(env));
  out.held_before = held.ok() && !held->empty();
  auto allocated = allocator.Allocate(OwnerOf(env));
  if (!allocated.ok()) return allocated.status();
  for (const ipam::AllocatedAddress& a : *allocated) out.addresses.push_back(a.address);
  return out;
}

absl::Status ReleaseAddresses(const CniEnv& env, const NetConfig& config) {
  if (config.delegates_ipam()) return ipam::RunDelegate(Delegate(env, config, "DEL")).status();
  ipam::FileStore store(config.data_dir);
  return ipam::Allocator(config.name, config.pod_cidrs, store).Release(OwnerOf(env)).status();
}

absl::Status RequireDatapath(const NetConfig& config, CniCode code) {
  if (DatapathPinned(PinLayout{config.bpf_root})) return absl::OkStatus();
  return CniError(code, absl::StrCat("weir-agent has not loaded the datapath under ", config.bpf_root,
                                     " yet; is the weir-agent running on this node?"));
}

Result BuildResult(const CniEnv& env, const NetConfig& config, const WiredPod& wired,
                   const std::vector<IpAddress>& addresses, const Dns& ipam_dns) {
  Result result = config.prev_result.value_or(Result{});
  int pod_index = static_cast<int>(result.interfaces.size()) + 1;
  result.interfaces.push_back(
      {.name = wired.host_ifname, .mac = FormatMac(wired.host_mac), .mtu = config.mtu});
  result.interfaces.push_back(
      {.name = env.ifname, .mac = FormatMac(wired.pod_mac), .mtu = config.mtu, .sandbox = env.netns});
  bool has_v4 = false, has_v6 = false;
  for (const IpAddress& address : addresses) {
    IpAddress gateway = *IpAddress::Parse(address.is_v4() ? kGatewayV4 : kGatewayV6);
    result.ips.push_back(
        {.address = IpPrefix(address, address.bit_length()), .gateway = gateway, .interface = pod_index});
    (address.is_v4() ? has_v4 : has_v6) = true;
  }
  if (has_v4)
    result.routes.push_back({.dst = *IpPrefix::Parse("0.0.0.0/0"), .gw = *IpAddress::Parse(kGatewayV4)});
  if (has_v6) result.routes.push_back({.dst = *IpPrefix::Parse("::/0"), .gw = *IpAddress::Parse(kGatewayV6)});
  result.dns = !config.dns.empty() ? config.dns : (!ipam_dns.empty() ? ipam_dns : result.dns);
  return result;
}

// NetworkPolicy: the pod's endpoint entries start denied; the agent writes the pod's policy and
// answers. Either way ADD goes on: without an answer the pod stays denied (never open) until the
// agent catches up, which is the safe side of a slow or restarting agent.
void RequestPolicy(const CniEnv& env, const NetConfig& config, const std::vector<IpAddress>& addresses,
                   std::chrono::system_clock::time_point add_started) {
  if (env.k8s_pod_namespace.empty() || env.k8s_pod_name.empty()) {
    log::Info("ADD %s: no K8S_POD_NAMESPACE/K8S_POD_NAME: traffic stays denied until the agent finds the pod",
              env.container_id);
    return;
  }
  const std::string request = FormatEndpointAdded(
      {.namespace_ = env.k8s_pod_namespace,
       .name = env.k8s_pod_name,
       .add_started_us =
           std::chrono::duration_cast<std::chrono::microseconds>(add_started.time_since_epoch()).count(),
       .addresses = addresses});
  absl::StatusOr<std::string> answer =
      AskAgent(config.policy_socket, request, std::chrono::milliseconds(config.policy_timeout_ms));
  const double elapsed_ms =
      std::chrono::duration<double, std::milli>(std::chrono::system_clock::now() - add_started).count();
  if (answer.ok() && absl::StartsWith(*answer, "ok ")) {
    log::Info("ADD %s/%s: policy %s written %.1f ms after ADD began", env.k8s_pod_namespace, env.k8s_pod_name,
              absl::StripTrailingAsciiWhitespace(answer->substr(3)), elapsed_ms);
    return;
  }
  const std::string why =
      answer.ok() ? std::string(absl::StripTrailingAsciiWhitespace(*answer)) : answer.status().ToString();
  log::Error(
      "ADD %s/%s: no policy from the agent after %.1f ms (%s): the pod's traffic stays denied until "
      "the agent writes it",
      env.k8s_pod_namespace, env.k8s_pod_name, elapsed_ms, why);
}

}  // namespace

absl::StatusOr<std::string> CmdAdd(const CniEnv& env, const NetConfig& config) {
  const auto add_started = std::chrono::system_clock::now();
  // Only ADD reads the limits: a DEL with the same malformed runtimeConfig must still clean up.
  auto bandwidth = ParseBandwidth(config.runtime_config_raw);
  if (!bandwidth.ok()) return bandwidth.status();
  if (absl::Status s = RefuseChainedBandwidth(env.conf_dir, config.name, config.type); !s.ok()) return s;
  if (absl::Status s = RequireDatapath(config, CniCode::kTryAgainLater); !s.ok()) return s;
  auto addresses = AllocateAddresses(env, config);
  if (!addresses.ok()) return addresses.status();
  // From here on, any failure hands the addresses back: the runtime's clean-up DEL may never reach
  // weir (a chained plugin's DEL can fail first).
  // Addresses the owner held before this ADD (a retry) stay with it, for the DEL that is to come.
  absl::Cleanup release_on_failure = [&] {
    if (addresses->held_before) return;
    if (absl::Status undo = ReleaseAddresses(env, config); !undo.ok()) {
      log::Error("releasing the addresses of failed ADD %s: %s", env.container_id, undo.ToString());
    }
  };

  auto host = Netlink::Open();
  if (!host.ok()) return host.status();
  Wiring wiring(*host, PinLayout{config.bpf_root});
  auto wired = wiring.Add(PodWiring{.container_id = env.container_id,
                                    .ifname = env.ifname,
                                    .netns_path = env.netns,
                                    .addresses = addresses->addresses,
                                    .mtu = static_cast<uint32_t>(config.mtu),
                                    .policy_pending = config.policy,

                                    .device_mode = config.device_mode,

                                    .bandwidth = *bandwidth});
  if (!wired.ok()) return wired.status();
  std::move(release_on_failure).Cancel();
  log::Info("ADD %s %s: %s via %s%s", env.container_id, env.ifname, addresses->addresses.front().ToString(),
            wired->host_ifname,
            bandwidth->limited() ? absl::StrCat(", ", Describe(*bandwidth)) : std::string());
  if (!config.policy_socket.empty()) RequestPolicy(env, config, addresses->addresses, add_started);
  return ResultJson(BuildResult(env, config, *wired, addresses->addresses, addresses->dns),
                    config.cni_version);
}

absl::Status CmdDel(const CniEnv& env, const NetConfig& config) {
  auto host = Netlink::Open();
  if (!host.ok()) return host.status();
  Wiring wiring(*host, PinLayout{config.bpf_root});
  absl::Status result = wiring.Remove(env.container_id, env.ifname);
  // Addresses are released even when unwiring stumbled, so that a pod that is gone frees them.
  result.Update(ReleaseAddresses(env, config));
  log::Info("DEL %s %s: %s", env.container_id, env.ifname, result.ok() ? "ok" : result.ToString());
  return result;
}

absl::Status CmdCheck(const CniEnv& env, const NetConfig& config) {
  if (absl::Status s = RequireVersionFor("CHECK", config.cni_version, kCheckSince); !s.ok()) return s;
  if (!config.prev_result) {
    return CniError(CniCode::kInvalidNetworkConfig, "CHECK needs the prevResult of the ADD it checks");
  }
  if (absl::Status s = RequireDatapath(config, CniCode::kPluginNotAvailable); !s.ok()) return s;
  std::vector<IpAddress> expected;
  for (const IpConfig& ip : config.prev_result->ips) {
    if (ip.interface && *ip.interface >= 0 && *ip.interface < (int)config.prev_result->interfaces.size() &&
        config.prev_result->interfaces[*ip.interface].name == env.ifname &&
        config.prev_result->interfaces[*ip.interface].sandbox == env.netns) {
      expected.push_back(ip.address.address());
    }
  }
  if (config.delegates_ipam()) {
    if (auto checked = ipam::RunDelegate(Delegate(env, config, "CHECK")); !checked.ok())
      return checked.status();
  } else {
    ipam::FileStore store(config.data_dir);
    auto held = ipam::Allocator(config.name, config.pod_cidrs, store).Lookup(OwnerOf(env));
    if (!held.ok()) return held.status();
    std::set<IpAddress> held_set;
    for (const auto& a : *held) held_set.insert(a.address);
    for (const IpAddress& address : expected) {
      if (!held_set.count(address)) {
        return CniError(CniCode::kInternal, absl::StrCat(address.ToString(), " is not allocated to ",
                                                         env.container_id, "/", env.ifname));
      }
    }
  }
  auto host = Netlink::Open();
  if (!host.ok()) return host.status();
  Wiring wiring(*host, PinLayout{config.bpf_root});
  absl::Status checked = wiring.Check(PodWiring{.container_id = env.container_id,
                                                .ifname = env.ifname,
                                                .netns_path = env.netns,
                                                .addresses = expected,
                                                .mtu = static_cast<uint32_t>(config.mtu),
                                                .device_mode = config.device_mode});
  if (!checked.ok()) return WrapCniError(checked, CniCode::kInternal, "CHECK");
  return absl::OkStatus();
}

absl::Status CmdStatus(const CniEnv& env, const NetConfig& config) {
  if (absl::Status s = RequireVersionFor("STATUS", config.cni_version, kStatusAndGcSince); !s.ok()) return s;
  if (absl::Status s = RequireDatapath(config, CniCode::kPluginNotAvailable); !s.ok()) return s;
  if (config.delegates_ipam()) {
    return ipam::RunDelegate(Delegate(env, config, "STATUS")).status();
  }
  return absl::OkStatus();
}

absl::Status CmdGc(const CniEnv& env, const NetConfig& config) {
  if (absl::Status s = RequireVersionFor("GC", config.cni_version, kStatusAndGcSince); !s.ok()) return s;
  std::vector<ipam::AllocationOwner> valid;
  for (const ValidAttachment& a : config.valid_attachments.value_or(std::vector<ValidAttachment>{})) {
    valid.push_back({a.container_id, a.ifname});
  }
  auto host = Netlink::Open();
  if (!host.ok()) return host.status();
  Wiring wiring(*host, PinLayout{config.bpf_root});
  absl::Status result;
  if (config.delegates_ipam()) {
    result.Update(ipam::RunDelegate(Delegate(env, config, "GC")).status());
  } else {
    ipam::FileStore store(config.data_dir);
    auto released = ipam::Allocator(config.name, config.pod_cidrs, store).Gc(valid);
    if (!released.ok()) return released.status();
    std::set<ipam::AllocationOwner> owners;
    for (const ipam::Allocation& a : *released) owners.insert(a.owner);
    for (const ipam::AllocationOwner& owner : owners) {
      log::Info("GC %s %s", owner.container_id, owner.ifname);
      result.Update(wiring.Remove(owner.container_id, owner.ifname));
    }
  }
  result.Update(wiring.RemoveStaleLinks());
  return result;
}

}  // namespace weir::cni
