// Socket load balancing through real sockets: the hooks are attached to a cgroup the test made, and
// each client is a child process that joins that cgroup and a network namespace of the test's own,
// then connect()s or sends to a Service. The test checks what the client saw (ECONNREFUSED, the
// backend reached, the Service as its peer) and what an operator sees: the counters `weirctl
// metrics` prints and the records `weirctl events` reads. Backends listen on the namespace's
// loopback; nothing leaves it.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bpf/abi/events.h"
#include "bpf/abi/metrics.h"
#include "bpf/abi/service.h"
#include "gtest/gtest.h"
#include "lib/abi_codec.h"
#include "lib/datapath.h"
#include "lib/ip.h"
#include "lib/metrics_map.h"
#include "lib/netlink.h"
#include "lib/service_maps.h"
#include "lib/unique_fd.h"
#include "privileged/scoped_cgroup.h"
#include "privileged/scoped_netns.h"

namespace weir::testing {
namespace {

constexpr uint32_t kNoEndpointsId = 20;
constexpr uint32_t kWebId = 10;
constexpr uint32_t kWeb6Id = 11;
constexpr uint32_t kDnsId = 12;
constexpr uint32_t kStickyId = 13;

// What a client process saw, passed back through a pipe (plain data: it crosses a fork).
struct ClientResult {
  char failure[128];  // the test's own setup failed in the child (joining the cgroup, ...)
  int error;          // errno of the call under test; 0: it succeeded
  uint64_t cookie;    // SO_COOKIE of the client's socket
  char peer[64];      // getpeername() after connect(), or the source of the datagram received
};

std::string FormatSockaddr(const sockaddr_storage& address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&address);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    return absl::StrCat(text, ":", ntohs(in->sin_port));
  }
  if (address.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
    return absl::StrCat("[", text, "]:", ntohs(in6->sin6_port));
  }
  return "<none>";
}

sockaddr_storage SockaddrOf(const std::string& ip, uint16_t port, socklen_t* length) {
  sockaddr_storage address{};
  IpAddress parsed = *IpAddress::Parse(ip);
  if (parsed.is_v4()) {
    auto* in = reinterpret_cast<sockaddr_in*>(&address);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    std::memcpy(&in->sin_addr, parsed.bytes().data(), 4);
    *length = sizeof(sockaddr_in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&address);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    std::memcpy(&in6->sin6_addr, parsed.bytes().data(), 16);
    *length = sizeof(sockaddr_in6);
  }
  return address;
}

void Fail(ClientResult& result, const std::string& what) {
  std::snprintf(result.failure, sizeof(result.failure), "%s: %s", what.c_str(), std::strerror(errno));
}

uint64_t CookieOf(int fd) {
  uint64_t cookie = 0;
  socklen_t length = sizeof(cookie);
  getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &length);
  return cookie;
}

// Client bodies, run inside the child.
ClientResult ConnectTcp(const std::string& ip, uint16_t port) {
  ClientResult result{};
  socklen_t length = 0;
  sockaddr_storage address = SockaddrOf(ip, port, &length);
  UniqueFd fd(socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    Fail(result, "socket");
    return result;
  }
  result.cookie = CookieOf(fd.get());
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&address), length) != 0) {
    result.error = errno;
    return result;
  }
  sockaddr_storage peer{};
  socklen_t peer_length = sizeof(peer);
  getpeername(fd.get(), reinterpret_cast<sockaddr*>(&peer), &peer_length);
  std::snprintf(result.peer, sizeof(result.peer), "%s", FormatSockaddr(peer).c_str());
  return result;
}

