#include "cni/result.h"

#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"
#include "cni/error.h"
#include "cni/json_util.h"
#include "cni/version.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace weir::cni {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void WriteString(JsonWriter& writer, const char* key, absl::string_view value) {
  writer.Key(key);
  writer.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

void WriteStringArray(JsonWriter& writer, const char* key, const std::vector<std::string>& values) {
  writer.Key(key);
  writer.StartArray();
  for (const std::string& value : values) writer.String(value.data(), value.size());
  writer.EndArray();
}

void WriteDns(JsonWriter& writer, const Dns& dns) {
  writer.StartObject();
  if (!dns.nameservers.empty()) WriteStringArray(writer, "nameservers", dns.nameservers);
  if (!dns.domain.empty()) WriteString(writer, "domain", dns.domain);
  if (!dns.search.empty()) WriteStringArray(writer, "search", dns.search);
  if (!dns.options.empty()) WriteStringArray(writer, "options", dns.options);
  writer.EndObject();
}

void WriteInterface(JsonWriter& writer, const Interface& interface, bool v1_1) {
  writer.StartObject();
  WriteString(writer, "name", interface.name);
  if (!interface.mac.empty()) WriteString(writer, "mac", interface.mac);
  if (v1_1 && interface.mtu != 0) {
    writer.Key("mtu");
    writer.Int(interface.mtu);
  }
  if (!interface.sandbox.empty()) WriteString(writer, "sandbox", interface.sandbox);
  if (v1_1 && !interface.socket_path.empty()) WriteString(writer, "socketPath", interface.socket_path);
  if (v1_1 && !interface.pci_id.empty()) WriteString(writer, "pciID", interface.pci_id);
  writer.EndObject();
}

void WriteIp(JsonWriter& writer, const IpConfig& ip, bool pre_1_0) {
  writer.StartObject();
  // Pre-1.0 results name the family explicitly; 1.0.0 dropped the field as redundant.
  if (pre_1_0) WriteString(writer, "version", ip.address.address().is_v4() ? "4" : "6");
  WriteString(writer, "address", ip.address.ToString());
  if (ip.gateway.has_value()) WriteString(writer, "gateway", ip.gateway->ToString());
  if (ip.interface.has_value()) {
    writer.Key("interface");
    writer.Int(*ip.interface);
  }
  writer.EndObject();
}

void WriteRoute(JsonWriter& writer, const Route& route, bool v1_1) {
  writer.StartObject();
  WriteString(writer, "dst", route.dst.ToString());
  if (route.gw.has_value()) WriteString(writer, "gw", route.gw->ToString());
  if (v1_1) {
    if (route.mtu != 0) {
      writer.Key("mtu");
      writer.Int(route.mtu);
    }
    if (route.advmss != 0) {
      writer.Key("advmss");
      writer.Int(route.advmss);
    }
    const std::pair<const char*, const std::optional<int>*> optional_ints[] = {
        {"priority", &route.priority}, {"table", &route.table}, {"scope", &route.scope}};
    for (const auto& [key, value] : optional_ints) {
      if (value->has_value()) {
        writer.Key(key);
        writer.Int(**value);
      }
    }
  }
  writer.EndObject();
}

absl::Status DecodeError(absl::string_view path, absl::string_view problem) {
  return CniError(CniCode::kDecodeFailure, absl::StrCat(path, ": ", problem));
}

// Reads a non-negative integer that fits an int; absent leaves `out` alone.
bool ReadSmallInt(JsonFields& fields, const char* key, std::optional<int>& out, absl::Status& error) {
  int64_t value = 0;
  if (!fields.Int(key, value)) return false;
  if (value < 0 || value > std::numeric_limits<int>::max()) {
    if (error.ok()) error = DecodeError(fields.PathOf(key), absl::StrCat("out of range: ", value));
    return false;
  }
  out = static_cast<int>(value);
  return true;
}

