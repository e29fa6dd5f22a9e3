#include "proxy/k8s/kube_client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <httplib.h>
#include <openssl/err.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "proxy/k8s/kube_tls.h"
#include "spdlog/spdlog.h"

namespace weir::k8s {
namespace {

constexpr size_t kMaxErrorBody = 64 * 1024;

std::string OpenSslErrorQueue() {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    absl::StrAppend(&text, " (", buffer, ")");
  }
  return text;
}

// Keeps a request attached to its canceller for exactly the request's lifetime.
class AttachedRequest {
 public:
  AttachedRequest(RequestCanceller* canceller, httplib::ClientImpl* client, bool& attached)
      : canceller_(canceller) {
    attached = canceller_ == nullptr || canceller_->Attach(client);
    if (!attached) canceller_ = nullptr;
  }
  ~AttachedRequest() {
    if (canceller_ != nullptr) canceller_->Detach();
  }
  AttachedRequest(const AttachedRequest&) = delete;
  AttachedRequest& operator=(const AttachedRequest&) = delete;

 private:
  RequestCanceller* canceller_;
};
}  // namespace

void RequestCanceller::Cancel() {
  // The lock keeps the client alive while it is reached; httplib::ClientImpl::stop() is the one
  // call that is safe while another thread runs a request on it (it shuts the socket down).
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_ = true;
  if (active_ != nullptr) active_->stop();
}

bool RequestCanceller::cancelled() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cancelled_;
}

bool RequestCanceller::Attach(httplib::ClientImpl* client) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cancelled_) return false;
  active_ = client;
  return true;
}

void RequestCanceller::Detach() {
  std::lock_guard<std::mutex> lock(mu_);
  active_ = nullptr;
}

KubeClient::KubeClient(KubeConfig config, KubeClientOptions options)
    : config_(std::move(config)), options_(std::move(options)) {}

absl::StatusOr<std::shared_ptr<KubeClient>> KubeClient::Create(KubeConfig config, KubeClientOptions options) {
  absl::StatusOr<ServerUrl> url = ParseServerUrl(config.server);
  if (!url.ok()) return url.status();
  std::shared_ptr<KubeClient> client(new KubeClient(std::move(config), std::move(options)));
  client->https_ = url->https;
  client->host_ = url->host;
  client->port_ = url->port;
  client->base_path_ = url->base_path;
  const bool v6 = url->host.find(':') != std::string::npos;
  client->scheme_host_ = absl::StrCat(url->https ? "https://" : "http://", v6 ? "[" : "", url->host,
                                      v6 ? "]" : "", ":", url->port);
  if (!client->config_.token_file.empty()) {
    client->token_file_ = std::make_unique<TokenFile>(client->config_.token_file);
  }
  // Fail now on unusable TLS material rather than at every reconnect.
  if (client->https_) {
    absl::StatusOr<std::unique_ptr<httplib::ClientImpl>> probe =
        client->Connect(client->options_.read_timeout);
    if (!probe.ok()) return probe.status();
  }
  return client;
}

