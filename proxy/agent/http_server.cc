#include "proxy/agent/http_server.h"

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/errno_status.h"
#include "proxy/agent/process_metrics.h"
#include "spdlog/spdlog.h"

namespace weir::agent {
namespace {

// Stop() waits for the workers, and a worker holding an idle keep-alive connection or a client
// that sends nothing keeps its thread until these expire: short values keep shutdown prompt.
// Probes and scrapes are small requests on a node-local network, so they lose nothing.
constexpr time_t kKeepAliveTimeoutSeconds = 1;
constexpr time_t kReadTimeoutSeconds = 2;
constexpr time_t kWriteTimeoutSeconds = 5;

constexpr size_t kAgentServerWorkers = 2;

constexpr char kPrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// httplib's default on Linux is SO_REUSEPORT alone, which lets a second listener (a stale agent, or
// another program) share the port silently and take half the probes. SO_REUSEADDR alone still
// allows rebinding over TIME_WAIT connections after a restart, but fails on a port in use.
void ReuseAddressOnly(socket_t sock) {
  const int yes = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
}

}  // namespace

HttpListener::HttpListener(size_t worker_threads) {
  server_.set_socket_options(ReuseAddressOnly);
  server_.new_task_queue = [worker_threads] { return new httplib::ThreadPool(worker_threads); };
  server_.set_keep_alive_timeout(kKeepAliveTimeoutSeconds);
  server_.set_read_timeout(kReadTimeoutSeconds, 0);
  server_.set_write_timeout(kWriteTimeoutSeconds, 0);
}

absl::Status HttpListener::Start(const std::string& host, int port) {
  if (thread_.joinable() || port_ != 0) return absl::FailedPreconditionError("HTTP listener already started");
  errno = 0;
  if (port == 0) {
    const int bound = server_.bind_to_any_port(host);
    if (bound <= 0) return ErrnoStatus(errno != 0 ? errno : EADDRNOTAVAIL, absl::StrCat("bind ", host, ":0"));
    port_ = bound;
  } else {
    if (!server_.bind_to_port(host, port)) {
      return ErrnoStatus(errno != 0 ? errno : EADDRNOTAVAIL, absl::StrCat("bind ", host, ":", port));
    }
    port_ = port;
  }
  thread_ = std::thread([this] {
    if (!server_.listen_after_bind()) spdlog::warn("HTTP listener on port {} stopped with an error", port_);
    serving_done_ = true;
  });
  // httplib's stop() does nothing until the serving loop has marked itself running: wait for that,
  // so that a Stop() right after Start() cannot be lost and leave Stop() joining forever.
  while (!server_.is_running() && !serving_done_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return absl::OkStatus();
}

void HttpListener::Stop() {
  if (!thread_.joinable()) return;
  server_.stop();
  thread_.join();
}

AgentHttpServer::AgentHttpServer() : listener_(kAgentServerWorkers) {}

absl::Status AgentHttpServer::Start(const std::string& host, int port, Metrics& metrics,
                                    std::function<bool()> ready, std::function<std::string()> extra_metrics) {
  auto health = [ready = std::move(ready)](const httplib::Request&, httplib::Response& response) {
    if (!ready || ready()) {
      response.set_content("ok", "text/plain");
    } else {
      response.status = 503;
      response.set_content("not ready", "text/plain");
    }
  };
  httplib::Server& server = listener_.server();
  server.Get("/healthz", health);
  server.Get("/readyz", health);
  server.Get("/livez", [live = live_](const httplib::Request&, httplib::Response& response) {
    if (!live || live()) {
      response.set_content("ok", "text/plain");
    } else {
      response.status = 503;
      response.set_content("stuck", "text/plain");
    }
  });
  ServeMetrics(server, metrics, std::move(extra_metrics));
  return listener_.Start(host, port);
}

void ServeMetrics(httplib::Server& server, Metrics& metrics, std::function<std::string()> extra_metrics) {
  server.Get("/metrics", [&metrics, extra_metrics = std::move(extra_metrics)](const httplib::Request&,
                                                                              httplib::Response& response) {
    std::string body = metrics.Render();
    if (extra_metrics) body += extra_metrics();
    body += ProcessMetricsText();
    response.set_content(body, kPrometheusContentType);
  });
}

}  // namespace weir::agent
