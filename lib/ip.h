// Address and prefix types shared by the CNI plugin, the agent and weirctl.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace weir {

enum class IpFamily : uint8_t { kV4 = 4, kV6 = 6 };

// An IPv4 or IPv6 address, stored in network byte order. IPv4 uses the first four bytes.
class IpAddress {
 public:
  IpAddress() = default;
  static absl::StatusOr<IpAddress> Parse(std::string_view text);
  static IpAddress V4(uint32_t host_order);
  static IpAddress FromBytes(IpFamily family, const uint8_t* bytes);

  IpFamily family() const { return family_; }
  bool is_v4() const { return family_ == IpFamily::kV4; }
  int bit_length() const { return is_v4() ? 32 : 128; }
  int byte_length() const { return is_v4() ? 4 : 16; }
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }
  std::string ToString() const;

  // The address `n` positions after this one (wrapping is the caller's concern).
  IpAddress Plus(uint64_t n) const;
  // Distance from `base` to this address; only meaningful within one prefix of up to 64 host bits.
  uint64_t Minus(const IpAddress& base) const;

  auto operator<=>(const IpAddress&) const = default;

 private:
  IpFamily family_ = IpFamily::kV4;
  std::array<uint8_t, 16> bytes_{};
};

// An address with a prefix length, e.g. 10.244.1.0/24 or 10.244.1.5/32.
class IpPrefix {
 public:
  IpPrefix() = default;
  IpPrefix(IpAddress address, int length) : address_(address), length_(length) {}
  static absl::StatusOr<IpPrefix> Parse(std::string_view text);

  const IpAddress& address() const { return address_; }
  int length() const { return length_; }
  IpFamily family() const { return address_.family(); }
  // The prefix with host bits cleared.
  IpPrefix Network() const;
  bool Contains(const IpAddress& address) const;
  // Number of host addresses, saturated at 2^63.
  uint64_t Size() const;
  std::string ToString() const;

  auto operator<=>(const IpPrefix&) const = default;

 private:
  IpAddress address_;
  int length_ = 0;
};

}  // namespace weir