absl::StatusOr<Interface> InterfaceFromJson(const rapidjson::Value& value, const std::string& path) {
  if (!value.IsObject()) return DecodeError(path, "must be an object");
  JsonFields fields(value, path);
  Interface interface;
  fields.String("name", interface.name);
  fields.String("mac", interface.mac);
  fields.String("sandbox", interface.sandbox);
  fields.String("socketPath", interface.socket_path);
  fields.String("pciID", interface.pci_id);
  absl::Status error;
  std::optional<int> mtu;
  ReadSmallInt(fields, "mtu", mtu, error);
  interface.mtu = mtu.value_or(0);
  if (!fields.status().ok()) return fields.status();
  if (!error.ok()) return error;
  return interface;
}

absl::StatusOr<IpConfig> IpFromJson(const rapidjson::Value& value, const std::string& path) {
  if (!value.IsObject()) return DecodeError(path, "must be an object");
  JsonFields fields(value, path);
  std::string address_text, gateway_text, version;
  const bool has_address = fields.String("address", address_text);
  const bool has_gateway = fields.String("gateway", gateway_text);
  const bool has_version = fields.String("version", version);
  absl::Status error;
  IpConfig ip;
  ReadSmallInt(fields, "interface", ip.interface, error);
  if (!fields.status().ok()) return fields.status();
  if (!error.ok()) return error;

  if (!has_address) return DecodeError(path, "\"address\" is required");
  absl::StatusOr<IpPrefix> address = IpPrefix::Parse(address_text);
  if (!address.ok()) return DecodeError(fields.PathOf("address"), address.status().message());
  ip.address = *address;
  if (has_gateway) {
    absl::StatusOr<IpAddress> gateway = IpAddress::Parse(gateway_text);
    if (!gateway.ok()) return DecodeError(fields.PathOf("gateway"), gateway.status().message());
    if (gateway->family() != ip.address.family()) {
      return DecodeError(fields.PathOf("gateway"), "address family differs from \"address\"");
    }
    ip.gateway = *gateway;
  }
  if (has_version) {
    const absl::string_view expected = ip.address.address().is_v4() ? "4" : "6";
    if (version != expected) {
      return DecodeError(fields.PathOf("version"),
                         absl::StrCat("\"", version, "\" does not match address ", address_text));
    }
  }
  return ip;
}

absl::StatusOr<Route> RouteFromJson(const rapidjson::Value& value, const std::string& path) {
  if (!value.IsObject()) return DecodeError(path, "must be an object");
  JsonFields fields(value, path);
  std::string dst_text, gw_text;
  const bool has_dst = fields.String("dst", dst_text);
  const bool has_gw = fields.String("gw", gw_text);
  Route route;
  absl::Status error;
  std::optional<int> mtu, advmss;
  ReadSmallInt(fields, "mtu", mtu, error);
  ReadSmallInt(fields, "advmss", advmss, error);
  ReadSmallInt(fields, "priority", route.priority, error);
  ReadSmallInt(fields, "table", route.table, error);
  ReadSmallInt(fields, "scope", route.scope, error);
  route.mtu = mtu.value_or(0);
  route.advmss = advmss.value_or(0);
  if (!fields.status().ok()) return fields.status();
  if (!error.ok()) return error;

  if (!has_dst) return DecodeError(path, "\"dst\" is required");
  absl::StatusOr<IpPrefix> dst = IpPrefix::Parse(dst_text);
  if (!dst.ok()) return DecodeError(fields.PathOf("dst"), dst.status().message());
  route.dst = *dst;
  if (has_gw) {
    absl::StatusOr<IpAddress> gw = IpAddress::Parse(gw_text);
    if (!gw.ok()) return DecodeError(fields.PathOf("gw"), gw.status().message());
    if (gw->family() != route.dst.family()) {
      return DecodeError(fields.PathOf("gw"), "address family differs from \"dst\"");
    }
    route.gw = *gw;
  }
  return route;
}

