// Building and parsing netlink messages: an nlmsghdr, a fixed family header (ifinfomsg, rtmsg, ...)
// and a tree of rtattr attributes. Used by the rtnetlink client; kept apart so it can be unit
// tested without a socket.
#pragma once

#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace weir {

using ByteSpan = std::span<const uint8_t>;

// One request. Append the family header first, then attributes; nested attributes are opened with
// BeginNested and closed with EndNested (which patches the nest's length).
class NetlinkMessage {
 public:
  NetlinkMessage(uint16_t type, uint16_t flags);

  // Appends raw bytes, padded to the netlink alignment (for family headers, also inside a nest).
  void Append(const void* data, size_t length);
  template <typename T>
  void Append(const T& value) {
    Append(&value, sizeof(value));
  }

  void AddAttribute(uint16_t type, const void* data, size_t length);
  void AddU32(uint16_t type, uint32_t value) { AddAttribute(type, &value, sizeof(value)); }
  // NUL-terminated, as the kernel expects for names and kinds.
  void AddString(uint16_t type, std::string_view value);

  // Returns a handle for EndNested.
  size_t BeginNested(uint16_t type);
  void EndNested(size_t handle);

  uint16_t type() const;
  // Stamps the sequence number and returns the complete message.
  ByteSpan Finish(uint32_t sequence);

 private:
  nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(buffer_.data()); }
  std::vector<uint8_t> buffer_;
};

// The attributes found in one attribute area, by type (the nested flag stripped). A repeated type
// keeps its last occurrence, which is all rtnetlink replies need.
class AttributeTable {
 public:
  explicit AttributeTable(ByteSpan area);

  std::optional<ByteSpan> Get(uint16_t type) const;
  std::optional<uint32_t> GetU32(uint16_t type) const;
  // Without the trailing NUL.
  std::optional<std::string> GetString(uint16_t type) const;

 private:
  std::map<uint16_t, ByteSpan> attributes_;
};

// The payload of a message after its nlmsghdr.
ByteSpan MessagePayload(const nlmsghdr& header);

// The attribute area of a message whose payload starts with a fixed header of `header_size` bytes.
// Empty if the message is too short to hold that header.
ByteSpan AttributeArea(const nlmsghdr& header, size_t header_size);

// Splits one received datagram into its messages, stopping at the first malformed one.
std::vector<const nlmsghdr*> SplitMessages(ByteSpan datagram);

}  // namespace weir
