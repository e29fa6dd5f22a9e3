#include "proxy/source/kube_source.h"

#include <utility>

namespace weir::k8s {
namespace {

template <typename T>
std::vector<KeyedObject<T>> Current(const Informer<T>& informer, const std::set<std::string>& keys) {
  std::vector<KeyedObject<T>> objects;
  objects.reserve(keys.size());
  for (const std::string& key : keys) {
    std::shared_ptr<const T> object = informer.Get(key);
    objects.push_back({key, object ? std::optional<T>(*object) : std::nullopt});
  }
  return objects;
}

}  // namespace

KubeSource::KubeSource(std::shared_ptr<KubeClient> client, KubeSourceOptions options) {
  options.reflector.sleeper = nullptr;  // a shared sleeper would be interrupted by the first Stop()
  auto changed = [this] { MarkChanged(); };
  services_ = std::make_unique<Informer<Service>>(
      "services", client, ServicesResource(), ServiceFromJson,
      Informer<Service>::Handlers{.on_object = [this](const auto& change) { NoteService(change); },
                                  .on_change = changed},
      options.reflector);
  slices_ = std::make_unique<Informer<EndpointSlice>>(
      "endpointslices", client, EndpointSlicesResource(), EndpointSliceFromJson,
      Informer<EndpointSlice>::Handlers{.on_object = [this](const auto& change) { NoteSlice(change); },
                                        .on_change = changed},
      options.reflector);
  nodes_ =
      std::make_unique<Informer<Node>>("nodes", client, NodesResource(), NodeFromJson,
                                       Informer<Node>::Handlers{.on_object =
                                                                    [this](const auto&) {
                                                                      std::lock_guard<std::mutex> lock(mu_);
                                                                      nodes_changed_ = true;
                                                                    },
                                                                .on_change = changed},
                                       options.reflector);
  if (options.watch_policy_objects) {
    // Each change is noted by key; TakeChanges() reads the current version then.
    auto note = [this](std::set<std::string> KubeSource::*keys) {
      return [this, keys](const auto& change) {
        std::lock_guard<std::mutex> lock(mu_);
        (this->*keys).insert(change.key);
      };
    };
    pods_ = std::make_unique<Informer<Pod>>(
        "pods", client, PodsResource(), PodFromJson,
        Informer<Pod>::Handlers{.on_object = note(&KubeSource::changed_pods_), .on_change = changed},
        options.reflector);
    namespaces_ = std::make_unique<Informer<Namespace>>(
        "namespaces", client, NamespacesResource(), NamespaceFromJson,
        Informer<Namespace>::Handlers{.on_object = note(&KubeSource::changed_namespaces_),
                                      .on_change = changed},
        options.reflector);
    network_policies_ = std::make_unique<Informer<NetworkPolicy>>(
        "networkpolicies", client, NetworkPoliciesResource(), NetworkPolicyFromJson,
        Informer<NetworkPolicy>::Handlers{.on_object = note(&KubeSource::changed_policies_),
                                          .on_change = changed},
        options.reflector);
  }
  if (auto slash = options.owner_daemon_set.find('/'); slash != std::string::npos) {
    owner_ = std::make_unique<Informer<DaemonSet>>(
        "daemonset", client,
        DaemonSetResource(options.owner_daemon_set.substr(0, slash),
                          options.owner_daemon_set.substr(slash + 1)),
        DaemonSetFromJson,
        Informer<DaemonSet>::Handlers{.on_object =
                                          [this](const ObjectChange<DaemonSet>& change) {
                                            if (change.kind == ObjectChange<DaemonSet>::Kind::kDeleted ||
                                                (change.after && change.after->deleting)) {
                                              owner_removed_ = true;
                                            }
                                          }},
        options.reflector);
  }
}

void KubeSource::Start() {
  services_->Start();
  slices_->Start();
  nodes_->Start();
  if (pods_) pods_->Start();
  if (namespaces_) namespaces_->Start();
  if (network_policies_) network_policies_->Start();
  if (owner_) owner_->Start();
}

void KubeSource::Stop() {
  services_->Stop();
  slices_->Stop();
  nodes_->Stop();
  if (pods_) pods_->Stop();
  if (namespaces_) namespaces_->Stop();
  if (network_policies_) network_policies_->Stop();
  if (owner_) owner_->Stop();
}

bool KubeSource::HasSynced() const {
  return services_->HasSynced() && slices_->HasSynced() && nodes_->HasSynced() &&
         (pods_ == nullptr ||
          (pods_->HasSynced() && namespaces_->HasSynced() && network_policies_->HasSynced()));
}

void KubeSource::MarkChanged() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    changed_ = true;
  }
  changed_cv_.notify_all();
}

