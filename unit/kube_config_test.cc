// Kubeconfig and in-cluster configuration, and the rotating token file.
#include "proxy/k8s/kube_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/escaping.h"
#include "proxy/k8s/kube_token.h"

namespace weir::k8s {
namespace {

namespace fs = std::filesystem;

// A scratch directory removed with the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "weir-kube-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& contents) const {
    fs::create_directories((path_ / name).parent_path());
    std::ofstream(path_ / name, std::ios::binary | std::ios::trunc) << contents;
    return (path_ / name).string();
  }

 private:
  fs::path path_;
};

std::string Base64(const std::string& text) { return absl::Base64Escape(text); }

TEST(ParseServerUrlTest, SchemesPortsHostsAndPrefixes) {
  absl::StatusOr<ServerUrl> url = ParseServerUrl("https://api.example.com:6443");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_TRUE(url->https);
  EXPECT_EQ(url->host, "api.example.com");
  EXPECT_EQ(url->port, 6443);
  EXPECT_EQ(url->base_path, "");

  url = ParseServerUrl("https://10.96.0.1");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->port, 443);

  url = ParseServerUrl("http://127.0.0.1:8080/");
  ASSERT_TRUE(url.ok());
  EXPECT_FALSE(url->https);
  EXPECT_EQ(url->port, 8080);
  EXPECT_EQ(url->base_path, "");

  url = ParseServerUrl("https://[fd00::1]:443/k8s/clusters/c-1/");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->host, "fd00::1");
  EXPECT_EQ(url->port, 443);
  EXPECT_EQ(url->base_path, "/k8s/clusters/c-1");

  EXPECT_FALSE(ParseServerUrl("api.example.com:6443").ok());
  EXPECT_FALSE(ParseServerUrl("https://:6443").ok());
  EXPECT_FALSE(ParseServerUrl("https://host:99999").ok());
  EXPECT_FALSE(ParseServerUrl("https://[fd00::1").ok());
}

constexpr char kInlineKubeconfig[] = R"(
apiVersion: v1
kind: Config
current-context: admin@prod
contexts:
- name: admin@staging
  context: {cluster: staging, user: staging-admin}
- name: admin@prod
  context: {cluster: prod, user: prod-admin, namespace: shop}
clusters:
- name: staging
  cluster:
    server: https://staging.example:6443
    insecure-skip-tls-verify: true
- name: prod
  cluster:
    server: https://prod.example:6443
    certificate-authority-data: CA_DATA
    tls-server-name: kubernetes.default
users:
- name: staging-admin
  user:
    token: static-token
- name: prod-admin
  user:
    client-certificate-data: CERT_DATA
    client-key-data: KEY_DATA
)";

std::string InlineKubeconfig() {
  std::string text = kInlineKubeconfig;
  auto replace = [&](const std::string& from, const std::string& to) {
    text.replace(text.find(from), from.size(), to);
  };
  replace("CA_DATA", Base64("-----CA-----\n"));
  replace("CERT_DATA", Base64("-----CERT-----\n"));
  replace("KEY_DATA", Base64("-----KEY-----\n"));
  return text;
}

TEST(KubeConfigTest, CurrentContextWithInlineData) {
  absl::StatusOr<KubeConfig> config = ParseKubeConfig(InlineKubeconfig(), "/etc/kube");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://prod.example:6443");
  EXPECT_EQ(config->certificate_authority.data, "-----CA-----\n");
  EXPECT_EQ(config->certificate_authority.path, "");
  EXPECT_FALSE(config->insecure_skip_tls_verify);
  EXPECT_EQ(config->tls_server_name, "kubernetes.default");
  EXPECT_EQ(config->client_certificate.data, "-----CERT-----\n");
  EXPECT_EQ(config->client_key.data, "-----KEY-----\n");
  EXPECT_EQ(config->token, "");
  EXPECT_EQ(config->namespace_, "shop");
  EXPECT_EQ(*config->client_key.Read(), "-----KEY-----\n");
}

TEST(KubeConfigTest, NamedContextWithTokenAndInsecure) {
  absl::StatusOr<KubeConfig> config = ParseKubeConfig(InlineKubeconfig(), "/etc/kube", "admin@staging");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://staging.example:6443");
  EXPECT_TRUE(config->insecure_skip_tls_verify);
  EXPECT_TRUE(config->certificate_authority.empty());
  EXPECT_EQ(config->token, "static-token");
  EXPECT_TRUE(config->client_certificate.empty());
  EXPECT_EQ(config->namespace_, "default");
}

TEST(KubeConfigTest, FilePathsResolveAgainstTheKubeconfigDirectory) {
  TempDir dir;
  dir.Write("pki/ca.crt", "ca from file");
  dir.Write("pki/client.crt", "cert from file");
  dir.Write("pki/client.key", "key from file");
  dir.Write("token", "file-token\n");
  const std::string path = dir.Write("config", R"(
current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
clusters: [{name: k, cluster: {server: "https://10.0.0.1:6443", certificate-authority: pki/ca.crt}}]
users:
- name: u
  user:
    client-certificate: pki/client.crt
    client-key: /absolute/client.key
    token: ignored-when-tokenFile-is-set
    tokenFile: token
)");
  absl::StatusOr<KubeConfig> config = LoadKubeConfigFile(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->certificate_authority.path, (dir.path() / "pki/ca.crt").string());
  EXPECT_EQ(*config->certificate_authority.Read(), "ca from file");
  EXPECT_EQ(config->client_certificate.path, (dir.path() / "pki/client.crt").string());
  EXPECT_EQ(config->client_key.path, "/absolute/client.key");
  EXPECT_EQ(config->token_file, (dir.path() / "token").string());
  EXPECT_NE(config->origin.find(path), std::string::npos) << config->origin;
}

