// The traffic of the service benchmark (bench/service_bench.py): servers that run in a backend pod and
// load generators that run in a client namespace. Python would be the bottleneck at the rates a
// Service dataplane reaches, so each side is a small single-threaded C++ loop, pinned by the driver.
//
//   weir_service_load tcp-server PORT
//       accept, read the request, answer, close (the server sends its FIN first); "ready" once listening
//   weir_service_load udp-sink PORT
//       drains every datagram to PORT (the driver counts arrivals in the namespace's UDP MIB)
//   weir_service_load tcp-load ADDRESS PORT SECONDS CONCURRENCY
//       CONCURRENCY connections in flight, each one request on a new TCP connection: connect, send,
//       read the answer to its end, then close with a reset (SO_LINGER 0), so that no TIME_WAIT
//       builds up anywhere and source ports come back at once; prints JSON
//   weir_service_load udp-flood ADDRESS PORT SECONDS FLOWS SIZE
//       SIZE-byte datagrams as fast as sendmmsg takes them, round robin over FLOWS connected sockets
//       (one source port each); prints JSON
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "lib/unique_fd.h"

namespace {

using Clock = std::chrono::steady_clock;
using weir::UniqueFd;

constexpr std::string_view kRequest = "GET / HTTP/1.0\r\n\r\n";
constexpr std::string_view kResponse = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";

int Fail(const char* what) {
  std::fprintf(stderr, "weir_service_load: %s: %s\n", what, std::strerror(errno));
  return 1;
}

bool ParseAddress(const char* address, const char* port, sockaddr_in* out) {
  uint32_t number = 0;
  *out = {};
  out->sin_family = AF_INET;
  if (!absl::SimpleAtoi(port, &number) || number == 0 || number > 65535) return false;
  out->sin_port = htons(static_cast<uint16_t>(number));
  return inet_pton(AF_INET, address, &out->sin_addr) == 1;
}

UniqueFd Listen(int type, uint16_t port) {
  UniqueFd fd(socket(AF_INET, type, 0));
  if (!fd.valid()) return fd;
  const int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) return UniqueFd();
  return fd;
}

int TcpServer(uint16_t port) {
  UniqueFd listener = Listen(SOCK_STREAM, port);
  if (!listener.valid()) return Fail("bind");
  // accept() then returns only connections whose request has arrived: the loop never waits on one.
  const int one = 1;
  setsockopt(listener.get(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof(one));
  if (listen(listener.get(), 4096) != 0) return Fail("listen");
  std::printf("ready\n");
  std::fflush(stdout);
  char buffer[512];
  for (;;) {
    UniqueFd connection(accept(listener.get(), nullptr, nullptr));
    if (!connection.valid()) continue;  // a reset before accept, or EINTR
    if (read(connection.get(), buffer, sizeof(buffer)) > 0) {
      (void)!write(connection.get(), kResponse.data(), kResponse.size());
    }
  }
}

int UdpSink(uint16_t port) {
  UniqueFd fd = Listen(SOCK_DGRAM, port);
  if (!fd.valid()) return Fail("bind");
  const int buffer_bytes = 4 << 20;
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof(buffer_bytes));
  std::printf("ready\n");
  std::fflush(stdout);
  constexpr int kBatch = 64;
  static char buffers[kBatch][2048];
  iovec iov[kBatch];
  mmsghdr messages[kBatch];
  for (;;) {
    for (int i = 0; i < kBatch; ++i) {
      iov[i] = {buffers[i], sizeof(buffers[i])};
      messages[i] = {};
      messages[i].msg_hdr.msg_iov = &iov[i];
      messages[i].msg_hdr.msg_iovlen = 1;
    }
    recvmmsg(fd.get(), messages, kBatch, MSG_WAITFORONE, nullptr);
  }
}

