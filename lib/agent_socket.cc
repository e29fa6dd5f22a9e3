#include "lib/agent_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "lib/errno_status.h"
#include "lib/unique_fd.h"

namespace weir {
namespace {

using Clock = std::chrono::steady_clock;

// Waits for `events` on `fd` until `deadline`; false on timeout.
absl::Status WaitFor(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return absl::DeadlineExceededError("the agent did not answer in time");
    pollfd pfd{.fd = fd, .events = events, .revents = 0};
    const int ready = poll(&pfd, 1, static_cast<int>(left.count()));
    if (ready > 0) return absl::OkStatus();
    if (ready < 0 && errno != EINTR) return ErrnoStatus(errno, "poll");
  }
}

}  // namespace

absl::StatusOr<UnixAddress> AgentSocketAddress(const std::string& socket) {
  UnixAddress out;
  out.address.sun_family = AF_UNIX;
  if (socket.empty() || socket == "@") return absl::InvalidArgumentError("no agent socket named");
  if (socket.size() >= sizeof(out.address.sun_path))
    return absl::InvalidArgumentError(absl::StrCat("socket name too long: ", socket));
  if (socket[0] == '@') {
    // Abstract: a leading NUL, and the name's length says where it ends (no terminator).
    std::memcpy(out.address.sun_path + 1, socket.data() + 1, socket.size() - 1);
    out.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket.size());
  } else {
    std::memcpy(out.address.sun_path, socket.c_str(), socket.size() + 1);
    out.length = static_cast<socklen_t>(sizeof(out.address));
  }
  return out;
}

std::string FormatEndpointAdded(const EndpointAddedRequest& request) {
  return absl::StrCat("endpoint ", request.namespace_, " ", request.name, " ", request.add_started_us, " ",
                      absl::StrJoin(request.addresses, ",", [](std::string* out, const IpAddress& address) {
                        out->append(address.ToString());
                      }));
}

absl::StatusOr<EndpointAddedRequest> ParseEndpointAdded(const std::string& arguments) {
  std::vector<std::string> fields = absl::StrSplit(arguments, ' ', absl::SkipEmpty());
  if (fields.size() != 4) {
    return absl::InvalidArgumentError("expected: endpoint <namespace> <name> <start-us> <addresses>");
  }
  EndpointAddedRequest request{.namespace_ = fields[0], .name = fields[1]};
  if (!absl::SimpleAtoi(fields[2], &request.add_started_us))
    return absl::InvalidArgumentError(absl::StrCat("start \"", fields[2], "\" is not a number"));
  for (absl::string_view text : absl::StrSplit(fields[3], ',', absl::SkipEmpty())) {
    absl::StatusOr<IpAddress> address = IpAddress::Parse(std::string(text));
    if (!address.ok()) return address.status();
    request.addresses.push_back(*address);
  }
  if (request.addresses.empty()) return absl::InvalidArgumentError("no address");
  return request;
}

absl::StatusOr<std::string> AskAgent(const std::string& socket_path, const std::string& request,
                                     std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  absl::StatusOr<UnixAddress> address = AgentSocketAddress(socket_path);
  if (!address.ok()) return address.status();
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return ErrnoStatus(errno, "socket");
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&address->address), address->length) != 0) {
    if (errno == EINPROGRESS || errno == EAGAIN) {
      if (absl::Status s = WaitFor(fd.get(), POLLOUT, deadline); !s.ok()) return s;
    } else {
      return absl::UnavailableError(
          absl::StrCat("the agent is not listening on ", socket_path, ": ", std::strerror(errno)));
    }
  }
  std::string line = request + "\n";
  size_t sent = 0;
  while (sent < line.size()) {
    const ssize_t n = send(fd.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (absl::Status s = WaitFor(fd.get(), POLLOUT, deadline); !s.ok()) return s;
    } else {
      return ErrnoStatus(errno, absl::StrCat("send to ", socket_path));
    }
  }
  std::string answer;
  char buffer[16384];
  for (;;) {
    const ssize_t n = recv(fd.get(), buffer, sizeof(buffer), 0);
    if (n > 0) {
      answer.append(buffer, static_cast<size_t>(n));
    } else if (n == 0) {
      return answer;
    } else if (errno == EAGAIN || errno == EINTR) {
      if (absl::Status s = WaitFor(fd.get(), POLLIN, deadline); !s.ok()) return s;
    } else {
      return ErrnoStatus(errno, absl::StrCat("recv from ", socket_path));
    }
  }
}

}  // namespace weir