// A datagram to ip:port on an unconnected socket, then the answer and whom it seems to come from.
ClientResult ExchangeUdp(const std::string& ip, uint16_t port) {
  ClientResult result{};
  socklen_t length = 0;
  sockaddr_storage address = SockaddrOf(ip, port, &length);
  UniqueFd fd(socket(address.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    Fail(result, "socket");
    return result;
  }
  result.cookie = CookieOf(fd.get());
  timeval timeout{.tv_sec = 5, .tv_usec = 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  if (sendto(fd.get(), "ping", 4, 0, reinterpret_cast<sockaddr*>(&address), length) != 4) {
    result.error = errno;
    return result;
  }
  char reply[16];
  sockaddr_storage from{};
  socklen_t from_length = sizeof(from);
  if (recvfrom(fd.get(), reply, sizeof(reply), 0, reinterpret_cast<sockaddr*>(&from), &from_length) < 0) {
    result.error = errno;
    return result;
  }
  std::snprintf(result.peer, sizeof(result.peer), "%s", FormatSockaddr(from).c_str());
  return result;
}

struct Hook {
  const char* name;
  bpf_attach_type type;
};

const Hook kHooks[] = {
    {"connect4", BPF_CGROUP_INET4_CONNECT},         {"connect6", BPF_CGROUP_INET6_CONNECT},
    {"sendmsg4", BPF_CGROUP_UDP4_SENDMSG},          {"sendmsg6", BPF_CGROUP_UDP6_SENDMSG},
    {"recvmsg4", BPF_CGROUP_UDP4_RECVMSG},          {"recvmsg6", BPF_CGROUP_UDP6_RECVMSG},
    {"getpeername4", BPF_CGROUP_INET4_GETPEERNAME}, {"getpeername6", BPF_CGROUP_INET6_GETPEERNAME},
};

class SockLbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ns = ScopedNetNs::Create();
    ASSERT_TRUE(ns.ok()) << ns.status();
    ns_ = std::move(*ns);
    auto cgroup = ScopedCgroup::Create();
    if (absl::IsNotFound(cgroup.status())) GTEST_SKIP() << cgroup.status();
    ASSERT_TRUE(cgroup.ok()) << cgroup.status();
    cgroup_ = std::move(*cgroup);
    auto netlink = Netlink::OpenIn(ns_->ns());
    ASSERT_TRUE(netlink.ok()) << netlink.status();
    auto lo = netlink->GetLink("lo");
    ASSERT_TRUE(lo.ok()) << lo.status();
    ASSERT_TRUE(netlink->SetLinkUp(lo->index).ok());
  }

  void TearDown() override {
    links_.clear();  // detaches the hooks before the cgroup goes
    dp_.reset();
  }

  void Load(DatapathOptions options = {}) {
    auto loaded = Datapath::Load(options);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    dp_ = std::move(*loaded);
    UniqueFd cgroup(open(cgroup_->path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(cgroup.valid()) << cgroup_->path() << ": " << std::strerror(errno);
    for (const Hook& hook : kHooks) {
      UniqueFd link(bpf_link_create(dp_->sock_program_fd(hook.name), cgroup.get(), hook.type, nullptr));
      ASSERT_TRUE(link.valid()) << "attach " << hook.name << ": " << std::strerror(errno);
      links_.push_back(std::move(link));
    }
  }

  void Backend(uint32_t id, const std::string& ip, uint16_t port, uint8_t proto) {
    auto backends = dp_->OpenMap<BackendsMap>(DatapathMap::kBackends);
    ASSERT_TRUE(backends.ok()) << backends.status();
    const weir_backend backend = abi::EncodeBackend({*IpAddress::Parse(ip), port, proto, WEIR_BACKEND_LOCAL});
    ASSERT_TRUE(backends->Update(id, backend).ok());
    written_backends_[id] = backend;
  }

  void Service(const std::string& ip, uint16_t port, uint8_t proto, uint32_t service_id,
               const std::vector<uint32_t>& backend_ids, uint16_t flags = 0, uint32_t affinity_timeout = 0) {
    auto services = dp_->OpenMap<ServicesMap>(DatapathMap::kServices);
    auto slots = dp_->OpenMap<SlotsMap>(DatapathMap::kBackendSlots);
    ASSERT_TRUE(services.ok() && slots.ok());
    for (uint32_t slot = 0; slot < backend_ids.size(); ++slot) {
      ASSERT_TRUE(slots->Update({service_id, slot + 1}, backend_ids[slot]).ok());
    }
    const weir_service_key key = abi::EncodeServiceKey({*IpAddress::Parse(ip), port, proto});
    weir_service_value value{.service_id = service_id,
                             .backend_count = (uint16_t)backend_ids.size(),
                             .flags = (uint16_t)(WEIR_SVC_CLUSTER_IP | flags),
                             .affinity_timeout = affinity_timeout};
    // As the agent writes it: the first slots travel in the entry too.
    abi::CarryBackends(value, backend_ids, [&](uint32_t id) -> const weir_backend* {
      auto found = written_backends_.find(id);
      return found == written_backends_.end() ? nullptr : &found->second;
    });
    ASSERT_TRUE(services->Update(key, value).ok());
  }

  // A socket of the test's namespace, bound to ip:port (listening, for TCP). The test process is
  // outside the cgroup: its own sockets are never load-balanced.
  UniqueFd Server(const std::string& ip, uint16_t port, int type) {
    UniqueFd fd;
    absl::Status made = ns_->ns().Run([&]() -> absl::Status {
      socklen_t length = 0;
      sockaddr_storage address = SockaddrOf(ip, port, &length);
      fd.reset(socket(address.ss_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      if (!fd.valid()) return absl::ErrnoToStatus(errno, "socket");
      const int on = 1;
      setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
      if (bind(fd.get(), reinterpret_cast<sockaddr*>(&address), length) != 0)
        return absl::ErrnoToStatus(errno, "bind");
      if (type == SOCK_STREAM && listen(fd.get(), 16) != 0) return absl::ErrnoToStatus(errno, "listen");
      return absl::OkStatus();
    });
    EXPECT_TRUE(made.ok()) << made;
    return fd;
  }

  // Runs `client` in a child process inside the test's cgroup and namespace; what it saw.
  ClientResult InCgroup(const std::function<ClientResult()>& client) {
    ClientResult result{};
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe: " << std::strerror(errno);
      return result;
    }
    UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
    const std::string procs = cgroup_->procs_file();
    const pid_t pid = fork();
    if (pid == 0) {
      UniqueFd procs_fd(open(procs.c_str(), O_WRONLY | O_CLOEXEC));
      if (!procs_fd.valid() || write(procs_fd.get(), "0", 1) != 1) {
        Fail(result, "join " + procs);
      } else if (setns(ns_->ns().fd(), CLONE_NEWNET) != 0) {
        Fail(result, "setns");
      } else {
        result = client();
      }
      (void)!write(write_end.get(), &result, sizeof(result));
      _exit(0);
    }
    write_end.reset();
    if (pid < 0 || read(read_end.get(), &result, sizeof(result)) != sizeof(result)) {
      ADD_FAILURE() << "no result from the client process";
    }
    if (pid > 0) waitpid(pid, nullptr, 0);
    EXPECT_STREQ(result.failure, "");
    return result;
  }

  // The counters by the names `weirctl metrics` prints.
  std::map<std::string, uint64_t> Counters() {
    std::map<std::string, uint64_t> counters;
    auto totals = ReadMetricsFromFd(dp_->map_fd(DatapathMap::kMetrics));
    EXPECT_TRUE(totals.ok()) << totals.status();
    if (totals.ok()) {
      for (const MetricTotal& total : *totals) counters[total.name] = total.packets;
    }
    return counters;
  }

  std::vector<weir_event> DrainEvents() {
    std::vector<weir_event> events;
    ring_buffer* ring = ring_buffer__new(
        dp_->map_fd(DatapathMap::kEvents),
        [](void* context, void* data, size_t size) {
          if (size >= sizeof(weir_event))
            static_cast<std::vector<weir_event>*>(context)->push_back(*(weir_event*)data);
          return 0;
        },
        &events, nullptr);
    EXPECT_NE(ring, nullptr);
    if (ring != nullptr) {
      ring_buffer__consume(ring);
      ring_buffer__free(ring);
    }
    return events;
  }

  std::unique_ptr<ScopedNetNs> ns_;
  std::unique_ptr<ScopedCgroup> cgroup_;
  std::unique_ptr<Datapath> dp_;
  std::map<uint32_t, weir_backend> written_backends_;
  std::vector<UniqueFd> links_;
};

// Whether a connection is waiting on `listener`, taken off its queue.
bool Accepted(const UniqueFd& listener) {
  UniqueFd connection(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  return connection.valid();
}

int Pending(const UniqueFd& listener) {
  int count = 0;
  while (Accepted(listener)) ++count;
  return count;
}

std::string AddressOf(const weir_event& event, const weir_addr& address, __be16 port) {
  return abi::RenderAddressPort(address, event.family, port);
}

TEST_F(SockLbTest, ServiceWithoutEndpointsIsRefusedCountedAndReported) {
  ASSERT_NO_FATAL_FAILURE(Load());
  Service("10.96.0.20", 80, WEIR_PROTO_TCP, kNoEndpointsId, {});
  Service("10.96.0.20", 80, WEIR_PROTO_UDP, kNoEndpointsId, {});

  const ClientResult tcp = InCgroup([] { return ConnectTcp("10.96.0.20", 80); });
  EXPECT_EQ(tcp.error, ECONNREFUSED) << std::strerror(tcp.error);
  const ClientResult udp = InCgroup([] { return ExchangeUdp("10.96.0.20", 80); });
  EXPECT_EQ(udp.error, ECONNREFUSED) << std::strerror(udp.error);

  std::map<std::string, uint64_t> counters = Counters();
  EXPECT_EQ(counters["sock_connect_refused"], 1u);
  EXPECT_EQ(counters["sock_sendmsg_refused"], 1u);
  EXPECT_EQ(counters["sock_connect4_translated"], 0u);

  std::vector<weir_event> events = DrainEvents();
  ASSERT_EQ(events.size(), 2u);
  const weir_event& refused = events[0];
  EXPECT_EQ(refused.type, WEIR_EVENT_SOCKET);
  EXPECT_STREQ(MetricName(refused.reason), "sock_connect_refused");
  EXPECT_EQ(refused.proto, WEIR_PROTO_TCP);
  EXPECT_EQ(AddressOf(refused, refused.daddr, refused.dport), "10.96.0.20:80");
  EXPECT_EQ(refused.service_id, kNoEndpointsId);
  EXPECT_EQ(refused.backend_id, 0u);
  EXPECT_EQ(refused.cgroup_id, cgroup_->id());
  EXPECT_EQ(refused.socket_cookie, tcp.cookie);
  EXPECT_NE(refused.timestamp_ns, 0u);
  EXPECT_EQ(events[1].type, WEIR_EVENT_SOCKET);
  EXPECT_STREQ(MetricName(events[1].reason), "sock_sendmsg_refused");
  EXPECT_EQ(events[1].proto, WEIR_PROTO_UDP);
  EXPECT_EQ(events[1].socket_cookie, udp.cookie);
}

TEST_F(SockLbTest, TranslatedConnectionsAreCountedByFamilyWithoutEvents) {
  ASSERT_NO_FATAL_FAILURE(Load());
  UniqueFd web = Server("127.0.0.1", 8080, SOCK_STREAM);
  UniqueFd web6 = Server("::1", 8080, SOCK_STREAM);
  Backend(1, "127.0.0.1", 8080, WEIR_PROTO_TCP);
  Backend(2, "::1", 8080, WEIR_PROTO_TCP);
  Service("10.96.0.10", 80, WEIR_PROTO_TCP, kWebId, {1});
  Service("fd00:96::10", 80, WEIR_PROTO_TCP, kWeb6Id, {2});

  const ClientResult v4 = InCgroup([] { return ConnectTcp("10.96.0.10", 80); });
  EXPECT_EQ(v4.error, 0) << std::strerror(v4.error);
  EXPECT_STREQ(v4.peer, "10.96.0.10:80");
  EXPECT_TRUE(Accepted(web));
  const ClientResult v6 = InCgroup([] { return ConnectTcp("fd00:96::10", 80); });
  EXPECT_EQ(v6.error, 0) << std::strerror(v6.error);
  EXPECT_STREQ(v6.peer, "[fd00:96::10]:80");
  EXPECT_TRUE(Accepted(web6));
  // Straight to the backend: not a Service, left alone.
  const ClientResult direct = InCgroup([] { return ConnectTcp("127.0.0.1", 8080); });
  EXPECT_EQ(direct.error, 0) << std::strerror(direct.error);
  EXPECT_STREQ(direct.peer, "127.0.0.1:8080");
  EXPECT_TRUE(Accepted(web));

  std::map<std::string, uint64_t> counters = Counters();
  EXPECT_EQ(counters["sock_connect4_translated"], 1u);
  EXPECT_EQ(counters["sock_connect6_translated"], 1u);
  EXPECT_EQ(counters["sock_connect_passthrough"], 1u);
  EXPECT_EQ(counters["sock_connect_refused"], 0u);
  // Translations are recorded only when the agent asks for them.
  EXPECT_TRUE(DrainEvents().empty());
}

TEST_F(SockLbTest, DatagramsToAServiceAreCountedBothWays) {
  ASSERT_NO_FATAL_FAILURE(Load());
  UniqueFd dns = Server("127.0.0.1", 5353, SOCK_DGRAM);
  Backend(1, "127.0.0.1", 5353, WEIR_PROTO_UDP);
  Service("10.96.0.10", 53, WEIR_PROTO_UDP, kDnsId, {1});
  // The backend answers one datagram, to whoever sent it.
  std::thread echo([&] {
    pollfd ready{.fd = dns.get(), .events = POLLIN};
    if (poll(&ready, 1, 5000) != 1) return;
    char data[16];
    sockaddr_storage from{};
    socklen_t length = sizeof(from);
    ssize_t n = recvfrom(dns.get(), data, sizeof(data), 0, reinterpret_cast<sockaddr*>(&from), &length);
    if (n > 0) sendto(dns.get(), data, n, 0, reinterpret_cast<sockaddr*>(&from), length);
  });
  const ClientResult udp = InCgroup([] { return ExchangeUdp("10.96.0.10", 53); });
  echo.join();
  EXPECT_EQ(udp.error, 0) << std::strerror(udp.error);
  EXPECT_STREQ(udp.peer, "10.96.0.10:53");  // the answer shows the Service, not the backend

  std::map<std::string, uint64_t> counters = Counters();
  EXPECT_EQ(counters["sock_sendmsg_translated"], 1u);
  EXPECT_EQ(counters["sock_recvmsg_translated"], 1u);
}

TEST_F(SockLbTest, AffinityHitsAreCounted) {
  ASSERT_NO_FATAL_FAILURE(Load());
  UniqueFd first = Server("127.0.0.1", 8080, SOCK_STREAM);
  UniqueFd second = Server("127.0.0.1", 8081, SOCK_STREAM);
  Backend(1, "127.0.0.1", 8080, WEIR_PROTO_TCP);
  Backend(2, "127.0.0.1", 8081, WEIR_PROTO_TCP);
  Service("10.96.0.13", 80, WEIR_PROTO_TCP, kStickyId, {1, 2}, WEIR_SVC_AFFINITY, 600);

  for (int i = 0; i < 3; ++i) {
    const ClientResult client = InCgroup([] { return ConnectTcp("10.96.0.13", 80); });
    EXPECT_EQ(client.error, 0) << std::strerror(client.error);
  }
  // The same client (one network namespace): one pick, then the same backend twice.
  const int on_first = Pending(first), on_second = Pending(second);
  EXPECT_TRUE((on_first == 3 && on_second == 0) || (on_first == 0 && on_second == 3))
      << on_first << "/" << on_second;
  std::map<std::string, uint64_t> counters = Counters();
  EXPECT_EQ(counters["sock_connect4_translated"], 3u);
  EXPECT_EQ(counters["sock_affinity_hit"], 2u);
}

TEST_F(SockLbTest, TranslationEventsWhenAskedFor) {
  ASSERT_NO_FATAL_FAILURE(Load(DatapathOptions{.socket_lb_translation_events = true}));
  UniqueFd web = Server("127.0.0.1", 8080, SOCK_STREAM);
  Backend(7, "127.0.0.1", 8080, WEIR_PROTO_TCP);
  Service("10.96.0.10", 80, WEIR_PROTO_TCP, kWebId, {7});

  const ClientResult client = InCgroup([] { return ConnectTcp("10.96.0.10", 80); });
  EXPECT_EQ(client.error, 0) << std::strerror(client.error);
  EXPECT_TRUE(Accepted(web));

  std::vector<weir_event> events = DrainEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, WEIR_EVENT_SOCKET);
  EXPECT_STREQ(MetricName(events[0].reason), "sock_connect4_translated");
  EXPECT_EQ(AddressOf(events[0], events[0].daddr, events[0].dport), "10.96.0.10:80");
  EXPECT_EQ(AddressOf(events[0], events[0].nat_addr, events[0].nat_port), "127.0.0.1:8080");
  EXPECT_EQ(events[0].service_id, kWebId);
  EXPECT_EQ(events[0].backend_id, 7u);
  EXPECT_EQ(events[0].cgroup_id, cgroup_->id());
  EXPECT_EQ(events[0].socket_cookie, client.cookie);
}

}  // namespace
}  // namespace weir::testing
