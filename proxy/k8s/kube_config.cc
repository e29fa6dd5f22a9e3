#include "proxy/k8s/kube_config.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "yaml-cpp/yaml.h"

namespace weir::k8s {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", path));
  return contents.str();
}

absl::string_view ToAbsl(std::string_view text) { return absl::string_view(text.data(), text.size()); }

// The string at `node[key]`, "" when absent. Never throws: kubeconfig files are hand-edited.
std::string StringAt(const YAML::Node& node, const char* key) {
  if (!node.IsMap()) return "";
  const YAML::Node child = node[key];
  if (!child.IsDefined() || !child.IsScalar()) return "";
  return child.Scalar();
}

bool BoolAt(const YAML::Node& node, const char* key) {
  if (!node.IsMap()) return false;
  const YAML::Node child = node[key];
  bool value = false;
  return child.IsDefined() && child.IsScalar() && YAML::convert<bool>::decode(child, value) && value;
}

// kubeconfig lists are `[{name: x, <field>: {...}}]`; returns the named entry's <field> map.
absl::StatusOr<YAML::Node> NamedEntry(const YAML::Node& root, const char* list, const char* field,
                                      const std::string& name) {
  const YAML::Node entries = root[list];
  if (entries.IsDefined() && entries.IsSequence()) {
    for (const YAML::Node& entry : entries) {
      if (StringAt(entry, "name") != name) continue;
      const YAML::Node body = entry[field];
      if (!body.IsDefined() || !body.IsMap()) {
        return absl::InvalidArgumentError(absl::StrCat(list, " entry \"", name, "\" has no ", field, " map"));
      }
      return body;
    }
  }
  return absl::NotFoundError(absl::StrCat("no ", field, " named \"", name, "\" in ", list));
}

std::string ResolvePath(const std::string& path, const std::string& base_dir) {
  if (path.empty() || fs::path(path).is_absolute() || base_dir.empty()) return path;
  return (fs::path(base_dir) / path).lexically_normal().string();
}

// `<key>-data` (base64) wins over the `<key>` file path, as in client-go.
absl::StatusOr<PemSource> PemFrom(const YAML::Node& node, const char* key, const std::string& base_dir) {
  PemSource source;
  const std::string data_key = absl::StrCat(key, "-data");
  if (std::string encoded = StringAt(node, data_key.c_str()); !encoded.empty()) {
    // Tolerate the line breaks some tools wrap base64 with.
    encoded.erase(
        std::remove_if(encoded.begin(), encoded.end(), [](char c) { return absl::ascii_isspace(c); }),
        encoded.end());
    if (!absl::Base64Unescape(encoded, &source.data)) {
      return absl::InvalidArgumentError(absl::StrCat(data_key, " is not valid base64"));
    }
    return source;
  }
  source.path = ResolvePath(StringAt(node, key), base_dir);
  return source;
}

std::string HomeKubeConfig() {
  const char* home = std::getenv("HOME");
  return home == nullptr ? "" : absl::StrCat(home, "/.kube/config");
}

}  // namespace

absl::StatusOr<std::string> PemSource::Read() const {
  if (!data.empty()) return data;
  if (path.empty()) return absl::FailedPreconditionError("no PEM data or file given");
  return ReadWholeFile(path);
}

absl::StatusOr<ServerUrl> ParseServerUrl(std::string_view url) {
  ServerUrl parsed;
  std::string_view rest = url;
  if (absl::StartsWith(ToAbsl(rest), "https://")) {
    rest.remove_prefix(8);
  } else if (absl::StartsWith(ToAbsl(rest), "http://")) {
    parsed.https = false;
    parsed.port = 80;
    rest.remove_prefix(7);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("server \"", ToAbsl(url), "\" is not an http:// or https:// URL"));
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    std::string_view path = rest.substr(slash);
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    parsed.base_path = std::string(path);
  }
  std::string_view port_text;
  if (absl::StartsWith(ToAbsl(authority), "[")) {  // [v6]:port
    size_t close = authority.find(']');
    if (close == std::string_view::npos)
      return absl::InvalidArgumentError(absl::StrCat("bad IPv6 host in ", ToAbsl(url)));
    parsed.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return absl::InvalidArgumentError(absl::StrCat("bad host in ", ToAbsl(url)));
      port_text = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    parsed.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (parsed.host.empty())
    return absl::InvalidArgumentError(absl::StrCat("no host in server \"", ToAbsl(url), "\""));
  if (!port_text.empty()) {
    int port = 0;
    if (!absl::SimpleAtoi(ToAbsl(port_text), &port) || port < 1 || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("bad port in server \"", ToAbsl(url), "\""));
    }
    parsed.port = port;
  }
  return parsed;
}

