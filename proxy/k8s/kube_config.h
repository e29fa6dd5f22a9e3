// Where the API server is and how to authenticate to it: from a kubeconfig file (current context,
// or a named one) or from the in-cluster service account. Credentials that live in files stay file
// paths here and are read when a connection is made, because they rotate underneath a running
// agent (bound service account tokens are refreshed by the kubelet; client certificates too).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace weir::k8s {

// PEM material given inline (kubeconfig `*-data`, already base64-decoded) or as a file path.
struct PemSource {
  std::string data;
  std::string path;

  bool empty() const { return data.empty() && path.empty(); }
  // The inline data, else the file's current contents.
  absl::StatusOr<std::string> Read() const;
};

struct KubeConfig {
  std::string server;               // e.g. https://10.96.0.1:443 or https://api.example:6443/prefix
  PemSource certificate_authority;  // empty: the system's trust store
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name;  // verify (and send as SNI) this name instead of the server's host
  PemSource client_certificate;
  PemSource client_key;
  std::string token;       // static bearer token
  std::string token_file;  // bearer token re-read when the file changes; wins over `token`
  std::string namespace_;  // the context's or service account's namespace ("default" when unset)
  std::string origin;      // for logs: "kubeconfig <path>, context <name>" or "in-cluster service account"
};

// The pieces of `server`. IPv6 hosts come without brackets.
struct ServerUrl {
  bool https = true;
  std::string host;
  int port = 443;
  std::string base_path;  // "" or e.g. "/k8s/clusters/c-1" (no trailing slash), prefixed to requests
};
absl::StatusOr<ServerUrl> ParseServerUrl(std::string_view url);

// Parses kubeconfig YAML. Relative file paths in it are resolved against `base_dir` (the file's
// directory), as kubectl does. `context` empty: the file's current-context. Authentication by exec
// plugins or auth-provider is not supported and fails unless the user also has a token or a client
// certificate.
absl::StatusOr<KubeConfig> ParseKubeConfig(std::string_view yaml, const std::string& base_dir,
                                           const std::string& context = "");
absl::StatusOr<KubeConfig> LoadKubeConfigFile(const std::string& path, const std::string& context = "");

inline constexpr const char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";

// The inputs of in-cluster configuration, injectable for tests.
struct InClusterEnvironment {
  std::string service_host;  // $KUBERNETES_SERVICE_HOST
  std::string service_port;  // $KUBERNETES_SERVICE_PORT
  std::string service_account_dir = kServiceAccountDir;
};
InClusterEnvironment InClusterEnvironmentFromProcess();
// Fails (kFailedPrecondition) when not running in a pod: no service host, or no token file.
absl::StatusOr<KubeConfig> InClusterConfig(const InClusterEnvironment& environment);

// The agent's choice: `kubeconfig_path` when given; otherwise in-cluster when
// $KUBERNETES_SERVICE_HOST is set; otherwise $KUBECONFIG (its first entry), then ~/.kube/config.
absl::StatusOr<KubeConfig> ResolveKubeConfig(const std::string& kubeconfig_path);

}  // namespace weir::k8s