absl::StatusOr<std::unique_ptr<httplib::ClientImpl>> KubeClient::Connect(
    std::chrono::seconds read_timeout) const {
  std::unique_ptr<httplib::ClientImpl> client;
  if (https_) {
    // With tls-server-name, connect to the real host but speak TLS (SNI, verification) as the name.
    const std::string& tls_name = config_.tls_server_name.empty() ? host_ : config_.tls_server_name;
    auto ssl = std::make_unique<httplib::SSLClient>(tls_name, port_);
    if (!config_.tls_server_name.empty()) ssl->set_hostname_addr_map({{tls_name, host_}});
    if (!ssl->is_valid())
      return absl::InternalError(absl::StrCat("TLS client setup failed", OpenSslErrorQueue()));
    ssl->enable_server_certificate_verification(false);  // OpenSSL verifies instead: see kube_tls.h
    if (absl::Status s = ConfigureClientTls(ssl->ssl_context(), config_, tls_name); !s.ok()) return s;
    client = std::move(ssl);
  } else {
    client = std::make_unique<httplib::ClientImpl>(host_, port_);
  }
  client->set_connection_timeout(options_.connect_timeout);
  client->set_read_timeout(read_timeout);
  client->set_write_timeout(options_.connect_timeout);
  client->set_keep_alive(false);
  client->set_url_encode(false);  // targets come encoded (Target())
  // A watch on a connection whose peer vanished without a FIN would otherwise sit until its read
  // timeout (minutes): TCP keepalive notices within about 30 s, as client-go does.
  client->set_socket_options([](socket_t sock) {
    int on = 1, idle = 15, interval = 5, probes = 3;
    setsockopt(sock, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    setsockopt(sock, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(sock, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
    setsockopt(sock, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes));
  });
  return client;
}

absl::StatusOr<std::string> KubeClient::Authorization() const {
  if (token_file_ != nullptr) {
    absl::StatusOr<std::string> token = token_file_->Get();
    if (!token.ok()) return token.status();
    return absl::StrCat("Bearer ", *token);
  }
  if (!config_.token.empty()) return absl::StrCat("Bearer ", config_.token);
  return std::string();
}

void KubeClient::OnUnauthorized() const {
  if (token_file_ != nullptr) token_file_->Invalidate();
}

absl::StatusOr<HttpResponse> KubeClient::Get(const std::string& target, RequestCanceller* canceller) {
  HttpResponse response;
  absl::StatusOr<StreamEnd> end = Request(
      target, options_.read_timeout,
      [&](std::string_view data) {
        response.body.append(data);
        return true;
      },
      canceller, /*accept_gzip=*/true);
  if (!end.ok()) return end.status();
  response.status = end->status;
  if (end->status != 200) response.body = std::move(end->error_body);
  return response;
}

absl::StatusOr<StreamEnd> KubeClient::GetStream(const std::string& target, std::chrono::seconds read_timeout,
                                                const std::function<bool(std::string_view)>& on_data,
                                                RequestCanceller* canceller) {
  return Request(target, read_timeout, on_data, canceller, /*accept_gzip=*/false);
}

absl::StatusOr<StreamEnd> KubeClient::Request(const std::string& target, std::chrono::seconds read_timeout,
                                              const std::function<bool(std::string_view)>& on_data,
                                              RequestCanceller* canceller, bool accept_gzip) {
  const std::string url = absl::StrCat(scheme_host_, base_path_, target);
  absl::StatusOr<std::string> authorization = Authorization();
  if (!authorization.ok()) return authorization.status();
  absl::StatusOr<std::unique_ptr<httplib::ClientImpl>> client = Connect(read_timeout);
  if (!client.ok()) return client.status();
  TakeCertificateRejection();  // not left over from an earlier request

  httplib::Headers headers = {{"Accept", "application/json"},
                              {"Accept-Encoding", accept_gzip ? "gzip" : "identity"},
                              {"User-Agent", options_.user_agent}};
  if (!authorization->empty()) headers.emplace("Authorization", *authorization);

  StreamEnd end;
  bool attached = false;
  AttachedRequest attachment(canceller, client->get(), attached);
  if (!attached) return absl::CancelledError(absl::StrCat("GET ", url, ": cancelled"));
  auto cancelled = [&] { return canceller != nullptr && canceller->cancelled(); };
  httplib::Result result = (*client)->Get(
      base_path_ + target, headers,
      [&](const httplib::Response& response) {
        end.status = response.status;
        return !cancelled();
      },
      [&](const char* data, size_t length) {
        if (cancelled()) return false;
        if (end.status != 200) {
          end.error_body.append(
              data, std::min(length, kMaxErrorBody - std::min(kMaxErrorBody, end.error_body.size())));
          return true;
        }
        if (!on_data(std::string_view(data, length))) {
          end.stopped_by_receiver = true;
          return false;
        }
        return true;
      });
  if (result.error() != httplib::Error::Success && !end.stopped_by_receiver) {
    if (cancelled()) return absl::CancelledError(absl::StrCat("GET ", url, ": cancelled"));
    std::string tls_detail;
    if (https_) {
      tls_detail = OpenSslErrorQueue();
      if (std::string rejection = TakeCertificateRejection(); !rejection.empty()) {
        absl::StrAppend(&tls_detail, ": server certificate rejected: ", rejection);
      }
    }
    return absl::UnavailableError(absl::StrCat("GET ", url, ": ", httplib::to_string(result.error()),
                                               tls_detail, end.status != 0 ? " (body cut short)" : ""));
  }
  if (end.status == 401) OnUnauthorized();
  return end;
}

std::string UrlEncode(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string encoded;
  encoded.reserve(value.size());
  for (unsigned char c : value) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      encoded.push_back(static_cast<char>(c));
    } else {
      encoded.push_back('%');
      encoded.push_back(kHex[c >> 4]);
      encoded.push_back(kHex[c & 0xf]);
    }
  }
  return encoded;
}

std::string Target(std::string_view path, const std::vector<std::pair<std::string, std::string>>& query) {
  std::string target(path);
  char separator = '?';
  for (const auto& [key, value] : query) {
    if (value.empty()) continue;
    absl::StrAppend(&target, std::string(1, separator), key, "=", UrlEncode(value));
    separator = '&';
  }
  return target;
}

}  // namespace weir::k8s
