#include "proxy/k8s/kube_reflector.h"

#include <pthread.h>

#include "absl/strings/str_cat.h"
#include "proxy/k8s/kube_json.h"
#include "spdlog/spdlog.h"

namespace weir::k8s {

Reflector::Reflector(std::string name, std::shared_ptr<KubeClient> client, ResourceQuery query,
                     ReflectorSink& sink, ReflectorOptions options)
    : name_(std::move(name)),
      client_(std::move(client)),
      query_(std::move(query)),
      sink_(sink),
      options_(std::move(options)),
      random_(options_.random ? options_.random : DefaultRandom()),
      sleeper_(options_.sleeper ? options_.sleeper : std::make_shared<RealSleeper>()),
      backoff_(options_.backoff, random_),
      relist_backoff_(options_.backoff, random_) {}

void Reflector::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] {
    // Visible in top -H and gdb; the kernel keeps 15 characters.
    pthread_setname_np(pthread_self(), absl::StrCat("kube-", name_).substr(0, 15).c_str());
    Run();
    std::lock_guard<std::mutex> lock(done_mu_);
    done_ = true;
    done_cv_.notify_all();
  });
}

void Reflector::Stop() {
  stopping_ = true;
  sleeper_->Interrupt();
  canceller_.Cancel();
  if (!thread_.joinable() || std::this_thread::get_id() == thread_.get_id()) return;
  // A request that was still connecting when Cancel() ran is only reachable once connected: keep
  // cancelling until the thread is out.
  std::unique_lock<std::mutex> lock(done_mu_);
  while (!done_cv_.wait_for(lock, std::chrono::milliseconds(50), [this] { return done_; })) {
    lock.unlock();
    canceller_.Cancel();
    lock.lock();
  }
  lock.unlock();
  thread_.join();
}

ReflectorStats Reflector::stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

void Reflector::SetResourceVersion(std::string_view resource_version) {
  if (resource_version.empty()) return;
  resource_version_ = std::string(resource_version);
  std::lock_guard<std::mutex> lock(stats_mu_);
  stats_.resource_version = resource_version_;
}

void Reflector::Run() {
  bool need_list = true;
  bool just_listed = false;
  while (!stopping()) {
    if (need_list) {
      absl::Status listed = ListAll();
      if (stopping()) break;
      if (!listed.ok()) {
        {
          std::lock_guard<std::mutex> lock(stats_mu_);
          ++stats_.list_failures;
        }
        const std::chrono::milliseconds delay = backoff_.Next();
        spdlog::warn("kube: {}: {}; retrying in {} ms", name_, listed.ToString(), delay.count());
        sleeper_->SleepFor(delay);
        continue;
      }
      need_list = false;
      just_listed = true;
      backoff_.Reset();
    }

    const auto started = std::chrono::steady_clock::now();
    bool delivered = false;
    absl::StatusOr<WatchEnd> watched = WatchOnce(delivered);
    const bool expired_at_once = just_listed && !delivered;
    just_listed = false;
    if (delivered) relist_backoff_.Reset();
    if (stopping()) break;
    if (watched.ok()) {
      const bool healthy =
          delivered || std::chrono::steady_clock::now() - started >= options_.min_healthy_watch;
      if (healthy) continue;  // the server's timeout ended it: continue where it left off
      watched = absl::UnavailableError("watch ended at once without events");
    }
    if (IsResourceExpired(watched.status())) {
      // Normal after a long disconnection: the server compacted the history we would resume from.
      spdlog::info("kube: {}: resourceVersion {} expired ({}); listing again", name_, resource_version_,
                   std::string(watched.status().message()));
      {
        std::lock_guard<std::mutex> lock(stats_mu_);
        ++stats_.expired;
      }
      need_list = true;
      // A fresh list's version already expired (a list slower than the server's history window):
      // relisting at once could repeat that in a loop of full lists, so those relists back off.
      if (expired_at_once) sleeper_->SleepFor(relist_backoff_.Next());
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      ++stats_.watch_failures;
    }
    const std::chrono::milliseconds delay = backoff_.Next();
    spdlog::warn("kube: {}: {}; resuming from resourceVersion {} in {} ms", name_,
                 watched.status().ToString(), resource_version_, delay.count());
    sleeper_->SleepFor(delay);
  }
}

absl::Status Reflector::ListAll() {
  sink_.BeginList();
  std::string continue_token;
  std::string resource_version;
  size_t items = 0;
  do {
    absl::StatusOr<ListPage> page =
        ListPageOf(*client_, query_, options_.page_size, continue_token, &canceller_);
    if (!page.ok() || stopping()) {
      sink_.AbortList();
      // An expired continue token (the list took longer than the server keeps its snapshot) is
      // retried like any failure: from the first page.
      return page.ok() ? absl::CancelledError("stopping") : page.status();
    }
    for (const rapidjson::Value& item : page->items().GetArray()) sink_.ListItem(item);
    items += page->items().Size();
    // Every page is served from the first page's snapshot, hence carries its resourceVersion.
    resource_version = page->resource_version;
    continue_token = page->continue_token;
  } while (!continue_token.empty());
  sink_.EndList();
  SetResourceVersion(resource_version);
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.lists;
  }
  spdlog::debug("kube: {}: listed {} objects at resourceVersion {}", name_, items, resource_version);
  return absl::OkStatus();
}

absl::StatusOr<WatchEnd> Reflector::WatchOnce(bool& delivered) {
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.watches;
  }
  WatchOptions watch_options;
  const auto spread =
      static_cast<int64_t>(random_() * static_cast<double>(options_.min_watch_timeout.count()));
  watch_options.timeout = options_.min_watch_timeout + std::chrono::seconds(spread);
  watch_options.read_slack = options_.watch_read_slack;

  WatchHandler handler;
  handler.on_event = [&](WatchEventType type, const rapidjson::Value& object) {
    if (!delivered) {
      delivered = true;
      backoff_.Reset();  // the server is serving us again
    }
    if (type != WatchEventType::kBookmark) sink_.Event(type, object);
    // Only now is the event applied: a reconnect resumes after it, never before or inside it.
    if (const rapidjson::Value* metadata = JsonMember(object, "metadata")) {
      SetResourceVersion(JsonString(*metadata, "resourceVersion"));
    }
    return !stopping();
  };
  handler.on_burst_end = [this] { sink_.EndBurst(); };
  return Watch(*client_, query_, resource_version_, watch_options, handler, &canceller_);
}

}  // namespace weir::k8s
