#include "lib/ip.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace weir {
namespace {

// Addresses are big-endian byte strings; a 128-bit integer view makes carry and borrow trivial.
using u128 = unsigned __int128;

u128 ToInteger(const IpAddress& address) {
  u128 value = 0;
  for (int i = 0; i < address.byte_length(); ++i) value = (value << 8) | address.bytes()[i];
  return value;
}

IpAddress FromInteger(IpFamily family, u128 value) {
  const int length = family == IpFamily::kV4 ? 4 : 16;
  uint8_t bytes[16] = {};
  for (int i = length - 1; i >= 0; --i) {
    bytes[i] = static_cast<uint8_t>(value);
    value >>= 8;
  }
  return IpAddress::FromBytes(family, bytes);
}

// A mask with the top `length` bits of a `bit_length`-bit address set.
u128 NetworkMask(int bit_length, int length) {
  if (length == 0) return 0;  // also avoids the undefined 128-bit shift below
  const u128 all = bit_length == 128 ? ~u128{0} : (u128{1} << bit_length) - 1;
  const u128 host = (u128{1} << (bit_length - length)) - 1;
  return all & ~host;
}

}  // namespace

absl::StatusOr<IpAddress> IpAddress::Parse(std::string_view text) {
  // inet_pton needs a NUL-terminated string and rejects trailing garbage such as "/24".
  const std::string copy(text);
  IpAddress address;
  if (copy.find(':') != std::string::npos) {
    address.family_ = IpFamily::kV6;
    if (inet_pton(AF_INET6, copy.c_str(), address.bytes_.data()) == 1) return address;
  } else {
    address.family_ = IpFamily::kV4;
    if (inet_pton(AF_INET, copy.c_str(), address.bytes_.data()) == 1) return address;
  }
  return absl::InvalidArgumentError(absl::StrCat("invalid IP address \"", copy, "\""));
}

IpAddress IpAddress::V4(uint32_t host_order) { return FromInteger(IpFamily::kV4, host_order); }

IpAddress IpAddress::FromBytes(IpFamily family, const uint8_t* bytes) {
  IpAddress address;
  address.family_ = family;
  std::copy_n(bytes, address.byte_length(), address.bytes_.begin());
  return address;
}

std::string IpAddress::ToString() const {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes_.data(), text, sizeof(text));
  return text;
}

IpAddress IpAddress::Plus(uint64_t n) const { return FromInteger(family_, ToInteger(*this) + n); }

uint64_t IpAddress::Minus(const IpAddress& base) const {
  return static_cast<uint64_t>(ToInteger(*this) - ToInteger(base));
}

absl::StatusOr<IpPrefix> IpPrefix::Parse(std::string_view text) {
  const auto invalid = [&](std::string_view reason) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid IP prefix \"", std::string(text), "\": ", std::string(reason)));
  };
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) return invalid("missing /length");
  absl::StatusOr<IpAddress> address = IpAddress::Parse(text.substr(0, slash));
  if (!address.ok()) return invalid("bad address");

  // SimpleAtoi accepts signs and spaces; a prefix length is plain digits only.
  const std::string_view length_text = text.substr(slash + 1);
  const bool digits_only =
      !length_text.empty() && length_text.size() <= 3 &&
      std::all_of(length_text.begin(), length_text.end(), [](char c) { return c >= '0' && c <= '9'; });
  int length = -1;
  if (!digits_only || !absl::SimpleAtoi(absl::string_view(length_text.data(), length_text.size()), &length) ||
      length > address->bit_length()) {
    return invalid("bad length");
  }
  return IpPrefix(*address, length);
}

IpPrefix IpPrefix::Network() const {
  const u128 mask = NetworkMask(address_.bit_length(), length_);
  return IpPrefix(FromInteger(family(), ToInteger(address_) & mask), length_);
}

bool IpPrefix::Contains(const IpAddress& address) const {
  if (address.family() != family()) return false;
  const u128 mask = NetworkMask(address_.bit_length(), length_);
  return (ToInteger(address) & mask) == (ToInteger(address_) & mask);
}

uint64_t IpPrefix::Size() const {
  const int host_bits = address_.bit_length() - length_;
  return host_bits >= 63 ? uint64_t{1} << 63 : uint64_t{1} << host_bits;
}

std::string IpPrefix::ToString() const { return absl::StrCat(address_.ToString(), "/", length_); }

}  // namespace weir
