// The list-then-watch loop of one collection, on a thread of its own, type-agnostic: it lists
// (page by page), watches from the list's resourceVersion, and on any interruption resumes the
// watch from the resourceVersion of the last event it delivered in full, so nothing is lost and
// nothing is delivered twice. When the server no longer has that history (410 Gone / Expired) it
// lists again and the sink reconciles. Failures are retried with jittered exponential backoff.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "proxy/k8s/kube_backoff.h"
#include "proxy/k8s/kube_client.h"
#include "proxy/k8s/kube_list_watch.h"
#include "rapidjson/document.h"

namespace weir::k8s {

// Receives what the reflector reads, in order, on the reflector's thread. Objects are valid during
// the call only.
class ReflectorSink {
 public:
  virtual ~ReflectorSink() = default;
  // A full list: BeginList(), every item of every page through ListItem(), then EndList() once all
  // pages are in, or AbortList() when a page failed (forget the items since BeginList()).
  virtual void BeginList() = 0;
  virtual void ListItem(const rapidjson::Value& object) = 0;
  virtual void EndList() = 0;
  virtual void AbortList() = 0;
  // One ADDED, MODIFIED or DELETED event (bookmarks only move the resourceVersion).
  virtual void Event(WatchEventType type, const rapidjson::Value& object) = 0;
  // Events that arrived together are over: a consistent point to publish changes at.
  virtual void EndBurst() = 0;
};

struct ReflectorOptions {
  int page_size = 500;
  // Each watch asks the server to end it after a random time in [min, 2 * min): watches of many
  // agents then do not all reconnect at once.
  std::chrono::seconds min_watch_timeout{300};
  std::chrono::seconds watch_read_slack{30};
  // A watch that the server ends sooner than this without sending anything counts as a failure,
  // so a misbehaving server gets backoff rather than a tight reconnect loop.
  std::chrono::milliseconds min_healthy_watch{1000};
  Backoff::Options backoff;
  // [0, 1), called on the reflector's thread (must be thread-safe if shared); empty: a PRNG of the
  // reflector's own, seeded from the clock.
  std::function<double()> random;
  // One per reflector (Stop() interrupts it for good); empty: a RealSleeper.
  std::shared_ptr<Sleeper> sleeper;
};

struct ReflectorStats {
  uint64_t lists = 0;  // complete lists
  uint64_t list_failures = 0;
  uint64_t watches = 0;  // watch requests made
  uint64_t watch_failures = 0;
  uint64_t expired = 0;          // 410s that forced a relist
  std::string resource_version;  // of the last list or event applied
};

class Reflector {
 public:
  // `name` is for logs and the thread name. `sink` must outlive the reflector.
  Reflector(std::string name, std::shared_ptr<KubeClient> client, ResourceQuery query, ReflectorSink& sink,
            ReflectorOptions options = {});
  ~Reflector() { Stop(); }
  Reflector(const Reflector&) = delete;
  Reflector& operator=(const Reflector&) = delete;

  // Starts the thread; at most once.
  void Start();
  // Interrupts requests and backoff sleeps and joins the thread; idempotent. From the sink's own
  // callbacks (the reflector's thread) it only requests the stop; the join happens later.
  void Stop();

  ReflectorStats stats() const;
  const std::string& name() const { return name_; }

 private:
  void Run();
  // One full list, delivered to the sink; on success resource_version_ is the list's.
  absl::Status ListAll();
  // One watch from resource_version_; `delivered` tells whether any event or bookmark came.
  absl::StatusOr<WatchEnd> WatchOnce(bool& delivered);
  bool stopping() const { return stopping_.load(); }
  void SetResourceVersion(std::string_view resource_version);

  const std::string name_;
  const std::shared_ptr<KubeClient> client_;
  const ResourceQuery query_;
  ReflectorSink& sink_;
  const ReflectorOptions options_;
  std::function<double()> random_;
  std::shared_ptr<Sleeper> sleeper_;
  Backoff backoff_;         // failed requests; reset by any success
  Backoff relist_backoff_;  // relists forced right after a list; reset once a watch delivers
  RequestCanceller canceller_;

  std::string resource_version_;  // reflector thread only; copied into stats_
  mutable std::mutex stats_mu_;
  ReflectorStats stats_;

  std::atomic<bool> stopping_{false};
  std::mutex done_mu_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace weir::k8s
