// The packet generator of bench/dataplane_bench.py: BPF_PROG_TEST_RUN with
// BPF_F_TEST_XDP_LIVE_FRAMES (the kernel's own generator, as xdp-trafficgen uses) runs
// bpf/xdp_traffic_gen.bpf.c on a prebuilt frame and sends what it returns XDP_TX for out of a
// device of the namespace this process runs in. Run it pinned to a CPU of its own: the frames cost
// that CPU only their generation and the veth's enqueue, the receiving node's NAPI runs elsewhere.
//
//   weir_xdp_traffic_gen DEVICE FRAME_HEX FLOWS FIRST_SOURCE_PORT SECONDS
//
// Prints {"frames": N, "seconds": S}: frames the program returned XDP_TX for (what the veth could
// not take because its peer's ring was full is in N too: the receiver's count is the measurement).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <signal.h>
#include <sys/time.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "xdp_traffic_gen.skel.h"

namespace {

constexpr int kRepeatPerCall = 1 << 30;  // the run ends on the timer's signal long before
constexpr unsigned kBatch =
    256;  // the most the kernel takes (TEST_XDP_MAX_BATCH): its page pool holds as many

void on_alarm(int) {}  // only interrupts the test run (no SA_RESTART)

double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

bool parse_hex(const std::string& hex, std::vector<unsigned char>& out) {
  if (hex.size() % 2) return false;
  for (size_t i = 0; i < hex.size(); i += 2) {
    unsigned value;
    if (sscanf(hex.c_str() + i, "%2x", &value) != 1) return false;
    out.push_back(static_cast<unsigned char>(value));
  }
  return out.size() >= 42;  // Ethernet + IPv4 + UDP
}

int usage() {
  fprintf(stderr, "usage: weir_xdp_traffic_gen DEVICE FRAME_HEX FLOWS FIRST_SOURCE_PORT SECONDS\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) return usage();
  std::vector<unsigned char> frame;
  unsigned flows, first_port;
  double seconds;
  if (!parse_hex(argv[2], frame) || !absl::SimpleAtoi(argv[3], &flows) || flows < 1 ||
      !absl::SimpleAtoi(argv[4], &first_port) || first_port + flows > 65536 ||
      !absl::SimpleAtod(argv[5], &seconds) || seconds <= 0)
    return usage();
  unsigned ifindex = if_nametoindex(argv[1]);
  if (ifindex == 0) {
    fprintf(stderr, "no device %s in this namespace: %s\n", argv[1], strerror(errno));
    return 1;
  }
  struct xdp_traffic_gen* skel = xdp_traffic_gen__open();
  if (skel == nullptr) {
    fprintf(stderr, "opening the generator program: %s\n", strerror(errno));
    return 1;
  }
  // The template: the frame's first 128 bytes (the program writes them into every frame again).
  memcpy(const_cast<__u64*>(skel->rodata->frame_template), frame.data(),
         std::min(frame.size(), sizeof(skel->rodata->frame_template)));
  skel->rodata->flows = flows;
  skel->rodata->first_source_port = static_cast<__u16>(first_port);
  if (int err = xdp_traffic_gen__load(skel); err) {
    fprintf(stderr, "loading the generator program: %s\n", strerror(-err));
    xdp_traffic_gen__destroy(skel);
    return 1;
  }

  struct sigaction action = {};
  action.sa_handler = on_alarm;
  sigaction(SIGALRM, &action, nullptr);
  itimerval timer = {};
  timer.it_value.tv_sec = static_cast<time_t>(seconds);
  timer.it_value.tv_usec = static_cast<suseconds_t>((seconds - timer.it_value.tv_sec) * 1e6);
  xdp_md context = {};
  context.data_end = frame.size();
  context.ingress_ifindex = ifindex;
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
              .data_size_in = static_cast<__u32>(frame.size()), .ctx_in = &context,
              .ctx_size_in = sizeof(context), .repeat = kRepeatPerCall, .flags = BPF_F_TEST_XDP_LIVE_FRAMES,
              .batch_size = kBatch);
  int prog = bpf_program__fd(skel->progs.xdp_traffic_gen);
  double start = now_s(), deadline = start + seconds;
  setitimer(ITIMER_REAL, &timer, nullptr);
  int status = 0;
  while (now_s() < deadline) {
    if (bpf_prog_test_run_opts(prog, &opts) != 0 && errno != EINTR) {
      fprintf(stderr, "BPF_PROG_TEST_RUN (live frames) on %s: %s\n", argv[1], strerror(errno));
      status = 1;
      break;
    }
  }
  double elapsed = now_s() - start;
  printf("{\"frames\": %llu, \"seconds\": %.6f}\n", static_cast<unsigned long long>(skel->bss->frames),
         elapsed);
  xdp_traffic_gen__destroy(skel);
  return status;
}
