// weir-agent: loads and pins weir's datapath under the bpf root and keeps it there. On exit it
// removes nothing: running pods keep their programs, maps and links.
#include <csignal>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "lib/datapath.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, bpf_root, "/sys/fs/bpf/weir", "bpffs directory for weir's pinned maps, programs and links");
ABSL_FLAG(std::string, gateway_mac, "ee:ee:ee:ee:ee:ee", "MAC that pods see as their gateway");
ABSL_FLAG(uint32_t, endpoints_max, 65536, "capacity of the endpoints map");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("weir node agent: loads weir's eBPF datapath and keeps it in sync");
  absl::ParseCommandLine(argc, argv);

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto gateway_mac = weir::ParseMac(absl::GetFlag(FLAGS_gateway_mac));
  if (!gateway_mac.ok()) {
    spdlog::critical("--gateway_mac: {}", gateway_mac.status().ToString());
    return 2;
  }
  weir::DatapathOptions options{.bpf_root = absl::GetFlag(FLAGS_bpf_root),
                                .gateway_mac = *gateway_mac,
                                .endpoints_max = absl::GetFlag(FLAGS_endpoints_max)};
  auto datapath = weir::Datapath::Load(options);
  if (!datapath.ok()) {
    spdlog::critical("loading the datapath: {}", datapath.status().ToString());
    return 1;
  }
  spdlog::info("datapath pinned under {}; ready", options.bpf_root);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  spdlog::info("signal {}: exiting, pinned state stays for running pods", signal_number);
  return 0;
}
