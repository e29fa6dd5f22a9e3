#include "proxy/k8s/kube_list_watch.h"

#include "absl/strings/str_cat.h"
#include "proxy/k8s/kube_json.h"
#include "spdlog/spdlog.h"

namespace weir::k8s {
namespace {

absl::string_view ToAbsl(std::string_view text) { return absl::string_view(text.data(), text.size()); }

// The code reserved for 410: nothing else in this layer produces kOutOfRange.
constexpr absl::StatusCode kExpiredCode = absl::StatusCode::kOutOfRange;

std::optional<WatchEventType> ParseEventType(std::string_view type) {
  if (type == "ADDED") return WatchEventType::kAdded;
  if (type == "MODIFIED") return WatchEventType::kModified;
  if (type == "DELETED") return WatchEventType::kDeleted;
  if (type == "BOOKMARK") return WatchEventType::kBookmark;
  return std::nullopt;
}

absl::Status StatusForCode(int code, std::string message) {
  if (code == 410) return absl::Status(kExpiredCode, message);
  if (code == 401) return absl::UnauthenticatedError(message);
  if (code == 403) return absl::PermissionDeniedError(message);
  if (code == 404) return absl::NotFoundError(message);
  if (code == 429 || code >= 500) return absl::UnavailableError(message);
  return absl::UnknownError(message);
}

}  // namespace

std::string ResourceQuery::Describe() const {
  std::string text = path;
  if (!field_selector.empty()) absl::StrAppend(&text, " fieldSelector=", field_selector);
  if (!label_selector.empty()) absl::StrAppend(&text, " labelSelector=", label_selector);
  return text;
}

const rapidjson::Value& ListPage::items() const {
  static const rapidjson::Value kEmptyArray(rapidjson::kArrayType);
  const rapidjson::Value* items = JsonMember(document, "items");
  return items != nullptr && items->IsArray() ? *items : kEmptyArray;
}

bool IsResourceExpired(const absl::Status& status) { return status.code() == kExpiredCode; }

absl::Status HttpError(std::string_view what, int status, std::string_view body) {
  std::string detail;
  if (absl::StatusOr<rapidjson::Document> json = ParseJson(body); json.ok()) {
    if (std::optional<ApiStatus> api_status = ApiStatusOf(*json)) detail = api_status->message;
  }
  if (detail.empty()) detail = std::string(body.substr(0, 200));
  return StatusForCode(status,
                       absl::StrCat(ToAbsl(what), ": HTTP ", status, detail.empty() ? "" : ": ", detail));
}

absl::StatusOr<ListPage> ListPageOf(KubeClient& client, const ResourceQuery& query, int limit,
                                    const std::string& continue_token, RequestCanceller* canceller) {
  const std::string target = Target(query.path, {{"limit", absl::StrCat(limit)},
                                                 {"continue", continue_token},
                                                 {"fieldSelector", query.field_selector},
                                                 {"labelSelector", query.label_selector}});
  absl::StatusOr<HttpResponse> response = client.Get(target, canceller);
  if (!response.ok()) return response.status();
  const std::string what = absl::StrCat("list ", query.Describe());
  if (response->status != 200) return HttpError(what, response->status, response->body);
  absl::StatusOr<rapidjson::Document> document = ParseJson(response->body);
  if (!document.ok()) return absl::DataLossError(absl::StrCat(what, ": ", document.status().message()));
  ListPage page;
  page.document = std::move(*document);
  const rapidjson::Value* items = JsonMember(page.document, "items");
  // `items` is null in Go's encoding of an empty list.
  if (items != nullptr && !items->IsArray() && !items->IsNull()) {
    return absl::DataLossError(absl::StrCat(what, ": items is not a list"));
  }
  if (const rapidjson::Value* metadata = JsonMember(page.document, "metadata")) {
    page.resource_version = std::string(JsonString(*metadata, "resourceVersion"));
    page.continue_token = std::string(JsonString(*metadata, "continue"));
  }
  if (page.resource_version.empty())
    return absl::DataLossError(absl::StrCat(what, ": no metadata.resourceVersion"));
  return page;
}

bool LineSplitter::Feed(std::string_view data, const std::function<bool(std::string_view)>& on_line) {
  while (!data.empty()) {
    const size_t newline = data.find('\n');
    if (newline == std::string_view::npos) {
      if (partial_.size() + data.size() > max_line_bytes_) return false;
      partial_.append(data);
      return true;
    }
    std::string_view line = data.substr(0, newline);
    data.remove_prefix(newline + 1);
    // Most lines arrive whole: hand them over without copying.
    std::string joined;
    if (!partial_.empty()) {
      joined = std::move(partial_);
      partial_.clear();
      joined.append(line);
      line = joined;
    }
    if (line.size() > max_line_bytes_) return false;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (!on_line(line)) return false;
  }
  return true;
}

const char* WatchEventTypeName(WatchEventType type) {
  switch (type) {
    case WatchEventType::kAdded: return "ADDED";
    case WatchEventType::kModified: return "MODIFIED";
    case WatchEventType::kDeleted: return "DELETED";
    case WatchEventType::kBookmark: return "BOOKMARK";
  }
  return "?";
}

absl::StatusOr<WatchEnd> Watch(KubeClient& client, const ResourceQuery& query,
                               const std::string& resource_version, const WatchOptions& options,
                               const WatchHandler& handler, RequestCanceller* canceller) {
  const std::string what =
      absl::StrCat("watch ", query.Describe(), " from resourceVersion ", resource_version);
  const std::string target = Target(query.path, {{"watch", "true"},
                                                 {"resourceVersion", resource_version},
                                                 {"allowWatchBookmarks", "true"},
                                                 {"timeoutSeconds", absl::StrCat(options.timeout.count())},
                                                 {"fieldSelector", query.field_selector},
                                                 {"labelSelector", query.label_selector}});
  LineSplitter splitter(options.max_event_bytes);
  absl::Status failure;  // why the stream was abandoned, when it was
  bool handler_stopped = false;

  auto on_line = [&](std::string_view line) {
    absl::StatusOr<rapidjson::Document> event = ParseJson(line);
    if (!event.ok()) {
      failure = absl::DataLossError(absl::StrCat(what, ": undecodable event: ", event.status().message()));
      return false;
    }
    const std::string_view type_name = JsonString(*event, "type");
    const rapidjson::Value* object = JsonMember(*event, "object");
    if (object == nullptr || !object->IsObject()) {
      failure = absl::DataLossError(absl::StrCat(what, ": event without an object"));
      return false;
    }
    if (type_name == "ERROR") {
      std::optional<ApiStatus> status = ApiStatusOf(*object);
      const int code = status ? status->code : 500;
      failure =
          StatusForCode(code, absl::StrCat(what, ": ERROR event ", code, " ", status ? status->reason : "",
                                           ": ", status ? status->message : JsonText(*object)));
      return false;
    }
    std::optional<WatchEventType> type = ParseEventType(type_name);
    if (!type) {
      spdlog::warn("kube: {}: ignoring event of unknown type \"{}\"", what, type_name);
      return true;
    }
    if (!handler.on_event(*type, *object)) {
      handler_stopped = true;
      return false;
    }
    return true;
  };
  auto on_data = [&](std::string_view data) {
    const bool keep_going = splitter.Feed(data, on_line);
    if (!keep_going && failure.ok() && !handler_stopped) {
      failure =
          absl::DataLossError(absl::StrCat(what, ": event longer than ", options.max_event_bytes, " bytes"));
    }
    if (handler.on_burst_end) handler.on_burst_end();
    return keep_going;
  };

  absl::StatusOr<StreamEnd> end =
      client.GetStream(target, options.timeout + options.read_slack, on_data, canceller);
  if (!failure.ok()) return failure;
  if (handler_stopped) return WatchEnd::kStopped;
  if (!end.ok()) {
    if (splitter.pending() > 0) {
      return absl::Status(end.status().code(),
                          absl::StrCat(end.status().message(), "; discarded ", splitter.pending(),
                                       " bytes of an incomplete event"));
    }
    return end.status();
  }
  if (end->status != 200) return HttpError(what, end->status, end->error_body);
  if (splitter.pending() > 0) {
    return absl::UnavailableError(
        absl::StrCat(what, ": stream ended inside an event; discarded ", splitter.pending(), " bytes"));
  }
  return WatchEnd::kServerClosed;
}

}  // namespace weir::k8s
