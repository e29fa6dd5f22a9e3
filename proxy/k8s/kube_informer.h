// A typed cache of one collection kept current by a Reflector, keyed by "namespace/name" (or
// "name"). Consumers read snapshots (List(), Get()) from any thread and hear about changes through
// handlers called on the informer's thread.
//
// Consistency: relists are reconciled against the cache, so handlers see one sequence of
// adds, updates and deletes whatever happened to the connection (an object deleted while the watch
// was down is a delete at the relist). Events repeated by the server (same resourceVersion) are
// no-ops. Objects that fail to decode are logged and skipped and never crash or evict anything: an
// object that was good and turns bad stays cached at its last good version.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "proxy/k8s/kube_json.h"
#include "proxy/k8s/kube_reflector.h"
#include "spdlog/spdlog.h"

namespace weir::k8s {

template <typename T>
struct ObjectChange {
  enum class Kind { kAdded, kUpdated, kDeleted };
  Kind kind;
  std::string key;
  std::shared_ptr<const T> before;  // kUpdated, kDeleted
  std::shared_ptr<const T> after;   // kAdded, kUpdated
};

template <typename T>
class Informer final : private ReflectorSink {
 public:
  using Decoder = std::function<absl::StatusOr<T>(const rapidjson::Value&)>;
  struct Handlers {
    // Each change, in order, once the burst (or relist) holding it is in the cache.
    std::function<void(const ObjectChange<T>&)> on_object;
    // After each burst or relist that changed the cache, and after the first complete list even
    // when it was empty (so a consumer waiting for HasSynced() hears of it).
    std::function<void()> on_change;
  };

  // Handlers run on the informer's thread: keep them short (e.g. wake the agent's loop) and do not
  // call Stop() from them.
  Informer(std::string name, std::shared_ptr<KubeClient> client, ResourceQuery query, Decoder decode,
           Handlers handlers = {}, ReflectorOptions options = {})
      : name_(name),
        decode_(std::move(decode)),
        handlers_(std::move(handlers)),
        reflector_(std::move(name), std::move(client), std::move(query), *this, std::move(options)) {}
  ~Informer() override { Stop(); }
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  void Start() { reflector_.Start(); }
  // Joins the informer's thread; idempotent. The cache stays readable.
  void Stop() { reflector_.Stop(); }

  // True once a first complete list is in the cache; stays true across relists.
  bool HasSynced() const { return synced_.load(); }

