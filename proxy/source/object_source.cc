#include "proxy/source/object_source.h"

#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "proxy/k8s/kube_client.h"
#include "proxy/k8s/kube_config.h"
#include "proxy/source/kube_source.h"

namespace weir::agent {
namespace {

template <typename T>
std::string KeyOf(const T& object) {
  return object.metadata.namespace_.empty()
             ? object.metadata.name
             : absl::StrCat(object.metadata.namespace_, "/", object.metadata.name);
}

// The objects of `kind` that the changed files held or hold, each with its version in the whole
// directory now (the last file's, in name order, when several define it; nullopt when none does).
template <typename T>
std::vector<k8s::KeyedObject<T>> Changed(const std::vector<standalone::ManifestDirectory::FileChange>& files,
                                         std::vector<T> k8s::ObjectSet::*kind,
                                         const std::vector<const k8s::ObjectSet*>& now) {
  absl::flat_hash_map<std::string, std::optional<T>> changed;
  for (const auto& file : files) {
    for (const T& object : file.before.*kind) changed.try_emplace(KeyOf(object));
    for (const T& object : file.after.*kind) changed.try_emplace(KeyOf(object));
  }
  if (changed.empty()) return {};
  for (const k8s::ObjectSet* file : now) {
    for (const T& object : file->*kind) {
      if (auto found = changed.find(KeyOf(object)); found != changed.end()) found->second = object;
    }
  }
  std::vector<k8s::KeyedObject<T>> keyed;
  for (auto& [key, object] : changed) keyed.push_back({key, std::move(object)});
  return keyed;
}

// Follows the directory file by file: a change of Namespaces, Pods and NetworkPolicies reaches the
// policy step as those objects alone, the way the API's watches deliver them; a change that touches
// a Service, an EndpointSlice or a Node asks for a complete sync (nullopt), as every change did before.
class ManifestSource : public ObjectSource {
 public:
  explicit ManifestSource(standalone::ManifestDirectory dir) : dir_(std::move(dir)) {}
  bool Ready() const override { return true; }
  k8s::ObjectSet Snapshot() override {
    tracking_ = true;
    return dir_.Load();
  }
  std::optional<SourceChanges> TakeChanges() override {
    const std::vector<standalone::ManifestDirectory::FileChange> files = dir_.Refresh();
    if (!tracking_) return std::nullopt;
    for (const auto& file : files) {
      for (const k8s::ObjectSet* set : {&file.before, &file.after}) {
        if (!set->services.empty() || !set->slices.empty() || !set->nodes.empty()) return std::nullopt;
      }
    }
    const std::vector<const k8s::ObjectSet*> now = dir_.Files();
    size_t skipped = 0;
    for (const k8s::ObjectSet* file : now) skipped += file->skipped;
    return SourceChanges{.services = {},
                         .nodes = std::nullopt,
                         .namespaces = Changed(files, &k8s::ObjectSet::namespaces, now),
                         .pods = Changed(files, &k8s::ObjectSet::pods, now),
                         .network_policies = Changed(files, &k8s::ObjectSet::network_policies, now),
                         .skipped = skipped};
  }
  bool WaitForChange(std::chrono::milliseconds timeout) override { return dir_.WaitForChange(timeout); }
  std::vector<k8s::Node> Nodes() override {
    // Once changes are tracked, a refresh here would take them from TakeChanges().
    if (!tracking_) dir_.Refresh();
    std::vector<k8s::Node> nodes;
    for (const k8s::ObjectSet* file : dir_.Files())
      nodes.insert(nodes.end(), file->nodes.begin(), file->nodes.end());
    return nodes;
  }

 private:
  standalone::ManifestDirectory dir_;
  bool tracking_ = false;  // a Snapshot() was taken: changes since are worth reporting
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
