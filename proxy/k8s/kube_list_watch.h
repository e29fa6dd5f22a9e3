// The two API calls informers are built on, type-agnostic (objects stay raw JSON): one page of a
// paginated list, and a watch stream of newline-delimited JSON events.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proxy/k8s/kube_client.h"
#include "rapidjson/document.h"

namespace weir::k8s {

// A collection: its path and optional selectors, e.g. {"/api/v1/pods", "spec.nodeName=node-1"}.
struct ResourceQuery {
  std::string path;
  std::string field_selector;
  std::string label_selector;

  std::string Describe() const;  // for logs
};

struct ListPage {
  rapidjson::Document document;  // the whole List object; items() points into it
  std::string resource_version;  // metadata.resourceVersion: where a watch continues from
  std::string continue_token;    // metadata.continue: "" on the last page

  const rapidjson::Value& items() const;  // an array, possibly empty
};

// The resourceVersion (or continue token) is older than the server's history: start over with a
// fresh list. Both an HTTP 410 and a watch ERROR event with code 410 map to this.
bool IsResourceExpired(const absl::Status& status);

// An error for a non-2xx response, with the API's Status message when the body carries one:
// 401 kUnauthenticated, 403 kPermissionDenied, 404 kNotFound, 410 expired (see above),
// 429 and 5xx kUnavailable, anything else kUnknown.
absl::Status HttpError(std::string_view what, int status, std::string_view body);

// GET one page of at most `limit` items, continuing `continue_token` ("" for the first page).
absl::StatusOr<ListPage> ListPageOf(KubeClient& client, const ResourceQuery& query, int limit,
                                    const std::string& continue_token, RequestCanceller* canceller = nullptr);

// Splits a byte stream into lines, whatever the chunk boundaries: an event can arrive in many
// reads, and one read can hold many events. Empty lines are skipped; a trailing '\r' is dropped.
class LineSplitter {
 public:
  explicit LineSplitter(size_t max_line_bytes) : max_line_bytes_(max_line_bytes) {}

  // Calls `on_line` for each line completed by `data`. False when `on_line` returned false or a
  // line grew beyond the limit (a stream that is not line-delimited JSON).
  bool Feed(std::string_view data, const std::function<bool(std::string_view)>& on_line);
  // Bytes of a line not yet completed.
  size_t pending() const { return partial_.size(); }

 private:
  size_t max_line_bytes_;
  std::string partial_;
};

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark };
const char* WatchEventTypeName(WatchEventType type);

struct WatchHandler {
  // Each complete event, in stream order; `object` is valid during the call only. False ends the
  // watch (WatchEnd::kStopped).
  std::function<bool(WatchEventType type, const rapidjson::Value& object)> on_event;
  // After the events that arrived in one read: a burst to act on together. May be empty.
  std::function<void()> on_burst_end;
};

enum class WatchEnd {
  kServerClosed,  // the server ended the stream (timeoutSeconds): continue from the last event
  kStopped,       // the handler asked to stop
};

struct WatchOptions {
  std::chrono::seconds timeout{300};          // timeoutSeconds: the server ends the watch then
  std::chrono::seconds read_slack{30};        // silence tolerated beyond `timeout` before giving up
  size_t max_event_bytes = 64 * 1024 * 1024;  // a longer line is a broken stream
};

// Watches `query` from `resource_version` (events after it), with bookmarks. Errors:
// IsResourceExpired() (relist); kUnavailable for transport failures and streams cut off (a partial
// last event is discarded, never delivered); kDataLoss for a line that is not a watch event;
// other watch ERROR events and HTTP errors as HttpError().
absl::StatusOr<WatchEnd> Watch(KubeClient& client, const ResourceQuery& query,
                               const std::string& resource_version, const WatchOptions& options,
                               const WatchHandler& handler, RequestCanceller* canceller = nullptr);

}  // namespace weir::k8s
