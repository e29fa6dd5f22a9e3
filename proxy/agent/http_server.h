// The agent's HTTP endpoints (/healthz, /readyz, /metrics), and HttpListener, the httplib server
// on its own thread that both they and the healthCheckNodePort servers run on.
#pragma once

#include <httplib.h>

#include <atomic>
#include <cstddef>
#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "proxy/agent/metrics.h"

namespace weir::agent {

// One httplib::Server serving on its own thread. Register handlers through server() before
// Start(); Start() binds synchronously so that a port in use is the caller's error, not a log line
// from another thread. Stop() (also run by the destructor) closes the socket and joins the thread.
class HttpListener {
 public:
  // `worker_threads`: connections served at once. httplib's default pool is 8+ threads per
  // server, far too many for one listener per healthCheckNodePort.
  explicit HttpListener(size_t worker_threads);
  ~HttpListener() { Stop(); }
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  httplib::Server& server() { return server_; }

  // `port` 0: any free port (see port()). At most once per object.
  absl::Status Start(const std::string& host, int port);
  // Idempotent; returns once the serving thread has exited.
  void Stop();

  // The bound port once started, else 0.
  int port() const { return port_; }

 private:
  httplib::Server server_;
  std::thread thread_;
  std::atomic<bool> serving_done_{false};
  int port_ = 0;
};

// Registers GET /metrics on `server`: metrics.Render() followed by extra_metrics() (may be empty), as
// Prometheus text 0.0.4. `metrics` must outlive the server. Shared by the agent's port and
// kube-proxy's :10249.
void ServeMetrics(httplib::Server& server, Metrics& metrics, std::function<std::string()> extra_metrics);

class AgentHttpServer {
 public:
  AgentHttpServer();
  ~AgentHttpServer() { Stop(); }
  AgentHttpServer(const AgentHttpServer&) = delete;
  AgentHttpServer& operator=(const AgentHttpServer&) = delete;

  // Serves, on a thread of its own:
  //   GET /healthz, GET /readyz: 200 "ok" when ready(), else 503 "not ready";
  //   GET /metrics: metrics.Render() followed by extra_metrics() (for values read at scrape time,
  //   e.g. BPF map counters), as Prometheus text 0.0.4.
  // `ready` and `extra_metrics` run on the HTTP thread and must be thread-safe; either may be empty
  // (always ready / nothing extra). `metrics` must outlive the server. `port` 0: any free port.
  absl::Status Start(const std::string& host, int port, Metrics& metrics, std::function<bool()> ready,
                     std::function<std::string()> extra_metrics);
  // Before Start(): GET /livez answers 200 "ok" while `live()`, else 503 "stuck" (a liveness probe:
  // the process is wedged, restart it), as opposed to /readyz (the datapath is not in sync yet).
  // Unset: /livez always answers 200.
  void SetLiveness(std::function<bool()> live) { live_ = std::move(live); }
  // Stops serving and joins the thread; idempotent.
  void Stop() { listener_.Stop(); }

  int port() const { return listener_.port(); }

 private:
  HttpListener listener_;
  std::function<bool()> live_;
};

}  // namespace weir::agent