TEST(KubeConfigTest, ErrorsSayWhatIsWrong) {
  auto error_of = [](const std::string& yaml) {
    absl::StatusOr<KubeConfig> config = ParseKubeConfig(yaml, "");
    return config.ok() ? std::string("ok") : std::string(config.status().message());
  };
  EXPECT_NE(error_of("kind: Config\n").find("current-context"), std::string::npos);
  EXPECT_NE(error_of("current-context: x\ncontexts: []\n").find("no context named \"x\""), std::string::npos);
  EXPECT_NE(
      error_of("current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n").find("no cluster named"),
      std::string::npos);
  EXPECT_NE(error_of("current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
                     "clusters: [{name: k, cluster: {server: 'ftp://x'}}]\n")
                .find("not an http"),
            std::string::npos);
  EXPECT_NE(error_of("current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
                     "clusters: [{name: k, cluster: {server: 'https://x'}}]\n"
                     "users: [{name: u, user: {client-certificate-data: '!!notbase64!!'}}]\n")
                .find("not valid base64"),
            std::string::npos);
  EXPECT_NE(error_of("current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
                     "clusters: [{name: k, cluster: {server: 'https://x'}}]\n"
                     "users: [{name: u, user: {client-certificate: /a.crt}}]\n")
                .find("must be given together"),
            std::string::npos);
  EXPECT_NE(error_of("current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
                     "clusters: [{name: k, cluster: {server: 'https://x'}}]\n"
                     "users: [{name: u, user: {exec: {command: aws}}}]\n")
                .find("exec"),
            std::string::npos);
  EXPECT_NE(error_of("[unclosed").find("not YAML"), std::string::npos);
}

TEST(InClusterConfigTest, ReadsTheServiceAccountDirectory) {
  TempDir dir;
  dir.Write("token", "sa-token");
  dir.Write("ca.crt", "cluster ca");
  dir.Write("namespace", "kube-system\n");
  absl::StatusOr<KubeConfig> config = InClusterConfig({"10.96.0.1", "443", dir.path().string()});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://10.96.0.1:443");
  EXPECT_EQ(config->token_file, (dir.path() / "token").string());
  EXPECT_EQ(config->certificate_authority.path, (dir.path() / "ca.crt").string());
  EXPECT_EQ(config->namespace_, "kube-system");
  EXPECT_FALSE(config->insecure_skip_tls_verify);
}

TEST(InClusterConfigTest, Ipv6ServiceHostIsBracketed) {
  TempDir dir;
  dir.Write("token", "sa-token");
  absl::StatusOr<KubeConfig> config = InClusterConfig({"fd00:10:96::1", "443", dir.path().string()});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://[fd00:10:96::1]:443");
  EXPECT_EQ(ParseServerUrl(config->server)->host, "fd00:10:96::1");
  EXPECT_TRUE(config->certificate_authority.empty());  // no ca.crt: the system store
  EXPECT_EQ(config->namespace_, "default");
}

TEST(InClusterConfigTest, OutsideAPodFailsClearly) {
  TempDir dir;
  absl::StatusOr<KubeConfig> config = InClusterConfig({"", "", dir.path().string()});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kFailedPrecondition);
  config = InClusterConfig({"10.96.0.1", "443", dir.path().string()});  // no token mounted
  EXPECT_EQ(config.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(config.status().message().find("token"), absl::string_view::npos);
}

TEST(TokenFileTest, RereadsWhenTheFileChanges) {
  TempDir dir;
  const std::string path = dir.Write("token", "first\n");
  TokenFile token(path);
  EXPECT_EQ(*token.Get(), "first");
  EXPECT_EQ(*token.Get(), "first");
  // The kubelet's rotation: a new file swapped in (new inode), as its atomic writer does.
  dir.Write("token.new", "second");
  fs::rename(dir.path() / "token.new", path);
  EXPECT_EQ(*token.Get(), "second");
}

TEST(TokenFileTest, InvalidateForcesARereadAndABrokenFileKeepsTheLastToken) {
  TempDir dir;
  const std::string path = dir.Write("token", "first");
  TokenFile token(path);
  ASSERT_EQ(*token.Get(), "first");
  // Same size, and possibly the same mtime granule: only Invalidate() (after a 401) notices.
  {
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file << "fir5t";
  }
  token.Invalidate();
  EXPECT_EQ(*token.Get(), "fir5t");
  fs::remove(path);
  EXPECT_EQ(*token.Get(), "fir5t");

  TokenFile missing((dir.path() / "absent").string());
  EXPECT_EQ(missing.Get().status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace weir::k8s
