#include "proxy/agent/policy_socket.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "lib/agent_socket.h"
#include "lib/errno_status.h"
#include "spdlog/spdlog.h"

namespace weir::agent {
namespace {

constexpr auto kReadTimeout = std::chrono::seconds(2);
constexpr size_t kMaxRequest = 4096;

// Bounds in seconds for how long a pod waits from CNI ADD's start to its policy: 1 ms to 10 s.
std::vector<double> AddLatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

// The request line, or "" when none came in time.
std::string ReadLine(int fd) {
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + kReadTimeout;
  char buffer[512];
  while (line.find('\n') == std::string::npos && line.size() < kMaxRequest) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd pfd{.fd = fd, .events = POLLIN, .revents = 0};
    if (left.count() <= 0 || poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return "";
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    line.append(buffer, static_cast<size_t>(n));
  }
  const size_t end = line.find('\n');
  return end == std::string::npos ? line : line.substr(0, end);
}

void SendAll(int fd, const std::string& text) {
  size_t sent = 0;
  while (sent < text.size()) {
    const ssize_t n = send(fd, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

}  // namespace

PolicySocket::PolicySocket(PolicyStep& step, Metrics& metrics, std::chrono::milliseconds pod_wait)
    : step_(step),
      add_latency_(metrics.GetHistogram("weir_policy_cni_add_seconds",
                                        "From the start of a pod's CNI ADD to its policy written (the pod's "
                                        "traffic is denied until then).",
                                        AddLatencyBuckets())),
      add_failures_(metrics.GetCounter("weir_policy_cni_add_failures_total",
                                       "CNI ADD requests the agent could not answer with a written policy "
                                       "(the pod stays denied until the agent catches up).")),
      pod_wait_(pod_wait) {}

std::string PolicySocket::Answer(const std::string& request) {
  if (absl::StartsWith(request, "endpoint ")) {
    absl::StatusOr<EndpointAddedRequest> parsed =
        ParseEndpointAdded(std::string(absl::StripPrefix(request, "endpoint ")));
    if (!parsed.ok()) return absl::StrCat("error ", parsed.status().message(), "\n");
    const policy::ObjectRef ref{parsed->namespace_, parsed->name};
    absl::StatusOr<uint32_t> id = step_.EndpointAdded(ref, parsed->addresses, pod_wait_);
    const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    const double since_add = static_cast<double>(now_us - parsed->add_started_us) / 1e6;
    if (!id.ok()) {
      add_failures_.Increment();
      spdlog::warn("CNI ADD of {}: no policy written after {:.3f} s: {} (the pod stays denied until it is)",
                   ref.ToString(), since_add, id.status().ToString());
      return absl::StrCat("error ", id.status().message(), "\n");
    }
    if (since_add >= 0) add_latency_.Observe(since_add);
    spdlog::info("CNI ADD of {}: policy {} written {:.1f} ms after ADD began", ref.ToString(), *id,
                 since_add * 1e3);
    return absl::StrCat("ok ", *id, "\n");
  }
  if (request == "policy" || absl::StartsWith(request, "policy ")) {
    return step_.DescribeJson(
        std::string(absl::StripLeadingAsciiWhitespace(absl::StripPrefix(request, "policy"))));
  }
  if (request == "directory") return step_.DirectoryJson();
  return "error unknown request\n";
}

absl::Status PolicySocket::Start(const std::string& path) {
  path_ = path;
  absl::StatusOr<UnixAddress> address = AgentSocketAddress(path);
  if (!address.ok()) return address.status();
  const bool in_filesystem = path[0] != '@';
  if (in_filesystem) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    if (ec) return absl::InternalError(absl::StrCat("create the directory of ", path, ": ", ec.message()));
    unlink(path.c_str());  // a previous agent's
  }
  listener_.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener_.valid()) return ErrnoStatus(errno, "socket");
  if (bind(listener_.get(), reinterpret_cast<const sockaddr*>(&address->address), address->length) != 0)
    return ErrnoStatus(errno, absl::StrCat("bind ", path));
  // Root only (Serve checks the peer too, as an abstract socket has no mode). Connecting needs write
  // permission, which the usual umask already withholds from others before the chmod.
  if (in_filesystem && chmod(path.c_str(), 0600) != 0)
    return ErrnoStatus(errno, absl::StrCat("chmod ", path));
  if (listen(listener_.get(), 64) != 0) return ErrnoStatus(errno, absl::StrCat("listen ", path));
  wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_.valid()) return ErrnoStatus(errno, "eventfd");
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return absl::OkStatus();
}

void PolicySocket::AcceptLoop() {
  while (!stopping_) {
    pollfd fds[2] = {{.fd = listener_.get(), .events = POLLIN, .revents = 0},
                     {.fd = wake_.get(), .events = POLLIN, .revents = 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("policy socket: poll: {}", std::strerror(errno));
      return;
    }
    if (stopping_) return;
    if (!(fds[0].revents & POLLIN)) continue;
    UniqueFd connection(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!connection.valid()) continue;
    // Joins the threads done by now, so that the list holds only the requests in flight.
    for (auto it = connections_.begin(); it != connections_.end();) {
      if (it->done->load()) {
        it->thread.join();
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    connections_.push_back({std::thread([this, done, fd = connection.release()] {
                              Serve(UniqueFd(fd));
                              done->store(true);
                            }),
                            done});
  }
}

void PolicySocket::Serve(UniqueFd connection) {
  ucred peer{};
  socklen_t length = sizeof(peer);
  if (getsockopt(connection.get(), SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0 || peer.uid != 0) {
    SendAll(connection.get(), "error only root may ask\n");
    return;
  }
  const std::string request = ReadLine(connection.get());
  if (!request.empty()) SendAll(connection.get(), Answer(request));
}

void PolicySocket::Stop() {
  if (!acceptor_.joinable()) return;
  stopping_ = true;
  const uint64_t one = 1;
  if (write(wake_.get(), &one, sizeof(one)) < 0)
    spdlog::warn("policy socket: wake: {}", std::strerror(errno));
  acceptor_.join();
  for (Connection& connection : connections_) connection.thread.join();
  connections_.clear();
  listener_.reset();
  if (!path_.empty() && path_[0] != '@') unlink(path_.c_str());
}

}  // namespace weir::agent