Clock::duration Seconds(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

double Percentile(std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t k = std::min(sorted.size() - 1, static_cast<size_t>(p / 100 * (sorted.size() - 1) + 0.5));
  return sorted[k];
}

// One connection slot of the TCP load.
struct Slot {
  UniqueFd fd;
  Clock::time_point started;
  bool connected = false;
  std::string answer;
};

int TcpLoad(const sockaddr_in& target, double seconds, int concurrency) {
  UniqueFd epoll(epoll_create1(0));
  if (!epoll.valid()) return Fail("epoll_create1");
  std::vector<Slot> slots(concurrency);
  uint64_t done = 0, connect_errors = 0, read_errors = 0, bad_answers = 0;
  std::vector<uint32_t> latency_us;
  latency_us.reserve(1 << 20);
  const linger reset_on_close{1, 0};

  auto start = [&](size_t i) -> bool {
    Slot& slot = slots[i];
    slot.fd = UniqueFd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    if (!slot.fd.valid()) return false;
    setsockopt(slot.fd.get(), SOL_SOCKET, SO_LINGER, &reset_on_close, sizeof(reset_on_close));
    slot.connected = false;
    slot.answer.clear();
    slot.started = Clock::now();
    if (connect(slot.fd.get(), reinterpret_cast<const sockaddr*>(&target), sizeof(target)) != 0 &&
        errno != EINPROGRESS) {
      ++connect_errors;
      slot.fd.reset();
      return true;  // the slot is started again on the next round of the loop
    }
    epoll_event event{.events = EPOLLOUT, .data = {.u64 = i}};
    return epoll_ctl(epoll.get(), EPOLL_CTL_ADD, slot.fd.get(), &event) == 0;
  };

  const Clock::time_point begin = Clock::now();
  const Clock::time_point deadline = begin + Seconds(seconds);
  for (size_t i = 0; i < slots.size(); ++i) {
    if (!start(i)) return Fail("socket");
  }
  std::vector<epoll_event> events(concurrency);
  char buffer[512];
  while (Clock::now() < deadline) {
    for (size_t i = 0; i < slots.size(); ++i) {
      if (!slots[i].fd.valid() && !start(i)) return Fail("socket");
    }
    const int n = epoll_wait(epoll.get(), events.data(), concurrency, 10);
    for (int e = 0; e < n; ++e) {
      const size_t i = events[e].data.u64;
      Slot& slot = slots[i];
      if (!slot.connected) {
        int error = 0;
        socklen_t length = sizeof(error);
        getsockopt(slot.fd.get(), SOL_SOCKET, SO_ERROR, &error, &length);
        if (error != 0 ||
            write(slot.fd.get(), kRequest.data(), kRequest.size()) != static_cast<ssize_t>(kRequest.size())) {
          ++connect_errors;
          slot.fd.reset();
          continue;
        }
        slot.connected = true;
        epoll_event event{.events = EPOLLIN, .data = {.u64 = i}};
        epoll_ctl(epoll.get(), EPOLL_CTL_MOD, slot.fd.get(), &event);
        continue;
      }
      for (;;) {
        const ssize_t got = read(slot.fd.get(), buffer, sizeof(buffer));
        if (got > 0) {
          slot.answer.append(buffer, got);
          continue;
        }
        if (got < 0 && errno == EAGAIN) break;
        if (got < 0) {
          ++read_errors;
        } else if (slot.answer != kResponse) {
          ++bad_answers;
        } else if (Clock::now() < deadline) {
          ++done;
          latency_us.push_back(static_cast<uint32_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - slot.started).count()));
        }
        slot.fd.reset();  // closing removes it from the epoll set; SO_LINGER 0 sends the reset
        break;
      }
    }
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
  int unfinished = 0;
  for (Slot& slot : slots) unfinished += slot.fd.valid();
  std::sort(latency_us.begin(), latency_us.end());
  std::printf(
      "%s\n",
      absl::StrFormat(
          "{\"requests\": %d, \"seconds\": %.6f, \"connect_errors\": %d, \"read_errors\": %d, "
          "\"bad_answers\": %d, \"unfinished\": %d, \"p50_us\": %.0f, \"p90_us\": %.0f, \"p99_us\": %.0f}",
          done, elapsed, connect_errors, read_errors, bad_answers, unfinished, Percentile(latency_us, 50),
          Percentile(latency_us, 90), Percentile(latency_us, 99))
          .c_str());
  return 0;
}

int UdpFlood(const sockaddr_in& target, double seconds, int flows, int size) {
  std::vector<UniqueFd> sockets;
  for (int i = 0; i < flows; ++i) {
    UniqueFd fd(socket(AF_INET, SOCK_DGRAM, 0));
    if (!fd.valid()) return Fail("socket");
    if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&target), sizeof(target)) != 0)
      return Fail("connect");
    sockets.push_back(std::move(fd));
  }
  constexpr int kBatch = 64;
  std::vector<char> payload(size, 'x');
  iovec iov{payload.data(), payload.size()};
  mmsghdr messages[kBatch];
  for (mmsghdr& message : messages) {
    message = {};
    message.msg_hdr.msg_iov = &iov;
    message.msg_hdr.msg_iovlen = 1;
  }
  uint64_t sent = 0, errors = 0;
  const Clock::time_point begin = Clock::now();
  const Clock::time_point deadline = begin + Seconds(seconds);
  for (size_t k = 0; Clock::now() < deadline; k = (k + 1) % sockets.size()) {
    const int n = sendmmsg(sockets[k].get(), messages, kBatch, 0);
    if (n > 0) {
      sent += n;
    } else {
      ++errors;  // ENOBUFS, or ECONNREFUSED left by an ICMP error to an earlier datagram
    }
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
  std::printf("%s\n",
              absl::StrFormat("{\"sent\": %d, \"seconds\": %.6f, \"send_errors\": %d}", sent, elapsed, errors)
                  .c_str());
  return 0;
}

int Usage() {
  std::fprintf(
      stderr,
      "usage: weir_service_load tcp-server PORT | udp-sink PORT |\n"
      "       tcp-load ADDRESS PORT SECONDS CONCURRENCY | udp-flood ADDRESS PORT SECONDS FLOWS SIZE\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 2 && (args[0] == "tcp-server" || args[0] == "udp-sink")) {
    uint32_t port = 0;
    if (!absl::SimpleAtoi(args[1], &port) || port == 0 || port > 65535) return Usage();
    return args[0] == "tcp-server" ? TcpServer(port) : UdpSink(port);
  }
  sockaddr_in target{};
  double seconds = 0;
  int concurrency = 0, flows = 0, size = 0;
  if (args.size() == 5 && args[0] == "tcp-load" && ParseAddress(argv[2], argv[3], &target) &&
      absl::SimpleAtod(args[3], &seconds) && seconds > 0 && absl::SimpleAtoi(args[4], &concurrency) &&
      concurrency > 0) {
    return TcpLoad(target, seconds, concurrency);
  }
  if (args.size() == 6 && args[0] == "udp-flood" && ParseAddress(argv[2], argv[3], &target) &&
      absl::SimpleAtod(args[3], &seconds) && seconds > 0 && absl::SimpleAtoi(args[4], &flows) && flows > 0 &&
      absl::SimpleAtoi(args[5], &size) && size > 0 && size <= 1472) {
    return UdpFlood(target, seconds, flows, size);
  }
  return Usage();
}
