#include "proxy/agent/kube_proxy_endpoints.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace weir::agent {
namespace {

constexpr std::chrono::seconds kStallLimit(60);

std::string Rfc3339(SyncProgress::Clock::time_point t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromChrono(t), absl::UTCTimeZone());
}

absl::Status Listen(HttpListener& listener, const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(absl::StrCat("bind address \"", address, "\": expected host:port"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return listener.Start(host.empty() ? "0.0.0.0" : host, port);
}

}  // namespace

bool KubeProxyHealthy(const SyncProgress& progress, SyncProgress::Clock::time_point now,
                      std::chrono::seconds stall_limit) {
  return progress.ever_synced() && now - progress.last_alive() < stall_limit;
}

std::string KubeProxyHealthzBody(const SyncProgress& progress, SyncProgress::Clock::time_point now) {
  return absl::StrCat(R"({"lastUpdated": ")", progress.ever_synced() ? Rfc3339(progress.last_synced()) : "",
                      R"(","currentTime": ")", Rfc3339(now), R"(","nodeEligible": true})");
}

KubeProxyEndpoints::KubeProxyEndpoints() : healthz_(2), metrics_(2) {}

absl::Status KubeProxyEndpoints::Start(const std::string& healthz_address, const std::string& metrics_address,
                                       const SyncProgress& progress, Metrics& metrics,
                                       std::function<std::string()> extra_metrics) {
  if (!healthz_address.empty()) {
    auto health = [&progress](const httplib::Request&, httplib::Response& response) {
      const auto now = SyncProgress::Clock::now();
      response.status = KubeProxyHealthy(progress, now, kStallLimit) ? 200 : 503;
      response.set_content(KubeProxyHealthzBody(progress, now), "application/json");
    };
    healthz_.server().Get("/healthz", health);
    healthz_.server().Get("/livez", health);
    if (absl::Status s = Listen(healthz_, healthz_address); !s.ok()) return s;
  }
  if (!metrics_address.empty()) {
    metrics_.server().Get("/proxyMode", [](const httplib::Request&, httplib::Response& response) {
      response.set_content("ebpf", "text/plain");
    });
    metrics_.server().Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
      response.set_content("ok", "text/plain");
    });
    ServeMetrics(metrics_.server(), metrics, std::move(extra_metrics));
    if (absl::Status s = Listen(metrics_, metrics_address); !s.ok()) return s;
  }
  return absl::OkStatus();
}

void KubeProxyEndpoints::Stop() {
  healthz_.Stop();
  metrics_.Stop();
}

}  // namespace weir::agent