// Decodes every element of the array member `key` with `decode`, appending to `out`.
template <typename T, typename Decode>
absl::Status DecodeArray(JsonFields& fields, const char* key, std::vector<T>& out, Decode decode) {
  const rapidjson::Value* array = fields.Array(key);
  if (array == nullptr) return fields.status();
  rapidjson::SizeType index = 0;
  for (const rapidjson::Value& element : array->GetArray()) {
    absl::StatusOr<T> decoded = decode(element, absl::StrCat(fields.PathOf(key), "[", index++, "]"));
    if (!decoded.ok()) return decoded.status();
    out.push_back(*std::move(decoded));
  }
  return absl::OkStatus();
}

}  // namespace

std::string ResultJson(const Result& result, absl::string_view cni_version) {
  const bool v1_1 = VersionAtLeast(cni_version, "1.1.0");
  const bool pre_1_0 = !VersionAtLeast(cni_version, "1.0.0");
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartObject();
  WriteString(writer, "cniVersion", cni_version);
  if (!result.interfaces.empty()) {
    writer.Key("interfaces");
    writer.StartArray();
    for (const Interface& interface : result.interfaces) WriteInterface(writer, interface, v1_1);
    writer.EndArray();
  }
  if (!result.ips.empty()) {
    writer.Key("ips");
    writer.StartArray();
    for (const IpConfig& ip : result.ips) WriteIp(writer, ip, pre_1_0);
    writer.EndArray();
  }
  if (!result.routes.empty()) {
    writer.Key("routes");
    writer.StartArray();
    for (const Route& route : result.routes) WriteRoute(writer, route, v1_1);
    writer.EndArray();
  }
  if (!result.dns.empty()) {
    writer.Key("dns");
    WriteDns(writer, result.dns);
  }
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

absl::StatusOr<Dns> DnsFromJson(const rapidjson::Value& value, absl::string_view path) {
  if (!value.IsObject()) return DecodeError(path, "must be an object");
  JsonFields fields(value, std::string(path));
  Dns dns;
  fields.StringArray("nameservers", dns.nameservers);
  fields.String("domain", dns.domain);
  fields.StringArray("search", dns.search);
  fields.StringArray("options", dns.options);
  if (!fields.status().ok()) return fields.status();
  return dns;
}

absl::StatusOr<Result> ResultFromJson(const rapidjson::Value& value, absl::string_view path) {
  if (!value.IsObject()) return DecodeError(path, "must be an object");
  JsonFields fields(value, std::string(path));
  Result result;
  fields.String("cniVersion", result.cni_version);
  if (!fields.status().ok()) return fields.status();
  if (absl::Status status = DecodeArray(fields, "interfaces", result.interfaces, InterfaceFromJson);
      !status.ok()) {
    return status;
  }
  if (absl::Status status = DecodeArray(fields, "ips", result.ips, IpFromJson); !status.ok()) return status;
  if (absl::Status status = DecodeArray(fields, "routes", result.routes, RouteFromJson); !status.ok()) {
    return status;
  }
  for (size_t i = 0; i < result.ips.size(); ++i) {
    const std::optional<int>& interface = result.ips[i].interface;
    // An index is only meaningful against the interfaces list; IPAM results have neither.
    if (interface.has_value() && !result.interfaces.empty() &&
        static_cast<size_t>(*interface) >= result.interfaces.size()) {
      return DecodeError(
          absl::StrCat(fields.PathOf("ips"), "[", i, "].interface"),
          absl::StrCat("index ", *interface, " but only ", result.interfaces.size(), " interfaces"));
    }
  }
  if (const rapidjson::Value* dns = fields.Object("dns")) {
    absl::StatusOr<Dns> parsed = DnsFromJson(*dns, fields.PathOf("dns"));
    if (!parsed.ok()) return parsed.status();
    result.dns = *std::move(parsed);
  }
  if (!fields.status().ok()) return fields.status();
  return result;
}

absl::StatusOr<Result> ParseResult(absl::string_view json) {
  rapidjson::Document document;
  if (absl::Status status = ParseJsonObject(json, "result", document); !status.ok()) return status;
  return ResultFromJson(document, "result");
}

}  // namespace weir::cni
