// KubeClient: credentials on the wire (static and rotating tokens), server path prefixes, and TLS
// (CA pinning, client certificates from data or files, tls-server-name) against an httplib
// SSLServer with certificates made by the openssl CLI.
#include "proxy/k8s/kube_client.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "proxy/k8s/kube_list_watch.h"
#include "unit/kube_fake_apiserver.h"

namespace weir::k8s {
namespace {

namespace fs = std::filesystem;
using testing::FakeApiServer;
using testing::Reply;

constexpr char kNamespaces[] = "/api/v1/namespaces";
constexpr char kListBody[] = R"({"kind":"NamespaceList","metadata":{"resourceVersion":"1"},"items":[]})";

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "weir-kube-tls-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  std::string File(const std::string& name) const { return (path_ / name).string(); }
  void Write(const std::string& name, const std::string& contents) const {
    std::ofstream(path_ / name, std::ios::binary | std::ios::trunc) << contents;
  }
  std::string Read(const std::string& name) const {
    std::ifstream in(path_ / name, std::ios::binary);
    std::ostringstream contents;
    contents << in.rdbuf();
    return contents.str();
  }

 private:
  fs::path path_;
};

// ---- Credentials and paths ----

TEST(KubeClientTest, SendsTheStaticTokenAndNothingWithoutOne) {
  FakeApiServer server;
  server.SetList(kNamespaces, {200, kListBody});
  auto with_token = KubeClient::Create({.server = server.url(), .token = "abc"});
  auto anonymous = KubeClient::Create({.server = server.url()});
  ASSERT_TRUE(with_token.ok() && anonymous.ok());
  ASSERT_EQ((*with_token)->Get(kNamespaces)->status, 200);
  ASSERT_EQ((*anonymous)->Get(kNamespaces)->status, 200);
  auto requests = server.Requests(kNamespaces, false);
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].authorization, "Bearer abc");
  EXPECT_EQ(requests[1].authorization, "");
}

TEST(KubeClientTest, ARotatedTokenFileIsPickedUpByTheNextRequest) {
  TempDir dir;
  dir.Write("token", "first-token\n");
  FakeApiServer server;
  server.SetList(kNamespaces, {200, kListBody});
  auto client =
      KubeClient::Create({.server = server.url(), .token = "ignored", .token_file = dir.File("token")});
  ASSERT_TRUE(client.ok());
  EXPECT_EQ((*client)->Get(kNamespaces)->status, 200);
  dir.Write("token.new", "second-token");
  fs::rename(dir.File("token.new"), dir.File("token"));
  EXPECT_EQ((*client)->Get(kNamespaces)->status, 200);
  auto requests = server.Requests(kNamespaces, false);
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].authorization, "Bearer first-token");
  EXPECT_EQ(requests[1].authorization, "Bearer second-token");
}

TEST(KubeClientTest, ServerPathPrefixIsKept) {
  FakeApiServer server;
  server.SetList(std::string("/k8s/clusters/c-1") + kNamespaces, {200, kListBody});
  auto client = KubeClient::Create({.server = server.url() + "/k8s/clusters/c-1/"});
  ASSERT_TRUE(client.ok());
  EXPECT_EQ((*client)->Get(kNamespaces)->status, 200);
}

TEST(KubeClientTest, ABadServerUrlFailsAtCreation) {
  EXPECT_FALSE(KubeClient::Create({.server = "10.0.0.1:6443"}).ok());
}

// ---- TLS ----

// A CA, server certificates for 127.0.0.1 (IP SAN) and for kubernetes.default (DNS SAN only), a
// client certificate, and an unrelated CA; made once for the suite.
class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const std::string script = R"(set -e
cd ")" + dir_->path().string() +
                               R"("
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
key ca.key; key other-ca.key; key server.key; key client.key
openssl req -x509 -new -key ca.key -subj /CN=weir-test-ca -days 2 -out ca.crt
openssl req -x509 -new -key other-ca.key -subj /CN=someone-else -days 2 -out other-ca.crt
issue() {  # name key subject extensions
  openssl req -new -key "$2" -subj "$3" -out "$1.csr"
  printf '%s\n' "$4" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}
