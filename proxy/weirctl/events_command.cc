#include "proxy/weirctl/events_command.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bpf/abi/events.h"
#include "lib/errno_status.h"
#include "lib/unique_fd.h"
#include "proxy/sync/conntrack_gc.h"
#include "proxy/weirctl/event_view.h"
#include "proxy/weirctl/policy_directory.h"
#include "proxy/weirctl/service_directory.h"

namespace weir::weirctl {
namespace {

struct Stream {
  const CommandOptions* options;
  ServiceDirectory names;
  // Records stamped before this (bpf_ktime_get_ns and CLOCK_MONOTONIC are one clock) were in the
  // ring before weirctl started: on a node where nobody reads, the ring is full of records that
  // may be hours old.
  uint64_t start_ns = 0;
  int64_t remaining = -1;        // < 0: unbounded
  std::set<uint32_t> looked_up;  // unnamed ids the names were read again for
  // Policy records' endpoints, deciding policies and peers, asked of the agent at the first policy
  // record and again (at most once a second) when a record names something it did not know.
  PolicyDirectory policy_names;
  std::optional<std::chrono::steady_clock::time_point> policy_names_asked;
  bool policy_names_warned = false;
};

void NamePolicyRecord(Stream& stream, EventView& event) {
  if (!event.policy) return;
  const auto now = std::chrono::steady_clock::now();
  if (!stream.policy_names.Knows(event) &&
      (!stream.policy_names_asked || now - *stream.policy_names_asked >= std::chrono::seconds(1))) {
    stream.policy_names_asked = now;
    absl::StatusOr<PolicyDirectory> asked = PolicyDirectory::Ask(stream.options->agent_socket);
    if (asked.ok()) {
      stream.policy_names = std::move(*asked);
    } else if (!stream.policy_names_warned) {
      stream.policy_names_warned = true;
      std::fprintf(stderr, "weirctl: policy records name no pods: %s (--agent_socket)\n",
                   std::string(asked.status().message()).c_str());
    }
  }
  stream.policy_names.Name(event);
}

int HandleRecord(void* context, void* data, size_t size) {
  auto* stream = static_cast<Stream*>(context);
  std::optional<EventView> event = DecodeEvent(data, size);
  if (!event) return 0;
  if (!stream->options->replay && event->timestamp_ns < stream->start_ns) return 0;
  if (!EventMatches(*event, stream->options->filter, stream->names)) return 0;
  // An id the agent named after weirctl started: read the names again, once per unknown id.
  if (event->service_id != 0 && stream->names.Find(event->service_id) == nullptr &&
      stream->looked_up.insert(event->service_id).second) {
    stream->names = ServiceDirectory::Load(stream->options->layout);
  }
  NamePolicyRecord(*stream, *event);
  const std::string text = stream->options->format == OutputFormat::kJson ? EventJson(*event, stream->names)
                                                                          : EventLine(*event, stream->names);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  if (stream->remaining > 0) --stream->remaining;
  // Only a negative return stops ring_buffer__consume; the records after this one stay in the ring.
  return stream->remaining == 0 ? -ECANCELED : 0;
}

struct RingBufferDeleter {
  void operator()(ring_buffer* ring) const { ring_buffer__free(ring); }
};

}  // namespace

absl::Status RunEvents(const CommandOptions& options) {
  const std::string path = options.layout.map(WEIR_EVENTS_MAP_NAME);
  UniqueFd fd(bpf_obj_get(path.c_str()));
  if (!fd.valid()) return ErrnoStatus(errno, absl::StrCat("open ", path));
  Stream stream{.options = &options,
                .names = ServiceDirectory::Load(options.layout),
                .start_ns = sync::MonotonicNowNs(),
                .remaining = options.count > 0 ? options.count : -1};
  std::unique_ptr<ring_buffer, RingBufferDeleter> ring(
      ring_buffer__new(fd.get(), HandleRecord, &stream, nullptr));
  if (!ring) return ErrnoStatus(errno, "open the events ring buffer");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(options.timeout_s);
  while (stream.remaining != 0 && (options.timeout_s <= 0 || std::chrono::steady_clock::now() < deadline)) {
    // The datapath does not wake readers (see bpf/lib/events.h): drain on a timer instead.
    const int consumed = ring_buffer__consume(ring.get());
    if (stream.remaining == 0) break;
    if (consumed < 0 && consumed != -EINTR) return ErrnoStatus(-consumed, "read the events ring buffer");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return absl::OkStatus();
}

}  // namespace weir::weirctl