absl::StatusOr<KubeConfig> ParseKubeConfig(std::string_view yaml, const std::string& base_dir,
                                           const std::string& context) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("kubeconfig is not YAML: ", e.what()));
  }
  if (!root.IsMap()) return absl::InvalidArgumentError("kubeconfig is not a map");

  try {
    const std::string context_name = context.empty() ? StringAt(root, "current-context") : context;
    if (context_name.empty()) return absl::InvalidArgumentError("kubeconfig has no current-context");
    absl::StatusOr<YAML::Node> context_body = NamedEntry(root, "contexts", "context", context_name);
    if (!context_body.ok()) return context_body.status();
    const std::string cluster_name = StringAt(*context_body, "cluster");
    const std::string user_name = StringAt(*context_body, "user");

    KubeConfig config;
    config.origin = absl::StrCat("context ", context_name);
    config.namespace_ = StringAt(*context_body, "namespace");
    if (config.namespace_.empty()) config.namespace_ = "default";

    absl::StatusOr<YAML::Node> cluster = NamedEntry(root, "clusters", "cluster", cluster_name);
    if (!cluster.ok()) return cluster.status();
    config.server = StringAt(*cluster, "server");
    if (absl::StatusOr<ServerUrl> url = ParseServerUrl(config.server); !url.ok()) return url.status();
    config.insecure_skip_tls_verify = BoolAt(*cluster, "insecure-skip-tls-verify");
    config.tls_server_name = StringAt(*cluster, "tls-server-name");
    absl::StatusOr<PemSource> ca = PemFrom(*cluster, "certificate-authority", base_dir);
    if (!ca.ok())
      return absl::InvalidArgumentError(absl::StrCat("cluster ", cluster_name, ": ", ca.status().message()));
    config.certificate_authority = *ca;

    // A context without a user is anonymous access: valid, if rarely useful.
    if (!user_name.empty()) {
      absl::StatusOr<YAML::Node> user = NamedEntry(root, "users", "user", user_name);
      if (!user.ok()) return user.status();
      absl::StatusOr<PemSource> cert = PemFrom(*user, "client-certificate", base_dir);
      absl::StatusOr<PemSource> key = PemFrom(*user, "client-key", base_dir);
      if (!cert.ok())
        return absl::InvalidArgumentError(absl::StrCat("user ", user_name, ": ", cert.status().message()));
      if (!key.ok())
        return absl::InvalidArgumentError(absl::StrCat("user ", user_name, ": ", key.status().message()));
      if (cert->empty() != key->empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("user ", user_name, ": client-certificate and client-key must be given together"));
      }
      config.client_certificate = *cert;
      config.client_key = *key;
      config.token = StringAt(*user, "token");
      config.token_file = ResolvePath(StringAt(*user, "tokenFile"), base_dir);
      const bool has_credentials =
          !config.client_certificate.empty() || !config.token.empty() || !config.token_file.empty();
      if (!has_credentials && ((*user)["exec"].IsDefined() || (*user)["auth-provider"].IsDefined())) {
        return absl::UnimplementedError(
            absl::StrCat("user ", user_name,
                         ": exec and auth-provider credentials are not supported; "
                         "use a token, tokenFile or client certificate"));
      }
    }
    return config;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("kubeconfig: ", e.what()));
  }
}

absl::StatusOr<KubeConfig> LoadKubeConfigFile(const std::string& path, const std::string& context) {
  absl::StatusOr<std::string> text = ReadWholeFile(path);
  if (!text.ok()) return text.status();
  const std::string base_dir = fs::path(path).parent_path().string();
  absl::StatusOr<KubeConfig> config = ParseKubeConfig(*text, base_dir, context);
  if (!config.ok()) {
    return absl::Status(config.status().code(), absl::StrCat(path, ": ", config.status().message()));
  }
  config->origin = absl::StrCat("kubeconfig ", path, ", ", config->origin);
  return config;
}

InClusterEnvironment InClusterEnvironmentFromProcess() {
  InClusterEnvironment environment;
  if (const char* host = std::getenv("KUBERNETES_SERVICE_HOST")) environment.service_host = host;
  if (const char* port = std::getenv("KUBERNETES_SERVICE_PORT")) environment.service_port = port;
  return environment;
}

absl::StatusOr<KubeConfig> InClusterConfig(const InClusterEnvironment& environment) {
  if (environment.service_host.empty() || environment.service_port.empty()) {
    return absl::FailedPreconditionError(
        "not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set");
  }
  const fs::path dir(environment.service_account_dir);
  KubeConfig config;
  config.origin = "in-cluster service account";
  const bool v6 = absl::StrContains(environment.service_host, ':');
  config.server = absl::StrCat("https://", v6 ? "[" : "", environment.service_host, v6 ? "]" : "", ":",
                               environment.service_port);
  if (absl::StatusOr<ServerUrl> url = ParseServerUrl(config.server); !url.ok()) return url.status();
  // Checked now so that a pod without a mounted token fails at start, not at the first request.
  config.token_file = (dir / "token").string();
  if (absl::StatusOr<std::string> token = ReadWholeFile(config.token_file); !token.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("in-cluster: ", token.status().message()));
  }
  const fs::path ca = dir / "ca.crt";
  std::error_code error;
  if (fs::exists(ca, error)) config.certificate_authority.path = ca.string();
  absl::StatusOr<std::string> namespace_ = ReadWholeFile((dir / "namespace").string());
  config.namespace_ = namespace_.ok() ? std::string(absl::StripAsciiWhitespace(*namespace_)) : "";
  if (config.namespace_.empty()) config.namespace_ = "default";
  return config;
}

absl::StatusOr<KubeConfig> ResolveKubeConfig(const std::string& kubeconfig_path) {
  if (!kubeconfig_path.empty()) return LoadKubeConfigFile(kubeconfig_path);
  InClusterEnvironment environment = InClusterEnvironmentFromProcess();
  if (!environment.service_host.empty()) return InClusterConfig(environment);
  std::string path;
  if (const char* list = std::getenv("KUBECONFIG"); list != nullptr && *list != '\0') {
    std::vector<std::string> entries = absl::StrSplit(list, ':', absl::SkipEmpty());
    if (!entries.empty()) path = entries.front();
  }
  if (path.empty()) path = HomeKubeConfig();
  if (path.empty()) return absl::FailedPreconditionError("no kubeconfig given and not running in a cluster");
  return LoadKubeConfigFile(path);
}

}  // namespace weir::k8s
