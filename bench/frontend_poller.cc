// The control-plane benchmark's probe of one frontend: how many backends the services map gives
// `address:port`/TCP (external or internal entry), asked once a millisecond while a change lands.
// A long-running process speaking lines on stdin/stdout, so that a poll costs a pipe round trip
// rather than an exec of weirctl, and the key is encoded by the one ABI codec (lib/abi_codec.h).
//
//   weir_frontend_poller <pinned services map>
//   stdin:  "<address> <port>" per line
//   stdout: the backend count, or "none" when neither entry exists, per line
#include <cstdio>
#include <iostream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "lib/abi_codec.h"
#include "lib/ip.h"
#include "lib/service_maps.h"

namespace {

std::string Answer(const weir::ServicesMap& services, const std::string& line) {
  std::vector<std::string> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
  uint32_t port = 0;
  absl::StatusOr<weir::IpAddress> address = fields.size() == 2
                                                ? weir::IpAddress::Parse(fields[0])
                                                : absl::InvalidArgumentError("want: address port");
  if (!address.ok() || !absl::SimpleAtoi(fields[1], &port) || port > 65535)
    return "error: want: address port";
  for (uint8_t scope : {WEIR_SCOPE_EXTERNAL, WEIR_SCOPE_INTERNAL}) {
    const weir_service_key key = weir::abi::EncodeServiceKey(
        {.address = *address, .port = static_cast<uint16_t>(port), .proto = WEIR_PROTO_TCP, .scope = scope});
    absl::StatusOr<std::optional<weir_service_value>> value = services.Lookup(key);
    if (!value.ok()) return "error: " + std::string(value.status().message());
    if (value->has_value()) return std::to_string((*value)->backend_count);
  }
  return "none";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <pinned services map>\n", argv[0]);
    return 2;
  }
  absl::StatusOr<weir::ServicesMap> services = weir::ServicesMap::OpenPinned(argv[1]);
  if (!services.ok()) {
    std::fprintf(stderr, "%s\n", std::string(services.status().message()).c_str());
    return 1;
  }
  std::string line;
  while (std::getline(std::cin, line)) std::cout << Answer(*services, line) << std::endl;
  return 0;
}
