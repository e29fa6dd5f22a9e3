#include "proxy/source/object_source.h"

#include "proxy/k8s/kube_client.h"
#include "proxy/k8s/kube_config.h"
#include "proxy/source/kube_source.h"

namespace weir::agent {
namespace {

class ManifestSource : public ObjectSource {
 public:
  explicit ManifestSource(standalone::ManifestDirectory dir) : dir_(std::move(dir)) {}
  bool Ready() const override { return true; }
  k8s::ObjectSet Snapshot() override { return dir_.Load(); }
  bool WaitForChange(std::chrono::milliseconds timeout) override { return dir_.WaitForChange(timeout); }

 private:
  standalone::ManifestDirectory dir_;
};

class ApiSource : public ObjectSource {
 public:
  explicit ApiSource(std::unique_ptr<k8s::KubeSource> source) : source_(std::move(source)) {
    source_->Start();
  }
  ~ApiSource() override { Stop(); }
  bool Ready() const override { return source_->HasSynced(); }
  k8s::ObjectSet Snapshot() override { return source_->Snapshot(); }
  std::optional<SourceChanges> TakeChanges() override {
    k8s::KubeSource::Changes changes = source_->TakeChanges();
    SourceChanges taken{.services = std::move(changes.services),
                        .namespaces = std::move(changes.namespaces),
                        .pods = std::move(changes.pods),
                        .network_policies = std::move(changes.network_policies),
                        .skipped = source_->undecodable()};
    if (changes.nodes_changed) taken.nodes = source_->nodes().List();
    return taken;
  }
  bool WaitForChange(std::chrono::milliseconds timeout) override { return source_->WaitForChange(timeout); }
  void Stop() override { source_->Stop(); }
  bool Uninstalling() const override { return source_->OwnerRemoved(); }
  std::vector<k8s::Node> Nodes() override { return source_->nodes().List(); }

 private:
  std::unique_ptr<k8s::KubeSource> source_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ObjectSource>> OpenManifestSource(const std::string& dir) {
  auto opened = standalone::ManifestDirectory::Open(dir);
  if (!opened.ok()) return opened.status();
  return std::make_unique<ManifestSource>(std::move(*opened));
}

absl::StatusOr<std::unique_ptr<ObjectSource>> OpenApiSource(const ApiSourceOptions& options) {
  absl::StatusOr<k8s::KubeConfig> config;
  if (options.kubeconfig.empty() && !options.api_server_host.empty()) {
    k8s::InClusterEnvironment environment = k8s::InClusterEnvironmentFromProcess();
    environment.service_host = options.api_server_host;
    environment.service_port = std::to_string(options.api_server_port > 0 ? options.api_server_port : 443);
    config = k8s::InClusterConfig(environment);
  } else {
    config = k8s::ResolveKubeConfig(options.kubeconfig);
  }
  if (!config.ok()) return config.status();
  auto client = k8s::KubeClient::Create(*config);
  if (!client.ok()) return client.status();
  // Only the kinds the datapath is programmed from, and the owner DaemonSet: the chart's ClusterRole
  // grants nothing else (Pods, Namespaces and NetworkPolicies with NetworkPolicy on).
  auto source = std::make_unique<k8s::KubeSource>(
      *client, k8s::KubeSourceOptions{.watch_policy_objects = options.network_policy,
                                      .owner_daemon_set = options.owner_daemon_set});
  return std::make_unique<ApiSource>(std::move(source));
}

}  // namespace weir::agent
