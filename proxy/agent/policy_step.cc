#include "proxy/agent/policy_step.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proxy/policy/dump.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#include "spdlog/spdlog.h"

namespace weir::agent {
namespace {

using policy::EndpointEnforcement;
using policy::EnforcementMode;
using policy::ObjectRef;

ObjectRef RefOf(const k8s::ObjectMeta& meta) { return {meta.namespace_, meta.name}; }

// An informer key, "namespace/name", as the ref it names.
ObjectRef RefOfKey(const std::string& key) {
  const size_t slash = key.find('/');
  if (slash == std::string::npos) return {"", key};
  return {key.substr(0, slash), key.substr(slash + 1)};
}

IpPrefix HostPrefix(const IpAddress& address) { return IpPrefix(address, address.bit_length()); }

const char* ModeName(EnforcementMode mode) { return mode == EnforcementMode::kAudit ? "audit" : "enforce"; }

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void WriteLabels(JsonWriter& out, const policy::Labels& labels) {
  out.StartObject();
  for (const auto& [key, value] : labels) {
    out.Key(key.c_str());
    out.String(value.c_str());
  }
  out.EndObject();
}

void WriteDirection(JsonWriter& out, const policy::DirectionPolicy& direction, EnforcementMode mode,
                    const policy::IdentityNamer& name_of) {
  out.StartObject();
  out.Key("isolated");
  out.Bool(direction.isolated);
  out.Key("mode");
  out.String(ModeName(mode));
  out.Key("policies");
  out.StartArray();
  for (const ObjectRef& ref : direction.policies) out.String(ref.ToString().c_str());
  out.EndArray();
  out.Key("allowed");
  out.StartArray();
  for (const policy::AllowEntry& entry : direction.allowed) out.String(DumpEntry(entry, name_of).c_str());
  out.EndArray();
  out.EndObject();
}

}  // namespace

uint32_t PolicyIds::Acquire(const ObjectRef& pod) {
  if (auto found = by_pod_.find(pod); found != by_pod_.end()) return found->second;
  uint32_t id = next_;
  while (by_id_.count(id) > 0 || id == 0) ++id;
  next_ = id + 1;
  by_pod_[pod] = id;
  by_id_[id] = pod;
  return id;
}

void PolicyIds::Release(const ObjectRef& pod) {
  auto found = by_pod_.find(pod);
  if (found == by_pod_.end()) return;
  by_id_.erase(found->second);
  by_pod_.erase(found);
}

std::optional<uint32_t> PolicyIds::Find(const ObjectRef& pod) const {
  auto found = by_pod_.find(pod);
  if (found == by_pod_.end()) return std::nullopt;
  return found->second;
}

PolicyStep::PolicyStep(PolicyStepSettings settings, policy::PolicyWriter& writer, Metrics& metrics)
    : settings_(std::move(settings)),
      writer_(writer),
      writes_(metrics.GetCounter(
          "weir_policy_endpoint_writes_total",
          "Endpoint policies written to the datapath (a pod added, or its policy changed).")),
      write_errors_(metrics.GetCounter("weir_policy_write_errors_total",
                                       "Failed writes of endpoint policies or peers (retried).")),
      endpoints_gauge_(metrics.GetGauge("weir_policy_endpoints", "Pods of this node with a policy written.")),
      identities_gauge_(metrics.GetGauge("weir_policy_identities", "Identities allocated on this node.")),
      engine_(settings_.node_name) {}

k8s::Pod PolicyStep::Effective(k8s::Pod pod) {
  const ObjectRef ref = RefOf(pod.metadata);
  if (auto cni = cni_addresses_.find(ref); cni != cni_addresses_.end()) {
    const bool listed = std::all_of(cni->second.begin(), cni->second.end(), [&](const IpAddress& a) {
      return std::find(pod.pod_ips.begin(), pod.pod_ips.end(), a) != pod.pod_ips.end();
    });
    if (listed || pod.node_name != settings_.node_name || pod.host_network) {
      cni_addresses_.erase(cni);
    } else {
      pod.pod_ips = cni->second;
    }
  }
  // As the engine stores it: a finished pod's addresses may already be another's.
  if (pod.phase == "Succeeded" || pod.phase == "Failed") pod.pod_ips.clear();
  return pod;
}

void PolicyStep::Note(const policy::PolicyChanges& changes, Touched& touched) {
  touched.insert(changes.endpoints.begin(), changes.endpoints.end());
  if (!changes.status.ok()) spdlog::warn("network policy: {}", changes.status.ToString());
}

void PolicyStep::ApplyNamespace(const std::string& name, const k8s::Namespace* ns, Touched& touched) {
  const auto& known = engine_.state().namespaces;
  auto current = known.find(name);
  if (ns == nullptr) {
    if (current != known.end()) {
      peers_changed_ = true;
      Note(engine_.DeleteNamespace(name), touched);
    }
    return;
  }
  if (current != known.end() && current->second == *ns) return;
  peers_changed_ = true;  // its pods' identities may follow its labels
  Note(engine_.UpsertNamespace(*ns), touched);
}

void PolicyStep::ApplyPod(const ObjectRef& ref, const k8s::Pod* pod, Touched& touched) {
  const auto& known = engine_.state().pods;
  auto current = known.find(ref);
  if (pod == nullptr) {
    cni_addresses_.erase(ref);
    if (current != known.end()) {
      peers_changed_ = true;
      Note(engine_.DeletePod(ref), touched);
    }
    touched.insert(ref);  // its policy_id goes, even if it was never an endpoint
    return;
  }
  k8s::Pod effective = Effective(*pod);
  if (current != known.end() && current->second.pod == effective) return;
  peers_changed_ = true;
  Note(engine_.UpsertPod(std::move(effective)), touched);
}

void PolicyStep::ApplyPolicy(const ObjectRef& ref, const k8s::NetworkPolicy* policy, Touched& touched) {
  const auto& known = engine_.state().policies;
  auto current = known.find(ref);
  if (policy != nullptr && current != known.end() && current->second == *policy) return;
  // The audit annotation changes no EndpointPolicy, only the modes of the endpoints it isolates.
  const bool audit_before = current != known.end() && current->second.audit;
  if (policy == nullptr || policy->audit != audit_before) {
    for (const auto& [endpoint, enforcement] : written_) {
      for (const policy::DirectionPolicy* direction :
           {&enforcement.policy.ingress, &enforcement.policy.egress}) {
        if (std::find(direction->policies.begin(), direction->policies.end(), ref) !=
            direction->policies.end())
          touched.insert(endpoint);
      }
    }
  }
  if (policy == nullptr) {
    if (current != known.end()) Note(engine_.DeletePolicy(ref), touched);
    return;
  }
  Note(engine_.UpsertPolicy(*policy), touched);
}

bool PolicyStep::SyncAll(const k8s::ObjectSet& objects) {
  std::lock_guard<std::mutex> lock(mu_);
  Touched touched;
  nodes_ = objects.nodes;
  peers_changed_ = true;
  // Namespaces first (pods take their labels), policies last (their subjects exist by then), and
  // deletions of each kind after its upserts; each endpoint computed once, at the end.
  engine_.BeginBatch();
  std::set<std::string> namespaces;
  for (const k8s::Namespace& ns : objects.namespaces) {
    namespaces.insert(ns.metadata.name);
    ApplyNamespace(ns.metadata.name, &ns, touched);
  }
  std::set<ObjectRef> pods, policies;
  for (const k8s::Pod& pod : objects.pods) {
    pods.insert(RefOf(pod.metadata));
    ApplyPod(RefOf(pod.metadata), &pod, touched);
  }
  for (const k8s::NetworkPolicy& policy : objects.network_policies) {
    policies.insert(RefOf(policy.metadata));
    ApplyPolicy(RefOf(policy.metadata), &policy, touched);
  }
  std::vector<ObjectRef> gone_policies, gone_pods;
  std::vector<std::string> gone_namespaces;
  for (const auto& [ref, policy] : engine_.state().policies)
    if (!policies.count(ref)) gone_policies.push_back(ref);
  for (const auto& [ref, pod] : engine_.state().pods)
    if (!pods.count(ref)) gone_pods.push_back(ref);
  for (const auto& [name, ns] : engine_.state().namespaces)
    if (!namespaces.count(name)) gone_namespaces.push_back(name);
  for (const ObjectRef& ref : gone_policies) ApplyPolicy(ref, nullptr, touched);
  for (const ObjectRef& ref : gone_pods) ApplyPod(ref, nullptr, touched);
  for (const std::string& name : gone_namespaces) ApplyNamespace(name, nullptr, touched);
  Note(engine_.EndBatch(), touched);
  // Endpoints written before that are no longer (a restart adopts nothing, so none after one).
  for (const auto& [ref, enforcement] : written_) touched.insert(ref);
  const bool ok = Flush(touched, {});
  pods_changed_.notify_all();
  return ok;
}

bool PolicyStep::SyncChanged(const SourceChanges& changes) {
  std::lock_guard<std::mutex> lock(mu_);
  const Clock::time_point started = Clock::now();
  Touched touched;
  if (changes.nodes) {
    nodes_ = *changes.nodes;
    peers_changed_ = true;
  }
  // A watch (or a manifest file) may deliver many objects at once: each endpoint computed once.
  engine_.BeginBatch();
  for (const auto& change : changes.namespaces) {
    ApplyNamespace(change.key, change.object ? &*change.object : nullptr, touched);
  }
  for (const auto& change : changes.pods) {
    ApplyPod(RefOfKey(change.key), change.object ? &*change.object : nullptr, touched);
  }
  for (const auto& change : changes.network_policies) {
    ApplyPolicy(RefOfKey(change.key), change.object ? &*change.object : nullptr, touched);
  }
  Note(engine_.EndBatch(), touched);
  const bool ok = Flush(touched, {});
  if (!changes.pods.empty()) pods_changed_.notify_all();
  // Only changes that reach this node's endpoints: the cluster's pod churn alone would flood the log.
  if (!touched.empty()) {
    spdlog::info("network policy synced {} namespaces, {} pods, {} policies changed: {} endpoints in {} us",
                 changes.namespaces.size(), changes.pods.size(), changes.network_policies.size(),
                 touched.size(),
                 std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count());
  }
  return ok;
}

absl::StatusOr<uint32_t> PolicyStep::EndpointAdded(const ObjectRef& pod, std::vector<IpAddress> addresses,
                                                   Clock::duration wait) {
  const Clock::time_point deadline = Clock::now() + wait;
  std::unique_lock<std::mutex> lock(mu_);
  auto is_endpoint = [&] {
    auto found = engine_.state().pods.find(pod);
    return found != engine_.state().pods.end() && engine_.state().IsEndpoint(found->second.pod);
  };
  while (!is_endpoint()) {
    if (pods_changed_.wait_until(lock, deadline) == std::cv_status::timeout && !is_endpoint()) {
      return absl::DeadlineExceededError(
          absl::StrCat("pod ", pod.ToString(), " is not known as a pod of ", settings_.node_name, " yet"));
    }
  }
  cni_addresses_[pod] = std::move(addresses);
  Touched touched;
  k8s::Pod current = engine_.state().pods.at(pod).pod;
  ApplyPod(pod, &current, touched);
  touched.insert(pod);
  if (!Flush(touched, {pod}) && unwritten_.count(pod)) {
    return absl::UnavailableError(absl::StrCat("writing the policy of ", pod.ToString(), " failed"));
  }
  std::optional<uint32_t> id = ids_.Find(pod);
  if (!id) return absl::InternalError(absl::StrCat(pod.ToString(), " has no policy_id"));
  return *id;
}

bool PolicyStep::DirectionAudited(const policy::DirectionPolicy& direction) const {
  if (settings_.audit) return true;
  if (!direction.isolated || direction.policies.empty()) return false;
  const auto& policies = engine_.state().policies;
  return std::all_of(direction.policies.begin(), direction.policies.end(), [&](const ObjectRef& ref) {
    auto found = policies.find(ref);
    return found != policies.end() && found->second.audit;
  });
}

EndpointEnforcement PolicyStep::EnforcementOf(uint32_t policy_id,
                                              const policy::EndpointPolicy& endpoint) const {
  return EndpointEnforcement{
      .policy_id = policy_id,
      .policy = endpoint,
      .ingress_mode =
          DirectionAudited(endpoint.ingress) ? EnforcementMode::kAudit : EnforcementMode::kEnforce,
      .egress_mode = DirectionAudited(endpoint.egress) ? EnforcementMode::kAudit : EnforcementMode::kEnforce};
}

std::map<IpPrefix, policy::Identity> PolicyStep::DesiredPeers() const {
  std::map<IpPrefix, policy::Identity> peers;
  for (const k8s::Node& node : nodes_) {
    const bool self = node.metadata.name == settings_.node_name;
    for (const k8s::NodeAddress& address : node.addresses) {
      if (address.ip)
        peers[HostPrefix(*address.ip)] = self ? policy::kIdentityHost : policy::kIdentityRemoteNode;
    }
  }
  for (const IpAddress& address : settings_.node_addresses)
    peers[HostPrefix(address)] = policy::kIdentityHost;
  // hostNetwork pods count as their node; a node's own entry above wins over them.
  for (const auto& [ref, pod] : engine_.state().pods) {
    if (!pod.pod.host_network) continue;
    const bool self = pod.pod.node_name == settings_.node_name;
    for (const IpAddress& address : pod.pod.pod_ips) {
      peers.emplace(HostPrefix(address), self ? policy::kIdentityHost : policy::kIdentityRemoteNode);
    }
  }
  for (const auto& [address, identity] : engine_.PodAddressIdentities())
    peers.emplace(HostPrefix(address), identity);
  return peers;
}

bool PolicyStep::Flush(const Touched& touched, const Touched& forced) {
  bool ok = true;
  // Peers first: a new pod's address must name its identity before a rule admits that identity.
  // They are a walk over every pod of the cluster, so only after a change that can move them.
  if (peers_changed_ || !peers_written_) {
    std::map<IpPrefix, policy::Identity> peers = DesiredPeers();
    if (peers_written_ && peers == peers_) {
      peers_changed_ = false;
    } else if (absl::Status s = writer_.SetPeers(peers); !s.ok()) {
      spdlog::error("network policy peers: {}", s.ToString());
      write_errors_.Increment();
      peers_written_ = false;
      ok = false;
    } else {
      peers_ = std::move(peers);
      peers_written_ = true;
      peers_changed_ = false;
    }
  }
  Touched all = touched;
  all.insert(unwritten_.begin(), unwritten_.end());
  for (const ObjectRef& ref : all) ok = WriteOne(ref, forced.count(ref) > 0) && ok;
  endpoints_gauge_.Set(static_cast<double>(written_.size()));
  identities_gauge_.Set(static_cast<double>(engine_.state().identities.identities().size()));
  return ok;
}

bool PolicyStep::WriteOne(const ObjectRef& ref, bool force) {
  auto endpoint = engine_.endpoints().find(ref);
  if (endpoint == engine_.endpoints().end()) {
    std::optional<uint32_t> id = ids_.Find(ref);
    if (!id) {
      unwritten_.erase(ref);
      return true;
    }
    if (absl::Status s = writer_.RemoveEndpoint(*id); !s.ok()) {
      spdlog::error("network policy of {}: removing: {}", ref.ToString(), s.ToString());
      write_errors_.Increment();
      unwritten_.insert(ref);
      return false;
    }
    written_.erase(ref);
    ids_.Release(ref);
    unwritten_.erase(ref);
    return true;
  }
  EndpointEnforcement enforcement = EnforcementOf(ids_.Acquire(ref), endpoint->second);
  auto written = written_.find(ref);
  if (!force && written != written_.end() && written->second == enforcement) {
    unwritten_.erase(ref);
    return true;
  }
  if (absl::Status s = writer_.WriteEndpoint(enforcement); !s.ok()) {
    spdlog::error("network policy of {}: {}", ref.ToString(), s.ToString());
    write_errors_.Increment();
    unwritten_.insert(ref);
    return false;
  }
  writes_.Increment();
  written_[ref] = std::move(enforcement);
  unwritten_.erase(ref);
  return true;
}

std::map<ObjectRef, EndpointEnforcement> PolicyStep::Written() const {
  std::lock_guard<std::mutex> lock(mu_);
  return written_;
}

std::string PolicyStep::DescribeJson(const std::string& filter) const {
  std::lock_guard<std::mutex> lock(mu_);
  const policy::IdentityAllocator& identities = engine_.state().identities;
  const policy::IdentityNamer key_of = policy::KeyNamer(identities);
  const policy::IdentityNamer number_of = policy::NumberNamer();
  const policy::IdentityNamer name_of = [&](policy::Identity identity) {
    return identities.KeyOf(identity) == nullptr ? number_of(identity)
                                                 : absl::StrCat(identity, " ", key_of(identity));
  };
  rapidjson::StringBuffer buffer;
  JsonWriter out(buffer);
  out.StartObject();
  out.Key("node");
  out.String(settings_.node_name.c_str());
  out.Key("node_audit");
  out.Bool(settings_.audit);
  out.Key("identities");
  out.Uint64(identities.identities().size());
  out.Key("endpoints");
  out.StartArray();
  for (const auto& [ref, endpoint] : engine_.endpoints()) {
    if (!filter.empty() && filter != ref.ToString() && filter != ref.name) continue;
    const auto* pod = &engine_.state().pods.at(ref).pod;
    std::optional<uint32_t> id = ids_.Find(ref);
    const EndpointEnforcement enforcement = EnforcementOf(id.value_or(0), endpoint);
    out.StartObject();
    out.Key("namespace");
    out.String(ref.namespace_.c_str());
    out.Key("name");
    out.String(ref.name.c_str());
    out.Key("policy_id");
    out.Uint(id.value_or(0));
    out.Key("written");
    out.Bool(written_.count(ref) > 0 && !unwritten_.count(ref));
    out.Key("identity");
    out.Uint(endpoint.identity);
    out.Key("addresses");
    out.StartArray();
    for (const IpAddress& address : endpoint.addresses) out.String(address.ToString().c_str());
    out.EndArray();
    out.Key("labels");
    WriteLabels(out, pod->metadata.labels);
    out.Key("namespace_labels");
    WriteLabels(out, engine_.state().NamespaceLabels(ref.namespace_));
    out.Key("ingress");
    WriteDirection(out, endpoint.ingress, enforcement.ingress_mode, name_of);
    out.Key("egress");
    WriteDirection(out, endpoint.egress, enforcement.egress_mode, name_of);
    out.EndObject();
  }
  out.EndArray();
  out.EndObject();
  return buffer.GetString();
}

std::string PolicyStep::DirectoryJson() const {
  std::lock_guard<std::mutex> lock(mu_);
  rapidjson::StringBuffer buffer;
  JsonWriter out(buffer);
  out.StartObject();
  out.Key("endpoints");
  out.StartArray();
  for (const auto& [ref, endpoint] : engine_.endpoints()) {
    std::optional<uint32_t> id = ids_.Find(ref);
    const EndpointEnforcement enforcement = EnforcementOf(id.value_or(0), endpoint);
    out.StartObject();
    out.Key("policy_id");
    out.Uint(id.value_or(0));
    out.Key("namespace");
    out.String(ref.namespace_.c_str());
    out.Key("name");
    out.String(ref.name.c_str());
    out.Key("addresses");
    out.StartArray();
    for (const IpAddress& address : endpoint.addresses) out.String(address.ToString().c_str());
    out.EndArray();
    for (const auto& [name, direction, mode] :
         {std::tuple{"ingress", &endpoint.ingress, enforcement.ingress_mode},
          std::tuple{"egress", &endpoint.egress, enforcement.egress_mode}}) {
      out.Key(name);
      out.StartObject();
      out.Key("isolated");
      out.Bool(direction->isolated);
      out.Key("mode");
      out.String(ModeName(mode));
      out.Key("policies");
      out.StartArray();
      for (const ObjectRef& policy : direction->policies) out.String(policy.ToString().c_str());
      out.EndArray();
      out.EndObject();
    }
    out.EndObject();
  }
  out.EndArray();
  out.Key("identities");
  out.StartObject();
  for (policy::Identity reserved :
       {policy::kIdentityWorld, policy::kIdentityHost, policy::kIdentityRemoteNode}) {
    out.Key(absl::StrCat(reserved).c_str());
    out.String(policy::ReservedIdentityName(reserved));
  }
  // A peer's name: its namespace and pod labels (the namespace's labels are the namespace's).
  for (const auto& [identity, key] : engine_.state().identities.identities()) {
    out.Key(absl::StrCat(identity).c_str());
    out.String(
        absl::StrCat(key.namespace_, "{", absl::StrJoin(key.pod_labels, ",", absl::PairFormatter("=")), "}")
            .c_str());
  }
  out.EndObject();
  out.EndObject();
  return buffer.GetString();
}

std::string PolicyStep::CountersText(policy::PolicyCounters& counters) const {
  absl::StatusOr<std::map<uint32_t, policy::EndpointCounters>> read = counters.Read();
  if (!read.ok()) return "";
  std::string series;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, counts] : *read) {
      auto pod = ids_.by_id().find(id);
      if (pod == ids_.by_id().end()) continue;  // a pod gone since: its series ends
      const std::string labels = absl::StrCat("namespace=\"", pod->second.namespace_, "\",pod=\"",
                                              pod->second.name, "\",direction=\"");
      for (const auto& [direction, verdicts] :
           {std::pair{"ingress", counts.ingress}, std::pair{"egress", counts.egress}}) {
        for (const auto& [verdict, value] :
             {std::pair{"allowed", verdicts.allowed}, std::pair{"denied", verdicts.denied},
              std::pair{"audited", verdicts.audited}}) {
          absl::StrAppend(&series, "weir_policy_packets_total{", labels, direction, "\",verdict=\"", verdict,
                          "\"} ", value, "\n");
        }
      }
    }
  }
  return absl::StrCat(
      "# HELP weir_policy_packets_total New flows' packets judged by network policy, by endpoint, direction "
      "and ",
      "verdict (audited: allowed only because of audit mode).\n# TYPE weir_policy_packets_total counter\n",
      series);
}

}  // namespace weir::agent