  // Every decoded object, ordered by key.
  std::vector<T> List() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<T> objects;
    objects.reserve(cache_.size());
    for (const auto& [key, entry] : cache_) {
      if (entry.object != nullptr) objects.push_back(*entry.object);
    }
    return objects;
  }
  std::shared_ptr<const T> Get(const std::string& key) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    return it == cache_.end() ? nullptr : it->second.object;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return cache_.size() - undecodable_;
  }
  // Objects the API has that never decoded (logged when seen). Kept as a count, not counted: the
  // agent reads it on every sync.
  size_t undecodable() const {
    std::lock_guard<std::mutex> lock(mu_);
    return undecodable_;
  }
  ReflectorStats stats() const { return reflector_.stats(); }
  const std::string& name() const { return name_; }

 private:
  struct Entry {
    std::string resource_version;     // the last version seen, decodable or not
    std::shared_ptr<const T> object;  // the last version that decoded; null if none did
    std::string object_version;       // the resourceVersion `object` was decoded from
  };

  // The entry for `object` at `resource_version` given the cached one: unchanged when the version
  // was already seen, else the decoded object, else (logged) the previous good one.
  Entry Refresh(const std::string& key, const std::string& resource_version, const rapidjson::Value& object,
                const Entry* cached) {
    if (cached != nullptr && !resource_version.empty() && cached->resource_version == resource_version)
      return *cached;
    absl::StatusOr<T> decoded = decode_(object);
    if (decoded.ok())
      return {resource_version, std::make_shared<const T>(std::move(*decoded)), resource_version};
    if (cached != nullptr && cached->object != nullptr) {
      spdlog::warn("kube: {}: keeping the last good version of {} (resourceVersion {}): {}", name_, key,
                   cached->object_version, std::string(decoded.status().message()));
    } else {
      spdlog::warn("kube: {}: skipping {}: {}", name_, key, std::string(decoded.status().message()));
    }
    if (cached == nullptr) return {resource_version, nullptr, ""};
    return {resource_version, cached->object, cached->object_version};
  }

  void Record(typename ObjectChange<T>::Kind kind, const std::string& key, std::shared_ptr<const T> before,
              std::shared_ptr<const T> after) {
    changes_.push_back({kind, key, std::move(before), std::move(after)});
  }

  // The change between two versions of an entry, if any.
  void Compare(const std::string& key, const std::shared_ptr<const T>& before,
               const std::shared_ptr<const T>& after) {
    if (before == after) return;
    if (before == nullptr) {
      Record(ObjectChange<T>::Kind::kAdded, key, nullptr, after);
    } else if (after == nullptr) {
      Record(ObjectChange<T>::Kind::kDeleted, key, before, nullptr);
    } else {
      Record(ObjectChange<T>::Kind::kUpdated, key, before, after);
    }
  }

  void Publish(bool always) {
    if (changes_.empty() && !always) return;
    std::vector<ObjectChange<T>> changes = std::move(changes_);
    changes_.clear();
    if (handlers_.on_object) {
      for (const ObjectChange<T>& change : changes) handlers_.on_object(change);
    }
    if (handlers_.on_change) handlers_.on_change();
  }

  // ---- ReflectorSink, on the reflector's thread: the only writer of cache_, so it reads it
  // without the lock and takes the lock only to write. ----

  void BeginList() override { listing_.clear(); }

  void ListItem(const rapidjson::Value& object) override {
    absl::StatusOr<ObjectIdentity> identity = IdentityOf(object);
    if (!identity.ok()) {
      spdlog::warn("kube: {}: skipping a listed object: {}", name_, std::string(identity.status().message()));
      return;
    }
    auto cached = cache_.find(identity->key);
    listing_[identity->key] = Refresh(identity->key, identity->resource_version, object,
                                      cached == cache_.end() ? nullptr : &cached->second);
  }

  void AbortList() override { listing_.clear(); }

  void EndList() override {
    for (const auto& [key, entry] : cache_) {
      if (!listing_.contains(key)) Compare(key, entry.object, nullptr);
    }
    for (const auto& [key, entry] : listing_) {
      auto cached = cache_.find(key);
      Compare(key, cached == cache_.end() ? nullptr : cached->second.object, entry.object);
    }
    size_t undecodable = 0;
    for (const auto& [key, entry] : listing_) undecodable += entry.object == nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cache_.swap(listing_);
      undecodable_ = undecodable;
    }
    listing_.clear();
    const bool first = !synced_.exchange(true);
    Publish(/*always=*/first);
  }

  void Event(WatchEventType type, const rapidjson::Value& object) override {
    absl::StatusOr<ObjectIdentity> identity = IdentityOf(object);
    if (!identity.ok()) {
      spdlog::warn("kube: {}: skipping a {} event: {}", name_, WatchEventTypeName(type),
                   std::string(identity.status().message()));
      return;
    }
    auto cached = cache_.find(identity->key);
    if (type == WatchEventType::kDeleted) {
      if (cached == cache_.end()) return;
      std::shared_ptr<const T> before = cached->second.object;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (before == nullptr) --undecodable_;
        cache_.erase(cached);
      }
      Compare(identity->key, before, nullptr);
      return;
    }
    const Entry* previous = cached == cache_.end() ? nullptr : &cached->second;
    Entry entry = Refresh(identity->key, identity->resource_version, object, previous);
    std::shared_ptr<const T> before = previous != nullptr ? previous->object : nullptr;
    std::shared_ptr<const T> after = entry.object;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (previous != nullptr && before == nullptr) --undecodable_;
      if (after == nullptr) ++undecodable_;
      cache_[identity->key] = std::move(entry);
    }
    Compare(identity->key, before, after);
  }

  void EndBurst() override { Publish(/*always=*/false); }

  const std::string name_;
  const Decoder decode_;
  const Handlers handlers_;

  mutable std::mutex mu_;
  std::map<std::string, Entry> cache_;  // ordered: List() is deterministic
  size_t undecodable_ = 0;              // entries of cache_ without an object
  std::atomic<bool> synced_{false};

  // Reflector thread only.
  std::map<std::string, Entry> listing_;  // the relist being read
  std::vector<ObjectChange<T>> changes_;  // not yet published

  Reflector reflector_;  // last: its thread uses everything above
};

}  // namespace weir::k8s