issue server-ip server.key /CN=kube-apiserver "subjectAltName=IP:127.0.0.1
extendedKeyUsage=serverAuth"
issue server-dns server.key /CN=kube-apiserver "subjectAltName=DNS:kubernetes.default
extendedKeyUsage=serverAuth"
issue client client.key /CN=weir-agent "extendedKeyUsage=clientAuth"
)";
    dir_->Write("make-certs.sh", script);
    ok_ =
        std::system(
            ("sh " + dir_->File("make-certs.sh") + " >" + dir_->File("make-certs.log") + " 2>&1").c_str()) ==
        0;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    if (!ok_) GTEST_SKIP() << "openssl CLI could not make certificates: " << dir_->Read("make-certs.log");
  }

  // An HTTPS server that requires a client certificate from the test CA.
  class Server {
   public:
    explicit Server(const std::string& cert)
        : server_(dir_->File(cert).c_str(), dir_->File("server.key").c_str(), dir_->File("ca.crt").c_str()) {
      server_.Get(kNamespaces, [](const httplib::Request&, httplib::Response& response) {
        response.set_content(kListBody, "application/json");
      });
      port_ = server_.bind_to_any_port("127.0.0.1");
      thread_ = std::thread([this] { server_.listen_after_bind(); });
      while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ~Server() {
      server_.stop();
      thread_.join();
    }
    std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }

   private:
    httplib::SSLServer server_;
    int port_ = 0;
    std::thread thread_;
  };

  // The config of a client with the test CA and client certificate, given inline.
  static KubeConfig InlineConfig(const std::string& url) {
    KubeConfig config{.server = url};
    config.certificate_authority.data = dir_->Read("ca.crt");
    config.client_certificate.data = dir_->Read("client.crt");
    config.client_key.data = dir_->Read("client.key");
    return config;
  }
  static absl::StatusOr<int> StatusOf(const KubeConfig& config) {
    absl::StatusOr<std::shared_ptr<KubeClient>> client =
        KubeClient::Create(config, {.connect_timeout = std::chrono::seconds(5)});
    if (!client.ok()) return client.status();
    absl::StatusOr<HttpResponse> response = (*client)->Get(kNamespaces);
    if (!response.ok()) return response.status();
    return response->status;
  }

  static TempDir* dir_;
  static bool ok_;
};
TempDir* TlsTest::dir_ = nullptr;
bool TlsTest::ok_ = false;

TEST_F(TlsTest, InlineCaAndClientCertificate) {
  Server server("server-ip.crt");
  absl::StatusOr<int> status = StatusOf(InlineConfig(server.url()));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 200);
}

TEST_F(TlsTest, CaAndClientCertificateFromFiles) {
  Server server("server-ip.crt");
  KubeConfig config{.server = server.url()};
  config.certificate_authority.path = dir_->File("ca.crt");
  config.client_certificate.path = dir_->File("client.crt");
  config.client_key.path = dir_->File("client.key");
  absl::StatusOr<int> status = StatusOf(config);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 200);
}

TEST_F(TlsTest, AServerSignedByAnotherCaIsRejected) {
  Server server("server-ip.crt");
  KubeConfig config = InlineConfig(server.url());
  config.certificate_authority.data = dir_->Read("other-ca.crt");
  absl::StatusOr<int> status = StatusOf(config);
  EXPECT_EQ(status.status().code(), absl::StatusCode::kUnavailable) << status.status();
  EXPECT_NE(status.status().message().find("server certificate rejected: "), absl::string_view::npos)
      << status.status();
}

TEST_F(TlsTest, TheHostMustMatchTheCertificateUnlessTlsServerNameSaysOtherwise) {
  Server server("server-dns.crt");  // valid for kubernetes.default only
  KubeConfig config = InlineConfig(server.url());
  absl::StatusOr<int> mismatch = StatusOf(config);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("IP address mismatch"), absl::string_view::npos)
      << mismatch.status();
  config.tls_server_name = "kubernetes.default";
  absl::StatusOr<int> status = StatusOf(config);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 200);
}

TEST_F(TlsTest, InsecureSkipsVerificationButStillPresentsTheClientCertificate) {
  Server server("server-dns.crt");
  KubeConfig config = InlineConfig(server.url());
  config.certificate_authority = {};
  config.insecure_skip_tls_verify = true;
  absl::StatusOr<int> status = StatusOf(config);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 200);
  config.client_certificate = {};
  config.client_key = {};
  EXPECT_FALSE(StatusOf(config).ok());  // the server requires a client certificate
}

TEST_F(TlsTest, UnusableTlsMaterialFailsAtCreation) {
  KubeConfig config = InlineConfig("https://127.0.0.1:1");
  config.client_key.data = dir_->Read("other-ca.key");  // not the certificate's key
  EXPECT_EQ(KubeClient::Create(config).status().code(), absl::StatusCode::kInvalidArgument);
  config = InlineConfig("https://127.0.0.1:1");
  config.certificate_authority.data = "not a certificate";
  EXPECT_EQ(KubeClient::Create(config).status().code(), absl::StatusCode::kInvalidArgument);
  config = InlineConfig("https://127.0.0.1:1");
  config.client_certificate = {.path = dir_->File("missing.crt")};
  EXPECT_EQ(KubeClient::Create(config).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace weir::k8s
