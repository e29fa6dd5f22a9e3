#include "proxy/agent/orphan_collector.h"

#include <filesystem>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cni/attachment_names.h"
#include "cni/ipam/file_store.h"
#include "lib/endpoint_map.h"
#include "lib/tc_attach.h"
#include "spdlog/spdlog.h"

namespace weir::agent {
namespace {

struct HeldAddresses {
  std::string network;
  ipam::AllocationOwner owner;
};

// What one attachment has on the node besides its host interface.
struct AttachmentParts {
  std::vector<Endpoint> endpoints;
  std::vector<HeldAddresses> allocations;
  bool link_pin = false;
};

// Every IPAM network directory under the dataDir: each is one weir network (conflist name).
std::vector<std::string> NetworksIn(const std::string& data_dir) {
  std::vector<std::string> networks;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir, ec)) {
    if (entry.is_directory(ec)) networks.push_back(entry.path().filename());
  }
  return networks;
}

constexpr char kCollectedName[] = "weir_orphans_collected_total";
constexpr char kCollectedHelp[] =
    "Parts of pods whose CNI DEL never came, removed after their interface was gone.";

}  // namespace

OrphanCollector::OrphanCollector(Netlink& host, OrphanCollectorSettings settings, Metrics& metrics)
    : host_(host),
      settings_(std::move(settings)),
      layout_{settings_.bpf_root},
      endpoints_collected_(metrics.GetCounter(kCollectedName, kCollectedHelp, {{"kind", "endpoint"}})),
      allocations_collected_(metrics.GetCounter(kCollectedName, kCollectedHelp, {{"kind", "ipam_address"}})),
      link_pins_collected_(metrics.GetCounter(kCollectedName, kCollectedHelp, {{"kind", "link_pin"}})) {}

bool OrphanCollector::DueForCollection(const std::string& host_ifname, Clock::time_point now,
                                       std::map<std::string, Clock::time_point>& still_missing) {
  auto seen = missing_since_.find(host_ifname);
  const Clock::time_point first = seen == missing_since_.end() ? now : seen->second;
  still_missing[host_ifname] = first;
  return seen != missing_since_.end() && now - first >= settings_.interval;
}

absl::StatusOr<CollectedOrphans> OrphanCollector::Pass(Clock::time_point now) {
  // The parts are read before the interfaces are listed: an ADD that completes in between shows up
  // with its interface, and a DEL in between leaves nothing to collect by the next pass.
  std::map<std::string, AttachmentParts> attachments;
  auto endpoint_map = EndpointMap::OpenPinned(layout_.endpoints_map());
  if (endpoint_map.ok()) {
    auto listed = endpoint_map->List();
    if (!listed.ok()) return listed.status();
    for (const Endpoint& endpoint : *listed) {
      // Entries without a pod id are not the plugin's (or predate pod ids): not ours to judge.
      if (!(endpoint.flags & WEIR_ENDPOINT_LOCAL_POD) || endpoint.pod_id == 0) continue;
      attachments[cni::HostInterfaceNameOfPodId(endpoint.pod_id)].endpoints.push_back(endpoint);
    }
  }
  if (!settings_.cni_data_dir.empty()) {
    ipam::FileStore store(settings_.cni_data_dir);
    for (const std::string& network : NetworksIn(settings_.cni_data_dir)) {
      auto lock = ipam::StoreLock::Acquire(store, network);
      if (!lock.ok()) return lock.status();
      auto held = store.List(network);
      if (!held.ok()) return held.status();
      std::set<ipam::AllocationOwner> owners;
      for (const ipam::Allocation& allocation : *held) owners.insert(allocation.owner);
      for (const ipam::AllocationOwner& owner : owners) {
        attachments[cni::HostInterfaceName(owner.container_id, owner.ifname)].allocations.push_back(
            {network, owner});
      }
    }
  }
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(layout_.pod_links_dir(), ec)) {
    attachments[entry.path().filename()].link_pin = true;
  }

  auto links = host_.ListLinks();
  if (!links.ok()) return links.status();
  std::set<std::string> present;
  for (const LinkInfo& link : *links) present.insert(link.name);

  CollectedOrphans collected;
  std::map<std::string, Clock::time_point> still_missing;
  for (const auto& [host_ifname, parts] : attachments) {
    if (present.count(host_ifname) || !DueForCollection(host_ifname, now, still_missing)) continue;
    std::vector<std::string> removed;
    for (const Endpoint& endpoint : parts.endpoints) {
      // A DEL and a new ADD may have given the address to another pod since it was listed.
      auto current = endpoint_map->Lookup(endpoint.address);
      if (!current.ok() || current->pod_id != endpoint.pod_id) continue;
      if (absl::Status s = endpoint_map->Remove(endpoint.address); !s.ok()) {
        spdlog::warn("orphans: endpoint {} of {}: {}", endpoint.address.ToString(), host_ifname,
                     s.ToString());
        continue;
      }
      ++collected.endpoints;
      removed.push_back(absl::StrCat("endpoint ", endpoint.address.ToString()));
    }
    for (const HeldAddresses& held : parts.allocations) {
      ipam::FileStore store(settings_.cni_data_dir);
      auto lock = ipam::StoreLock::Acquire(store, held.network);
      if (!lock.ok()) {
        spdlog::warn("orphans: IPAM lock of network {}: {}", held.network, lock.status().ToString());
        continue;
      }
      // Under the store's lock no ADD of this owner is allocating: a last look at its interface.
      if (!absl::IsNotFound(host_.GetLink(host_ifname).status())) continue;
      auto released = store.ReleaseByOwner(held.network, held.owner);
      if (!released.ok()) {
        spdlog::warn("orphans: IPAM allocation of {}/{}: {}", held.owner.container_id, held.owner.ifname,
                     released.status().ToString());
        continue;
      }
      collected.allocations += static_cast<int>(released->size());
      for (const IpAddress& address : *released) {
        removed.push_back(absl::StrCat("address ", address.ToString(), " (network ", held.network,
                                       ", container ", held.owner.container_id, " ", held.owner.ifname, ")"));
      }
    }
    if (parts.link_pin) {
      if (absl::Status s = DetachTc(layout_.link(host_ifname)); !s.ok()) {
        spdlog::warn("orphans: link pin of {}: {}", host_ifname, s.ToString());
      } else {
        ++collected.link_pins;
        removed.push_back("tcx link pin");
      }
    }
    if (!removed.empty()) {
      spdlog::info("orphans: {} is gone and its DEL never came: removed {}", host_ifname,
                   absl::StrJoin(removed, ", "));
    }
  }
  missing_since_ = std::move(still_missing);
  return collected;
}

CollectedOrphans OrphanCollector::Tick(Clock::time_point now) {
  if (settings_.interval.count() <= 0) return {};
  if (last_pass_ && now - *last_pass_ < settings_.interval) return {};
  last_pass_ = now;
  auto collected = Pass(now);
  if (!collected.ok()) {
    spdlog::warn("orphans: {}", collected.status().ToString());
    return {};
  }
  endpoints_collected_.Increment(collected->endpoints);
  allocations_collected_.Increment(collected->allocations);
  link_pins_collected_.Increment(collected->link_pins);
  return *collected;
}

}  // namespace weir::agent
