#include "lib/netlink_message.h"

#include <linux/rtnetlink.h>

#include <cstring>

namespace weir {
namespace {

// NLMSG_ALIGNTO and RTA_ALIGNTO are both 4; one helper serves headers and attributes.
constexpr size_t Align(size_t length) { return (length + 3) & ~size_t{3}; }

}  // namespace

NetlinkMessage::NetlinkMessage(uint16_t type, uint16_t flags) {
  buffer_.resize(NLMSG_HDRLEN);
  header()->nlmsg_type = type;
  header()->nlmsg_flags = flags;
}

void NetlinkMessage::Append(const void* data, size_t length) {
  const size_t offset = buffer_.size();
  buffer_.resize(offset + Align(length));  // resize zero-fills the padding
  if (length > 0) std::memcpy(buffer_.data() + offset, data, length);
}

void NetlinkMessage::AddAttribute(uint16_t type, const void* data, size_t length) {
  rtattr attribute{};
  attribute.rta_len = static_cast<uint16_t>(RTA_LENGTH(length));
  attribute.rta_type = type;
  Append(attribute);
  Append(data, length);
}

void NetlinkMessage::AddString(uint16_t type, std::string_view value) {
  std::string terminated(value);
  AddAttribute(type, terminated.c_str(), terminated.size() + 1);
}

size_t NetlinkMessage::BeginNested(uint16_t type) {
  const size_t handle = buffer_.size();
  // NLA_F_NESTED lets strict kernel parsers verify the structure.
  AddAttribute(type | NLA_F_NESTED, nullptr, 0);
  return handle;
}

void NetlinkMessage::EndNested(size_t handle) {
  auto* attribute = reinterpret_cast<rtattr*>(buffer_.data() + handle);
  attribute->rta_len = static_cast<uint16_t>(buffer_.size() - handle);
}

uint16_t NetlinkMessage::type() const {
  return reinterpret_cast<const nlmsghdr*>(buffer_.data())->nlmsg_type;
}

ByteSpan NetlinkMessage::Finish(uint32_t sequence) {
  header()->nlmsg_len = static_cast<uint32_t>(buffer_.size());
  header()->nlmsg_seq = sequence;
  header()->nlmsg_pid = 0;  // addressed to the kernel
  return ByteSpan(buffer_.data(), buffer_.size());
}

AttributeTable::AttributeTable(ByteSpan area) {
  size_t offset = 0;
  while (offset + sizeof(rtattr) <= area.size()) {
    rtattr attribute;
    std::memcpy(&attribute, area.data() + offset, sizeof(attribute));
    if (attribute.rta_len < sizeof(rtattr) || offset + attribute.rta_len > area.size()) break;
    const uint16_t type = attribute.rta_type & NLA_TYPE_MASK;
    attributes_[type] = area.subspan(offset + RTA_LENGTH(0), attribute.rta_len - RTA_LENGTH(0));
    offset += Align(attribute.rta_len);
  }
}

std::optional<ByteSpan> AttributeTable::Get(uint16_t type) const {
  auto it = attributes_.find(type);
  if (it == attributes_.end()) return std::nullopt;
  return it->second;
}

std::optional<uint32_t> AttributeTable::GetU32(uint16_t type) const {
  std::optional<ByteSpan> payload = Get(type);
  if (!payload || payload->size() < sizeof(uint32_t)) return std::nullopt;
  uint32_t value;
  std::memcpy(&value, payload->data(), sizeof(value));
  return value;
}

std::optional<std::string> AttributeTable::GetString(uint16_t type) const {
  std::optional<ByteSpan> payload = Get(type);
  if (!payload) return std::nullopt;
  std::string value(reinterpret_cast<const char*>(payload->data()), payload->size());
  if (const size_t nul = value.find('\0'); nul != std::string::npos) value.resize(nul);
  return value;
}

ByteSpan MessagePayload(const nlmsghdr& header) {
  const auto* start = reinterpret_cast<const uint8_t*>(&header);
  if (header.nlmsg_len < NLMSG_HDRLEN) return {};
  return ByteSpan(start + NLMSG_HDRLEN, header.nlmsg_len - NLMSG_HDRLEN);
}

ByteSpan AttributeArea(const nlmsghdr& header, size_t header_size) {
  const ByteSpan payload = MessagePayload(header);
  if (payload.size() < Align(header_size)) return {};
  return payload.subspan(Align(header_size));
}

std::vector<const nlmsghdr*> SplitMessages(ByteSpan datagram) {
  std::vector<const nlmsghdr*> messages;
  size_t offset = 0;
  while (offset + NLMSG_HDRLEN <= datagram.size()) {
    const auto* header = reinterpret_cast<const nlmsghdr*>(datagram.data() + offset);
    if (header->nlmsg_len < NLMSG_HDRLEN || offset + header->nlmsg_len > datagram.size()) break;
    messages.push_back(header);
    offset += Align(header->nlmsg_len);
  }
  return messages;
}

}  // namespace weir
