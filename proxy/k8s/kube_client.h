// HTTP access to the API server: GETs and streamed GETs (watches) with the configured TLS and
// credentials, timeouts, and cancellation from another thread. Each request gets a connection of
// its own (requests are rare: list pages and watch starts), so file-based credentials are re-read
// per connection and rotate without a restart.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "proxy/k8s/kube_config.h"
#include "proxy/k8s/kube_token.h"

namespace httplib {
class ClientImpl;
}

namespace weir::k8s {

struct KubeClientOptions {
  std::chrono::seconds connect_timeout{10};
  // Longest silence while reading a plain GET's response; streams pass their own.
  std::chrono::seconds read_timeout{60};
  std::string user_agent = "weir-agent";
};

struct HttpResponse {
  int status = 0;
  std::string body;
};

// How a streamed GET ended when the transport did not fail.
struct StreamEnd {
  int status = 0;                    // HTTP status; the body went to the receiver only when 200
  bool stopped_by_receiver = false;  // the receiver returned false
  std::string error_body;            // the body of a non-200 response (up to 64 KiB)
};

// Lets another thread abort a client's requests: Cancel() shuts the in-flight request's socket
// down, and later requests fail at once. Cancel() may need repeating: a request that is still
// connecting is only reachable once connected (see Reflector::Stop).
class RequestCanceller {
 public:
  void Cancel();
  bool cancelled() const;

  // For KubeClient: the request running on `client` is the one to abort. False when already
  // cancelled: the request must not start.
  bool Attach(httplib::ClientImpl* client);
  void Detach();

 private:
  mutable std::mutex mu_;
  bool cancelled_ = false;
  httplib::ClientImpl* active_ = nullptr;
};

// Thread-safe: requests from several threads run on separate connections.
class KubeClient {
 public:
  static absl::StatusOr<std::shared_ptr<KubeClient>> Create(KubeConfig config,
                                                            KubeClientOptions options = {});

  // GET `target` (a path with its query, e.g. from Target()). Every HTTP status is a response;
  // errors are transport failures (kUnavailable) and cancellation (kCancelled).
  absl::StatusOr<HttpResponse> Get(const std::string& target, RequestCanceller* canceller = nullptr);

  // GET whose 200 body is handed to `on_data` piece by piece as it arrives, with `read_timeout` as
  // the longest silence tolerated. A body cut short is an error (kUnavailable), like a transport
  // failure; what `on_data` already received stays received.
  absl::StatusOr<StreamEnd> GetStream(const std::string& target, std::chrono::seconds read_timeout,
                                      const std::function<bool(std::string_view)>& on_data,
                                      RequestCanceller* canceller = nullptr);

  const KubeConfig& config() const { return config_; }

 private:
  KubeClient(KubeConfig config, KubeClientOptions options);
  absl::StatusOr<std::unique_ptr<httplib::ClientImpl>> Connect(std::chrono::seconds read_timeout) const;
  // GetStream, with or without gzip: lists compress well, but a compressed stream could hold
  // events back in the compressor's buffer.
  absl::StatusOr<StreamEnd> Request(const std::string& target, std::chrono::seconds read_timeout,
                                    const std::function<bool(std::string_view)>& on_data,
                                    RequestCanceller* canceller, bool accept_gzip);
  // "Bearer <token>", or "" without a token.
  absl::StatusOr<std::string> Authorization() const;
  // A 401 may mean the token rotated under us: read it again next time.
  void OnUnauthorized() const;

  const KubeConfig config_;
  const KubeClientOptions options_;
  std::string scheme_host_;  // for messages
  bool https_ = true;
  std::string host_;
  int port_ = 0;
  std::string base_path_;
  std::unique_ptr<TokenFile> token_file_;
};

// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
std::string UrlEncode(std::string_view value);
// `path` with the query parameters whose values are non-empty, encoded: Target("/api/v1/pods",
// {{"limit", "500"}, {"continue", ""}}) is "/api/v1/pods?limit=500".
std::string Target(std::string_view path, const std::vector<std::pair<std::string, std::string>>& query);

}  // namespace weir::k8s
