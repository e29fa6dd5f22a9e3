// The network configuration weir receives on stdin, parsed and validated.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "cni/result.h"
#include "cni/version.h"
#include "lib/ip.h"

namespace weir::cni {

enum class LogLevel { kError, kWarn, kInfo, kDebug };

absl::string_view LogLevelName(LogLevel level);

// One entry of "cni.dev/valid-attachments" (GC): an attachment the runtime still considers live.
struct ValidAttachment {
  std::string container_id;
  std::string ifname;

  bool operator==(const ValidAttachment&) const = default;
};

// The kind of device pair a pod is wired with. Both carry the same from-pod program; netkit
// (Linux 6.7+) runs it in the pod's transmit path instead of at tc ingress of a host veth.
enum class DeviceMode { kVeth, kNetkit };

absl::string_view DeviceModeName(DeviceMode mode);

inline constexpr int kDefaultMtu = 1500;
inline constexpr int kMinMtu = 576;     // the IPv4 minimum datagram size every host must accept
inline constexpr int kMinMtuV6 = 1280;  // IPv6 minimum link MTU
inline constexpr int kMaxMtu = 65535;
inline constexpr absl::string_view kDefaultBpfRoot = "/sys/fs/bpf/weir";
inline constexpr absl::string_view kDefaultDataDir = "/var/lib/cni/weir";

struct NetConfig {
  std::string cni_version;  // decides the output format of this invocation
  std::string name;
  std::string type;
  int mtu = kDefaultMtu;
  DeviceMode device_mode = DeviceMode::kVeth;

  // Built-in IPAM ranges, network-aligned, at most one per family, in config order.
  std::vector<IpPrefix> pod_cidrs;

  std::string bpf_root = std::string(kDefaultBpfRoot);
  std::string data_dir = std::string(kDefaultDataDir);
  // NetworkPolicy: ADD asks the agent on this unix socket ("@name": abstract, in the node's network
  // namespace; lib/agent_socket.h) for the pod's policy before it returns,
  // waiting at most policy_timeout_ms (the pod stays denied if no answer comes). Empty: no request;
  // with "policy": true it defaults to the agent's default socket (@weir-policy).
  std::string policy_socket;
  int64_t policy_timeout_ms = 3000;
  std::string log_file;  // empty: no log file
  LogLevel log_level = LogLevel::kInfo;
  Dns dns;
  // NetworkPolicy enforcement ("policy": true): ADD registers the pod's addresses pending, denied
  // everything but its own node until the agent has written the pod's policy.
  bool policy = false;

  // Delegated IPAM: set when "ipam" has a "type". The raw object is kept for the IPAM plugin.
  std::string ipam_type;
  std::string ipam_raw;  // compact JSON of "ipam" when present, else empty

  std::optional<Result> prev_result;
  std::string prev_result_raw;
  std::string runtime_config_raw;
  std::string args_raw;

  // GC input; nullopt when the key is absent (distinct from an empty list: "nothing is valid").
  std::optional<std::vector<ValidAttachment>> valid_attachments;
  std::vector<std::string> cni_versions;  // conflist-level "cniVersions", when present

  // The complete stdin text, passed unchanged to a delegated IPAM plugin.
  std::string raw;

  bool delegates_ipam() const { return !ipam_type.empty(); }
};

// Parses and validates a network configuration.
//   not JSON, or a field of the wrong JSON type           -> CniCode::kDecodeFailure
//   missing cniVersion, or a version weir does not speak  -> CniCode::kIncompatibleVersion
//   semantic problems (missing name/type, bad CIDR, two ranges of one family, MTU out of range,
//   neither podCIDRs nor ipam.type, or both, a deviceMode other than "veth" or "netkit")
//                                                           -> CniCode::kInvalidNetworkConfig
// A missing "cniVersion" with a "cniVersions" list picks the newest supported entry of the list.
absl::StatusOr<NetConfig> ParseNetConfig(absl::string_view json);

// Spec rule for network names (also used as a directory name by the IPAM store):
// starts alphanumeric, then alphanumerics, '_', '.', '-'.
bool IsValidNetworkName(absl::string_view name);

}  // namespace weir::cni
