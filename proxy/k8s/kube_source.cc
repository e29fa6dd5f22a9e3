#include "proxy/k8s/kube_source.h"

namespace weir::k8s {

KubeSource::KubeSource(std::shared_ptr<KubeClient> client, KubeSourceOptions options) {
  options.reflector.sleeper = nullptr;  // a shared sleeper would be interrupted by the first Stop()
  // Changes of these three kinds change the service maps; the other kinds are cache-only so far.
  auto changed = [this] { MarkChanged(); };
  services_ = std::make_unique<Informer<Service>>("services", client, ServicesResource(), ServiceFromJson,
                                                  Informer<Service>::Handlers{.on_change = changed}, options.reflector);
  slices_ = std::make_unique<Informer<EndpointSlice>>("endpointslices", client, EndpointSlicesResource(),
                                                      EndpointSliceFromJson,
                                                      Informer<EndpointSlice>::Handlers{.on_change = changed},
                                                      options.reflector);
  nodes_ = std::make_unique<Informer<Node>>("nodes", client, NodesResource(), NodeFromJson,
                                            Informer<Node>::Handlers{.on_change = changed}, options.reflector);
  if (!options.node_name.empty()) {
    pods_ = std::make_unique<Informer<Pod>>("pods", client, PodsOnNodeResource(options.node_name), PodFromJson,
                                            Informer<Pod>::Handlers{}, options.reflector);
  }
  if (options.watch_namespaces) {
    namespaces_ = std::make_unique<Informer<Namespace>>("namespaces", client, NamespacesResource(),
                                                        NamespaceFromJson, Informer<Namespace>::Handlers{},
                                                        options.reflector);
  }
  if (options.watch_network_policies) {
    network_policies_ = std::make_unique<Informer<NetworkPolicy>>(
        "networkpolicies", client, NetworkPoliciesResource(), NetworkPolicyFromJson,
        Informer<NetworkPolicy>::Handlers{}, options.reflector);
  }
}

void KubeSource::Start() {
  services_->Start();
  slices_->Start();
  nodes_->Start();
  if (pods_) pods_->Start();
  if (namespaces_) namespaces_->Start();
  if (network_policies_) network_policies_->Start();
}

void KubeSource::Stop() {
  services_->Stop();
  slices_->Stop();
  nodes_->Stop();
  if (pods_) pods_->Stop();
  if (namespaces_) namespaces_->Stop();
  if (network_policies_) network_policies_->Stop();
}

bool KubeSource::HasSynced() const {
  return services_->HasSynced() && slices_->HasSynced() && nodes_->HasSynced();
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

KubeSnapshot KubeSource::Snapshot() const {
  KubeSnapshot snapshot;
  snapshot.services = services_->List();
  snapshot.slices = slices_->List();
  snapshot.nodes = nodes_->List();
  snapshot.undecodable = services_->undecodable() + slices_->undecodable() + nodes_->undecodable();
  return snapshot;
}

}  // namespace weir::k8s
