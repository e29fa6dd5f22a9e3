// The agent's end of lib/agent_socket.h: a unix socket on which CNI ADD asks for a new pod's policy
// (answered once it is written, so the pod's first packet meets it) and weirctl reads the policy
// state. Each connection is served on a thread of its own, since an ADD may wait for its pod to
// reach the agent's cache while other requests go on.
#pragma once

#include <atomic>
#include <chrono>
#include <list>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "lib/unique_fd.h"
#include "proxy/agent/metrics.h"
#include "proxy/agent/policy_step.h"

namespace weir::agent {

class PolicySocket {
 public:
  // `step` and `metrics` outlive this. `pod_wait`: how long an ADD's request waits for its pod to
  // reach the cache (keep it below the CNI's own timeout, so the plugin hears why).
  PolicySocket(PolicyStep& step, Metrics& metrics, std::chrono::milliseconds pod_wait);
  ~PolicySocket() { Stop(); }
  PolicySocket(const PolicySocket&) = delete;
  PolicySocket& operator=(const PolicySocket&) = delete;

  // Listens on `path` (lib/agent_socket.h: "@name" is abstract; a filesystem path gets its directory
  // created, a stale socket replaced and mode 0600). Only root's requests are answered.
  absl::Status Start(const std::string& path);
  // Stops accepting, waits for the requests in progress, removes a socket file; idempotent.
  void Stop();

  // One request line in, its answer out (the connection handling aside; for tests).
  std::string Answer(const std::string& request);

 private:
  void AcceptLoop();
  void Serve(UniqueFd connection);

  PolicyStep& step_;
  Histogram& add_latency_;
  Counter& add_failures_;
  const std::chrono::milliseconds pod_wait_;
  std::string path_;
  UniqueFd listener_;
  UniqueFd wake_;  // eventfd: Stop() interrupts the accept loop's poll
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  struct Connection {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::list<Connection> connections_;  // the accept loop's alone until Stop() has joined it
};

}  // namespace weir::agent