bool KubeSource::WaitForChange(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  const bool changed = changed_cv_.wait_for(lock, timeout, [this] { return changed_; });
  changed_ = false;
  return changed;
}

void KubeSource::NoteService(const ObjectChange<Service>& change) {
  const Service& service = change.after ? *change.after : *change.before;
  std::lock_guard<std::mutex> lock(mu_);
  changed_services_.insert(RefOf(service));
}

void KubeSource::NoteSlice(const ObjectChange<EndpointSlice>& change) {
  std::optional<ServiceRef> before = change.before ? OwnerOf(*change.before) : std::nullopt;
  std::optional<ServiceRef> after = change.after ? OwnerOf(*change.after) : std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  if (before) {
    changed_services_.insert(*before);
    auto keys = slice_keys_.find(*before);
    if (keys != slice_keys_.end()) {
      keys->second.erase(change.key);
      if (keys->second.empty()) slice_keys_.erase(keys);
    }
  }
  if (after) {
    changed_services_.insert(*after);
    slice_keys_[*after].insert(change.key);
  }
}

KubeSource::Changes KubeSource::TakeChanges() {
  Changes changes;
  std::vector<std::pair<ServiceRef, std::vector<std::string>>> touched;
  struct {
    std::set<std::string> namespaces, pods, policies;
  } policy_keys;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const ServiceRef& ref : changed_services_) {
      auto keys = slice_keys_.find(ref);
      touched.emplace_back(ref, keys == slice_keys_.end()
                                    ? std::vector<std::string>{}
                                    : std::vector<std::string>(keys->second.begin(), keys->second.end()));
    }
    changed_services_.clear();
    changes.nodes_changed = std::exchange(nodes_changed_, false);
    policy_keys = {std::exchange(changed_namespaces_, {}), std::exchange(changed_pods_, {}),
                   std::exchange(changed_policies_, {})};
  }
  if (pods_ != nullptr) {
    changes.namespaces = Current(*namespaces_, policy_keys.namespaces);
    changes.pods = Current(*pods_, policy_keys.pods);
    changes.network_policies = Current(*network_policies_, policy_keys.policies);
  }
  for (auto& [ref, slice_keys] : touched) {
    ServiceObjects objects{.ref = ref};
    if (std::shared_ptr<const Service> service = services_->Get(ref.ToString())) objects.service = *service;
    // Keys are namespace/name with one namespace, so key order is name order. A slice relabelled
    // since the index was read belongs to the next pass, which its change has already scheduled.
    for (const std::string& key : slice_keys) {
      std::shared_ptr<const EndpointSlice> slice = slices_->Get(key);
      if (slice != nullptr && OwnerOf(*slice) == ref) objects.slices.push_back(*slice);
    }
    changes.services.push_back(std::move(objects));
  }
  return changes;
}

ObjectSet KubeSource::Snapshot() const {
  ObjectSet snapshot;
  snapshot.services = services_->List();
  snapshot.slices = slices_->List();
  snapshot.nodes = nodes_->List();
  if (pods_ != nullptr) {
    snapshot.namespaces = namespaces_->List();
    snapshot.pods = pods_->List();
    snapshot.network_policies = network_policies_->List();
  }
  snapshot.skipped = undecodable();
  return snapshot;
}

size_t KubeSource::undecodable() const {
  size_t count = services_->undecodable() + slices_->undecodable() + nodes_->undecodable();
  if (pods_ != nullptr)
    count += pods_->undecodable() + namespaces_->undecodable() + network_policies_->undecodable();
  return count;
}

}  // namespace weir::k8s
