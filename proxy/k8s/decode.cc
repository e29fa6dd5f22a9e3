#include "proxy/k8s/decode.h"

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "spdlog/spdlog.h"

namespace weir::k8s {
namespace {

// A node and its path inside the object ("spec.ports[1].port"), so errors can say where.
// An absent key and an explicit null are the same to Kubernetes, and here.
// Never assign one Field to another: YAML::Node assignment writes through to the referenced node.
struct Field {
  YAML::Node node;
  std::string path;

  bool absent() const { return !node.IsDefined() || node.IsNull(); }
};

Field Child(const Field& parent, const char* key) {
  std::string path = parent.path.empty() ? std::string(key) : absl::StrCat(parent.path, ".", key);
  // Only maps have members; a non-map parent was already reported by whoever read it as a map.
  if (!parent.node.IsDefined() || !parent.node.IsMap()) return {YAML::Node(), std::move(path)};
  // A missing key yields an "invalid" node on which most calls throw; use a plain null instead.
  const YAML::Node child = parent.node[key];
  return {child.IsDefined() ? child : YAML::Node(), std::move(path)};
}

const char* KindOfNode(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return "a scalar";
    default: return "null";
  }
}

// Typed reads that never throw and keep the first problem, so a decoder reads every field
// straight through and checks ok() once at the end. Absent fields yield nullopt / empty values.
class Reader {
 public:
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  void Fail(const Field& field, std::string_view message) {
    if (ok()) error_ = absl::StrCat(field.path, ": ", absl::string_view(message.data(), message.size()));
  }

  // True for a present map; a present non-map is an error.
  bool Map(const Field& field) {
    if (field.absent()) return false;
    if (field.node.IsMap()) return true;
    Fail(field, absl::StrCat("expected a map, got ", KindOfNode(field.node)));
    return false;
  }

  std::vector<Field> Items(const Field& field) {
    std::vector<Field> items;
    if (field.absent()) return items;
    if (!field.node.IsSequence()) {
      Fail(field, absl::StrCat("expected a list, got ", KindOfNode(field.node)));
      return items;
    }
    for (size_t i = 0; i < field.node.size(); ++i) {
      items.push_back({field.node[i], absl::StrCat(field.path, "[", i, "]")});
    }
    return items;
  }

  std::optional<std::string> Scalar(const Field& field) {
    if (field.absent()) return std::nullopt;
    if (!field.node.IsScalar()) {
      Fail(field, absl::StrCat("expected a string, got ", KindOfNode(field.node)));
      return std::nullopt;
    }
    return field.node.Scalar();
  }

  std::string String(const Field& field) { return Scalar(field).value_or(""); }

  std::optional<int64_t> Int(const Field& field, int64_t min, int64_t max) {
    std::optional<std::string> text = Scalar(field);
    if (!text) return std::nullopt;
    int64_t value = 0;
    if (!absl::SimpleAtoi(*text, &value)) {
      Fail(field, absl::StrCat("\"", *text, "\" is not an integer"));
      return std::nullopt;
    }
    if (value < min || value > max) {
      Fail(field, absl::StrCat(value, " is not in ", min, "-", max));
      return std::nullopt;
    }
    return value;
  }

  std::optional<bool> Bool(const Field& field) {
    std::optional<std::string> text = Scalar(field);
    if (!text) return std::nullopt;
    bool value = false;
    if (!YAML::convert<bool>::decode(field.node, value)) {
      Fail(field, absl::StrCat("\"", *text, "\" is not a boolean"));
      return std::nullopt;
    }
    return value;
  }

  std::optional<IpAddress> Ip(const Field& field) {
    std::optional<std::string> text = Scalar(field);
    if (!text) return std::nullopt;
    absl::StatusOr<IpAddress> address = IpAddress::Parse(*text);
    if (!address.ok()) {
      Fail(field, absl::StrCat("invalid IP address \"", *text, "\""));
      return std::nullopt;
    }
    return *address;
  }

  // One of the named values; an absent field or "" is nullopt (the caller's default).
  template <typename T>
  std::optional<T> Enum(const Field& field, std::initializer_list<std::pair<const char*, T>> values) {
    std::optional<std::string> text = Scalar(field);
    if (!text || text->empty()) return std::nullopt;
    std::string allowed;
    for (const auto& [name, value] : values) {
      if (*text == name) return value;
      absl::StrAppend(&allowed, allowed.empty() ? "" : ", ", name);
    }
    Fail(field, absl::StrCat("unknown value \"", *text, "\" (expected one of ", allowed, ")"));
    return std::nullopt;
  }

  std::map<std::string, std::string> StringMap(const Field& field) {
    std::map<std::string, std::string> result;
    if (!Map(field)) return result;
    for (const auto& entry : field.node) {
      const std::string key = entry.first.IsScalar() ? entry.first.Scalar() : std::string("?");
      std::optional<std::string> value = Scalar({entry.second, absl::StrCat(field.path, "[", key, "]")});
      if (value) result[key] = *value;
    }
    return result;
  }

 private:
  std::string error_;
};

std::optional<L4Proto> Protocol(Reader& reader, const Field& field) {
  return reader.Enum<L4Proto>(field,
                              {{"TCP", L4Proto::kTcp}, {"UDP", L4Proto::kUdp}, {"SCTP", L4Proto::kSctp}});
}

uint16_t Port(Reader& reader, const Field& field, int64_t min) {
  return static_cast<uint16_t>(reader.Int(field, min, 65535).value_or(0));
}

ObjectMeta DecodeMeta(Reader& reader, const Field& root, bool namespaced) {
  ObjectMeta meta;
  const Field metadata = Child(root, "metadata");
  reader.Map(metadata);
  meta.name = reader.String(Child(metadata, "name"));
  if (meta.name.empty()) reader.Fail(Child(metadata, "name"), "required");
  if (namespaced) {
    meta.namespace_ = reader.String(Child(metadata, "namespace"));
    if (meta.namespace_.empty()) meta.namespace_ = "default";
  }
  meta.uid = reader.String(Child(metadata, "uid"));
  meta.resource_version = reader.String(Child(metadata, "resourceVersion"));
  meta.labels = reader.StringMap(Child(metadata, "labels"));
  return meta;
}

// The frame shared by the decoders: metadata first (it names the object in errors), then
// the kind's own fields, and a YAML::Exception (should one escape yaml-cpp) becomes an error too.
template <typename T, typename DecodeBody>
absl::StatusOr<T> DecodeObject(const char* kind, const YAML::Node& node, bool namespaced,
                               DecodeBody decode_body) {
  std::string label = kind;
  try {
    if (!node.IsMap()) {
      return absl::InvalidArgumentError(absl::StrCat(kind, ": expected a map, got ", KindOfNode(node)));
    }
    Reader reader;
    const Field root{node, ""};
    T object;
    object.metadata = DecodeMeta(reader, root, namespaced);
    label = absl::StrCat(kind, " ", object.metadata.Describe());
    decode_body(reader, root, object);
    if (!reader.ok()) return absl::InvalidArgumentError(absl::StrCat(label, ": ", reader.error()));
    return object;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(label, ": ", e.what()));
  }
}

// ---- Service ----

// spec.clusterIPs wins over the older singular spec.clusterIP (the API keeps them consistent).
void DecodeClusterIps(Reader& reader, const Field& spec, Service& service) {
  std::vector<Field> fields = reader.Items(Child(spec, "clusterIPs"));
  if (fields.empty()) {
    const Field single = Child(spec, "clusterIP");
    if (!single.absent()) fields.push_back(single);
  }
  if (fields.size() > 2) reader.Fail(Child(spec, "clusterIPs"), "more than two addresses");
  for (const Field& field : fields) {
    const std::string text = reader.String(field);
    if (text == "None") {
      service.headless = true;
    } else if (!text.empty()) {
      std::optional<IpAddress> address = reader.Ip(field);
      if (!address) continue;
      for (const IpAddress& other : service.cluster_ips) {
        if (other.family() == address->family()) reader.Fail(field, "two addresses of the same family");
      }
      service.cluster_ips.push_back(*address);
    }
  }
  if (service.headless) service.cluster_ips.clear();
}

// A container port name as the API allows it (IANA_SVC_NAME): up to 15 of [a-z0-9-], with a letter.
bool IsPortName(const std::string& text) {
  if (text.empty() || text.size() > 15 || text.front() == '-' || text.back() == '-') return false;
  if (text.find("--") != std::string::npos) return false;
  bool has_letter = false;
  for (char c : text) {
    if (c >= 'a' && c <= 'z') {
      has_letter = true;
    } else if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '-') {
      return false;
    }
  }
  return has_letter;
}

TargetPort DecodeTargetPort(Reader& reader, const Field& field, uint16_t service_port) {
  TargetPort target;
  const std::string text = reader.String(field);
  const bool numeric = std::all_of(text.begin(), text.end(),
                                   [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); });
  if (!numeric) {
    if (IsPortName(text)) {
      target.name = text;
    } else {
      reader.Fail(field, absl::StrCat("\"", text, "\" is neither a port number nor a port name"));
    }
    return target;
  }
  // Absent or 0 means "same as port" (the API server's default).
  target.number = Port(reader, field, 0);
  if (target.number == 0) target.number = service_port;
  return target;
}

std::vector<ServicePort> DecodeServicePorts(Reader& reader, const Field& spec) {
  std::vector<ServicePort> ports;
  for (const Field& item : reader.Items(Child(spec, "ports"))) {
    if (!reader.Map(item)) {
      if (item.absent()) reader.Fail(item, "expected a map, got null");
      continue;
    }
    ServicePort port;
    port.name = reader.String(Child(item, "name"));
    port.protocol = Protocol(reader, Child(item, "protocol")).value_or(L4Proto::kTcp);
    const Field number = Child(item, "port");
    if (number.absent()) reader.Fail(number, "required");
    port.port = Port(reader, number, 1);
    port.target_port = DecodeTargetPort(reader, Child(item, "targetPort"), port.port);
    port.node_port = Port(reader, Child(item, "nodePort"), 0);
    ports.push_back(std::move(port));
  }
  return ports;
}

std::vector<LoadBalancerIngress> DecodeIngress(Reader& reader, const Field& root) {
  const Field status = Child(root, "status");
  const Field load_balancer = Child(status, "loadBalancer");
  reader.Map(status);
  reader.Map(load_balancer);
  std::vector<LoadBalancerIngress> ingress;
  for (const Field& item : reader.Items(Child(load_balancer, "ingress"))) {
    if (!reader.Map(item)) continue;
    LoadBalancerIngress entry;
    entry.ip = reader.Ip(Child(item, "ip"));
    entry.hostname = reader.String(Child(item, "hostname"));
    entry.ip_mode = reader
                        .Enum<LoadBalancerIpMode>(
                            Child(item, "ipMode"),
                            {{"VIP", LoadBalancerIpMode::kVip}, {"Proxy", LoadBalancerIpMode::kProxy}})
                        .value_or(LoadBalancerIpMode::kVip);
    ingress.push_back(std::move(entry));
  }
  return ingress;
}

void DecodeServiceBody(Reader& reader, const Field& root, Service& service) {
  const Field spec = Child(root, "spec");
  reader.Map(spec);
  service.type = reader
                     .Enum<ServiceType>(Child(spec, "type"), {{"ClusterIP", ServiceType::kClusterIP},
                                                              {"NodePort", ServiceType::kNodePort},
                                                              {"LoadBalancer", ServiceType::kLoadBalancer},
                                                              {"ExternalName", ServiceType::kExternalName}})
                     .value_or(ServiceType::kClusterIP);
  DecodeClusterIps(reader, spec, service);
  for (const Field& item : reader.Items(Child(spec, "ipFamilies"))) {
    std::optional<IpFamily> family =
        reader.Enum<IpFamily>(item, {{"IPv4", IpFamily::kV4}, {"IPv6", IpFamily::kV6}});
    if (family) service.ip_families.push_back(*family);
  }
  service.ports = DecodeServicePorts(reader, spec);
  for (const Field& item : reader.Items(Child(spec, "externalIPs"))) {
    if (std::optional<IpAddress> address = reader.Ip(item)) service.external_ips.push_back(*address);
  }
  service.session_affinity =
      reader
          .Enum<SessionAffinity>(Child(spec, "sessionAffinity"),
                                 {{"None", SessionAffinity::kNone}, {"ClientIP", SessionAffinity::kClientIP}})
          .value_or(SessionAffinity::kNone);
  const Field affinity_config = Child(spec, "sessionAffinityConfig");
  const Field client_ip = Child(affinity_config, "clientIP");
  reader.Map(affinity_config);
  reader.Map(client_ip);
  service.affinity_timeout_seconds =
      static_cast<uint32_t>(reader.Int(Child(client_ip, "timeoutSeconds"), 1, kMaxAffinityTimeoutSeconds)
                                .value_or(kDefaultAffinityTimeoutSeconds));
  const std::initializer_list<std::pair<const char*, TrafficPolicy>> policies = {
      {"Cluster", TrafficPolicy::kCluster}, {"Local", TrafficPolicy::kLocal}};
  service.external_traffic_policy = reader.Enum<TrafficPolicy>(Child(spec, "externalTrafficPolicy"), policies)
                                        .value_or(TrafficPolicy::kCluster);
  service.internal_traffic_policy = reader.Enum<TrafficPolicy>(Child(spec, "internalTrafficPolicy"), policies)
                                        .value_or(TrafficPolicy::kCluster);
  service.health_check_node_port = Port(reader, Child(spec, "healthCheckNodePort"), 0);
  const Field load_balancer_ip = Child(spec, "loadBalancerIP");
  // Only a request to the cloud provider, never programmed, and the API server keeps values it merely
  // warns about (e.g. a leading zero): an unreadable one must not cost the whole Service.
  if (std::string requested = reader.String(load_balancer_ip); !requested.empty()) {
    if (auto address = IpAddress::Parse(requested); address.ok()) service.load_balancer_ip = *address;
  }
  service.traffic_distribution = reader.String(Child(spec, "trafficDistribution"));
  service.external_name = reader.String(Child(spec, "externalName"));
  service.load_balancer_ingress = DecodeIngress(reader, root);
}

// ---- EndpointSlice ----

std::vector<std::string> HintNames(Reader& reader, const Field& list) {
  std::vector<std::string> names;
  for (const Field& item : reader.Items(list)) {
    if (!reader.Map(item)) continue;
    const std::string name = reader.String(Child(item, "name"));
    if (!name.empty()) names.push_back(name);
  }
  return names;
}

Endpoint DecodeEndpoint(Reader& reader, const Field& item, AddressType address_type) {
  Endpoint endpoint;
  const Field addresses = Child(item, "addresses");
  const std::vector<Field> address_fields = reader.Items(addresses);
  if (address_fields.empty()) reader.Fail(addresses, "at least one address is required");
  const IpFamily family = address_type == AddressType::kIPv6 ? IpFamily::kV6 : IpFamily::kV4;
  for (const Field& field : address_fields) {
    std::optional<IpAddress> address = reader.Ip(field);
    if (!address) continue;
    if (address->family() != family) {
      reader.Fail(field, absl::StrCat(address->ToString(), " does not match addressType"));
      continue;
    }
    endpoint.addresses.push_back(*address);
  }
  const Field conditions = Child(item, "conditions");
  reader.Map(conditions);
  endpoint.conditions.ready = reader.Bool(Child(conditions, "ready")).value_or(true);
  endpoint.conditions.serving = reader.Bool(Child(conditions, "serving")).value_or(true);
  endpoint.conditions.terminating = reader.Bool(Child(conditions, "terminating")).value_or(false);
  endpoint.node_name = reader.String(Child(item, "nodeName"));
  endpoint.zone = reader.String(Child(item, "zone"));
  const Field hints = Child(item, "hints");
  reader.Map(hints);
  endpoint.zone_hints = HintNames(reader, Child(hints, "forZones"));
  endpoint.node_hints = HintNames(reader, Child(hints, "forNodes"));
  return endpoint;
}

// An unreadable trigger time only costs one latency sample: it is logged, not fatal to the slice.
std::optional<std::chrono::system_clock::time_point> TriggerTime(Reader& reader, const Field& root) {
  const Field field = Child(Child(Child(root, "metadata"), "annotations"),
                            "endpoints.kubernetes.io/last-change-trigger-time");
  const std::string text = reader.String(field);
  if (text.empty()) return std::nullopt;
  absl::Time parsed;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &parsed, &error)) {
    spdlog::debug("{}: \"{}\": {}", field.path, text, error);
    return std::nullopt;
  }
  return absl::ToChronoTime(parsed);
}

void DecodeEndpointSliceBody(Reader& reader, const Field& root, EndpointSlice& slice) {
  slice.last_change_trigger_time = TriggerTime(reader, root);
  const Field address_type = Child(root, "addressType");
  if (address_type.absent()) reader.Fail(address_type, "required");
  slice.address_type = reader
                           .Enum<AddressType>(address_type, {{"IPv4", AddressType::kIPv4},
                                                             {"IPv6", AddressType::kIPv6},
                                                             {"FQDN", AddressType::kFqdn}})
                           .value_or(AddressType::kIPv4);
  for (const Field& item : reader.Items(Child(root, "ports"))) {
    if (!reader.Map(item)) continue;
    EndpointPort port;
    port.name = reader.String(Child(item, "name"));
    port.protocol = Protocol(reader, Child(item, "protocol")).value_or(L4Proto::kTcp);
    if (std::optional<int64_t> number = reader.Int(Child(item, "port"), 1, 65535)) {
      port.port = static_cast<uint16_t>(*number);
    }
    slice.ports.push_back(std::move(port));
  }
  // weir does not resolve names: FQDN slices keep their ports and metadata but no endpoints.
  if (slice.address_type == AddressType::kFqdn) return;
  for (const Field& item : reader.Items(Child(root, "endpoints"))) {
    if (!reader.Map(item)) {
      if (item.absent()) reader.Fail(item, "expected a map, got null");
      continue;
    }
    slice.endpoints.push_back(DecodeEndpoint(reader, item, slice.address_type));
  }
}

// ---- Node ----

void DecodeNodeBody(Reader& reader, const Field& root, Node& node) {
  const Field spec = Child(root, "spec");
  reader.Map(spec);
  std::vector<Field> cidrs = reader.Items(Child(spec, "podCIDRs"));
  if (cidrs.empty() && !Child(spec, "podCIDR").absent()) cidrs.push_back(Child(spec, "podCIDR"));
  for (const Field& field : cidrs) {
    const std::string text = reader.String(field);
    absl::StatusOr<IpPrefix> prefix = IpPrefix::Parse(text);
    if (prefix.ok()) {
      node.pod_cidrs.push_back(*prefix);
    } else {
      reader.Fail(field, absl::StrCat("invalid CIDR \"", text, "\""));
    }
  }
  const Field status = Child(root, "status");
  reader.Map(status);
  for (const Field& item : reader.Items(Child(status, "addresses"))) {
    if (!reader.Map(item)) continue;
    NodeAddress address;
    address.type = reader.String(Child(item, "type"));
    address.address = reader.String(Child(item, "address"));
    if (address.type == "InternalIP" || address.type == "ExternalIP")
      address.ip = reader.Ip(Child(item, "address"));
    node.addresses.push_back(std::move(address));
  }
}

// ---- Label selectors ----

LabelSelector DecodeSelector(Reader& reader, const Field& field) {
  LabelSelector selector;
  if (!reader.Map(field)) return selector;
  selector.match_labels = reader.StringMap(Child(field, "matchLabels"));
  for (const Field& item : reader.Items(Child(field, "matchExpressions"))) {
    if (!reader.Map(item)) {
      if (item.absent()) reader.Fail(item, "expected a map, got null");
      continue;
    }
    LabelSelectorRequirement requirement;
    const Field key = Child(item, "key");
    requirement.key = reader.String(key);
    if (requirement.key.empty()) reader.Fail(key, "required");
    const Field op = Child(item, "operator");
    if (op.absent()) reader.Fail(op, "required");
    requirement.op = reader
                         .Enum<SelectorOperator>(op, {{"In", SelectorOperator::kIn},
                                                      {"NotIn", SelectorOperator::kNotIn},
                                                      {"Exists", SelectorOperator::kExists},
                                                      {"DoesNotExist", SelectorOperator::kDoesNotExist}})
                         .value_or(SelectorOperator::kExists);
    const Field values = Child(item, "values");
    for (const Field& value : reader.Items(values)) requirement.values.push_back(reader.String(value));
    const bool takes_values =
        requirement.op == SelectorOperator::kIn || requirement.op == SelectorOperator::kNotIn;
    if (takes_values && requirement.values.empty()) reader.Fail(values, "required for In and NotIn");
    if (!takes_values && !requirement.values.empty())
      reader.Fail(values, "must be empty for Exists and DoesNotExist");
    selector.match_expressions.push_back(std::move(requirement));
  }
  return selector;
}

// ---- Namespace ----

void DecodeNamespaceBody(Reader&, const Field&, Namespace& ns) {
  ns.metadata.labels[kNamespaceNameLabel] = ns.metadata.name;
}

// ---- Pod ----

void DecodePodBody(Reader& reader, const Field& root, Pod& pod) {
  const Field spec = Child(root, "spec");
  reader.Map(spec);
  pod.node_name = reader.String(Child(spec, "nodeName"));
  pod.host_network = reader.Bool(Child(spec, "hostNetwork")).value_or(false);
  for (const Field& container : reader.Items(Child(spec, "containers"))) {
    if (!reader.Map(container)) continue;
    for (const Field& item : reader.Items(Child(container, "ports"))) {
      if (!reader.Map(item)) continue;
      ContainerPort port;
      const Field name = Child(item, "name");
      port.name = reader.String(name);
      if (!port.name.empty() && !IsPortName(port.name)) {
        reader.Fail(name, absl::StrCat("\"", port.name, "\" is not a valid port name"));
      }
      const Field number = Child(item, "containerPort");
      if (number.absent()) reader.Fail(number, "required");
      port.container_port = Port(reader, number, 1);
      port.protocol = Protocol(reader, Child(item, "protocol")).value_or(L4Proto::kTcp);
      pod.ports.push_back(std::move(port));
    }
  }
  // status.podIPs wins over the older singular status.podIP (the API keeps them consistent).
  const Field status = Child(root, "status");
  reader.Map(status);
  pod.phase = reader.String(Child(status, "phase"));
  std::vector<Field> ips;
  for (const Field& item : reader.Items(Child(status, "podIPs"))) {
    if (reader.Map(item)) ips.push_back(Child(item, "ip"));
  }
  if (ips.empty() && !Child(status, "podIP").absent()) ips.push_back(Child(status, "podIP"));
  for (const Field& field : ips) {
    if (reader.String(field).empty()) continue;
    std::optional<IpAddress> address = reader.Ip(field);
    if (!address) continue;
    for (const IpAddress& other : pod.pod_ips) {
      if (other.family() == address->family()) reader.Fail(field, "two addresses of the same family");
    }
    pod.pod_ips.push_back(*address);
  }
}

// ---- NetworkPolicy ----

std::optional<IpPrefix> Cidr(Reader& reader, const Field& field) {
  const std::string text = reader.String(field);
  if (text.empty()) {
    if (reader.ok()) reader.Fail(field, "required");
    return std::nullopt;
  }
  absl::StatusOr<IpPrefix> prefix = IpPrefix::Parse(text);
  if (!prefix.ok()) {
    reader.Fail(field, absl::StrCat("invalid CIDR \"", text, "\""));
    return std::nullopt;
  }
  return prefix->Network();
}

std::optional<IpBlock> DecodeIpBlock(Reader& reader, const Field& field) {
  if (!reader.Map(field)) return std::nullopt;
  std::optional<IpPrefix> cidr = Cidr(reader, Child(field, "cidr"));
  if (!cidr) return std::nullopt;
  IpBlock block{.cidr = *cidr, .except = {}};
  for (const Field& item : reader.Items(Child(field, "except"))) {
    std::optional<IpPrefix> except = Cidr(reader, item);
    if (!except) continue;
    // The API requires each except to be a strict subset of cidr.
    if (except->family() != cidr->family() || except->length() <= cidr->length() ||
        !cidr->Contains(except->address())) {
      reader.Fail(item, absl::StrCat(except->ToString(), " is not inside ", cidr->ToString()));
      continue;
    }
    block.except.push_back(*except);
  }
  return block;
}

std::vector<NetworkPolicyPeer> DecodePeers(Reader& reader, const Field& list) {
  std::vector<NetworkPolicyPeer> peers;
  for (const Field& item : reader.Items(list)) {
    if (!reader.Map(item)) {
      if (item.absent()) reader.Fail(item, "expected a map, got null");
      continue;
    }
    NetworkPolicyPeer peer;
    const Field pod_selector = Child(item, "podSelector");
    const Field namespace_selector = Child(item, "namespaceSelector");
    if (!pod_selector.absent()) peer.pod_selector = DecodeSelector(reader, pod_selector);
    if (!namespace_selector.absent()) peer.namespace_selector = DecodeSelector(reader, namespace_selector);
    peer.ip_block = DecodeIpBlock(reader, Child(item, "ipBlock"));
    const bool has_selector = peer.pod_selector || peer.namespace_selector;
    if (peer.ip_block && has_selector) {
      reader.Fail(item, "ipBlock cannot be combined with podSelector or namespaceSelector");
    } else if (!peer.ip_block && !has_selector && reader.ok()) {
      reader.Fail(item, "needs podSelector, namespaceSelector or ipBlock");
    }
    peers.push_back(std::move(peer));
  }
  return peers;
}

std::vector<NetworkPolicyPort> DecodePolicyPorts(Reader& reader, const Field& list) {
  std::vector<NetworkPolicyPort> ports;
  for (const Field& item : reader.Items(list)) {
    if (!reader.Map(item)) {
      if (item.absent()) reader.Fail(item, "expected a map, got null");
      continue;
    }
    NetworkPolicyPort port;
    port.protocol = Protocol(reader, Child(item, "protocol")).value_or(L4Proto::kTcp);
    const Field number = Child(item, "port");
    const std::string text = reader.String(number);
    if (!text.empty()) {
      const bool numeric = std::all_of(text.begin(), text.end(), [](char c) {
        return absl::ascii_isdigit(static_cast<unsigned char>(c));
      });
      if (numeric) {
        port.port = TargetPort{.number = Port(reader, number, 1), .name = ""};
      } else if (IsPortName(text)) {
        port.port = TargetPort{.number = 0, .name = text};
      } else {
        reader.Fail(number, absl::StrCat("\"", text, "\" is neither a port number nor a port name"));
      }
    }
    const Field end_port = Child(item, "endPort");
    if (std::optional<int64_t> end = reader.Int(end_port, 1, 65535)) {
      if (!port.port || !port.port->name.empty()) {
        reader.Fail(end_port, "needs a numeric port");
      } else if (*end < port.port->number) {
        reader.Fail(end_port, absl::StrCat(*end, " is less than port ", port.port->number));
      } else {
        port.end_port = static_cast<uint16_t>(*end);
      }
    }
    ports.push_back(std::move(port));
  }
  return ports;
}

std::vector<NetworkPolicyRule> DecodeRules(Reader& reader, const Field& list, const char* peers_key) {
  std::vector<NetworkPolicyRule> rules;
  for (const Field& item : reader.Items(list)) {
    NetworkPolicyRule rule;
    // An empty rule ("- {}") is valid: any peer, any port.
    if (!item.absent() && !reader.Map(item)) continue;
    rule.peers = DecodePeers(reader, Child(item, peers_key));
    rule.ports = DecodePolicyPorts(reader, Child(item, "ports"));
    rules.push_back(std::move(rule));
  }
  return rules;
}

void DecodeNetworkPolicyBody(Reader& reader, const Field& root, NetworkPolicy& policy) {
  const Field spec = Child(root, "spec");
  reader.Map(spec);
  // Required by the API, but {} (every pod of the namespace) is what an absent one would mean.
  policy.pod_selector = DecodeSelector(reader, Child(spec, "podSelector"));
  policy.ingress = DecodeRules(reader, Child(spec, "ingress"), "from");
  policy.egress = DecodeRules(reader, Child(spec, "egress"), "to");
  // Annotations are read for policies only: a pod's (kubectl's last-applied copy) can be large.
  // Anything but "true" enforces: a typo must not weaken a policy, nor skip it as undecodable.
  const std::map<std::string, std::string> annotations =
      reader.StringMap(Child(Child(root, "metadata"), "annotations"));
  auto audit = annotations.find(kPolicyAuditAnnotation);
  policy.audit = audit != annotations.end() && audit->second == "true";
  const Field types = Child(spec, "policyTypes");
  const std::vector<Field> type_items = reader.Items(types);
  if (type_items.empty()) {
    policy.ingress_type = true;
    policy.egress_type = !policy.egress.empty();
    return;
  }
  policy.ingress_type = false;
  policy.egress_type = false;
  for (const Field& item : type_items) {
    const std::optional<bool> ingress = reader.Enum<bool>(item, {{"Ingress", true}, {"Egress", false}});
    if (!ingress) {
      if (reader.ok()) reader.Fail(item, "expected Ingress or Egress");
      continue;
    }
    (*ingress ? policy.ingress_type : policy.egress_type) = true;
  }
}

// ---- Manifests ----

// The (apiVersion, kind) pairs weir decodes. Kind alone is not enough: Knative has a Service too.
enum class Known { kService, kEndpointSlice, kNode, kNamespace, kPod, kNetworkPolicy, kList, kOther };

Known Classify(const std::string& api_version, const std::string& kind) {
  if (api_version == "v1" && kind == "Service") return Known::kService;
  if (api_version == "discovery.k8s.io/v1" && kind == "EndpointSlice") return Known::kEndpointSlice;
  if (api_version == "v1" && kind == "Node") return Known::kNode;
  if (api_version == "v1" && kind == "Namespace") return Known::kNamespace;
  if (api_version == "v1" && kind == "Pod") return Known::kPod;
  if (api_version == "networking.k8s.io/v1" && kind == "NetworkPolicy") return Known::kNetworkPolicy;
  if (absl::EndsWith(kind, "List")) return Known::kList;
  return Known::kOther;
}

// What typed list items are when they omit apiVersion/kind, as API list responses do.
std::pair<std::string, std::string> ItemTypeOf(const std::string& list_api_version,
                                               const std::string& list_kind) {
  if (list_kind == "List") return {"", ""};
  return {list_api_version, list_kind.substr(0, list_kind.size() - 4)};
}

// One document of a YAML stream, and the (0-based) line of the whole text it starts on.
struct DocumentText {
  std::string text;
  int first_line = 0;
};

// True for a "---" or "..." document marker line (the marker, then a blank or the line's end).
bool IsMarkerLine(std::string_view line, std::string_view marker) {
  if (line.substr(0, 3) != marker) return false;
  return line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r' || line[3] == '\n';
}

// Splits a YAML stream into its documents, by hand rather than with YAML::LoadAll: yaml-cpp 0.7's
// LoadAll never returns on some invalid input (a lone ",") and allocates until the process dies
// (https://github.com/jbeder/yaml-cpp/issues/1040, fixed after 0.7). The split is exact: YAML
// forbids "---" and "..." at the start of a line inside any scalar, so those lines always end a
// document. A "---" line stays with the document it opens (it may carry content: "--- {a: 1}");
// a "..." line ends one and belongs to none.
std::vector<DocumentText> SplitDocuments(std::string_view text) {
  std::vector<DocumentText> documents(1);
  int line_number = 0;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end == std::string_view::npos ? text.size() : end + 1);
    text.remove_prefix(line.size());
    if (IsMarkerLine(line, "...")) {
      documents.push_back({.text = "", .first_line = line_number + 1});
    } else {
      if (IsMarkerLine(line, "---")) documents.push_back({.text = "", .first_line = line_number});
      documents.back().text.append(line.data(), line.size());
    }
    ++line_number;
  }
  return documents;
}

class ManifestDecoder {
 public:
  explicit ManifestDecoder(std::vector<absl::Status>* errors) : errors_(errors) {}

  void Decode(const YAML::Node& node, const std::string& where,
              const std::pair<std::string, std::string>& implied, int depth) {
    if (!node.IsDefined() || node.IsNull()) return;  // empty document, e.g. a trailing "---"
    if (!node.IsMap()) {
      return Report(
          absl::InvalidArgumentError(absl::StrCat(where, ": expected an object, got ", KindOfNode(node))));
    }
    Reader reader;
    const Field root{node, ""};
    std::string api_version = reader.String(Child(root, "apiVersion"));
    std::string kind = reader.String(Child(root, "kind"));
    if (!reader.ok()) return Report(absl::InvalidArgumentError(absl::StrCat(where, ": ", reader.error())));
    if (api_version.empty()) api_version = implied.first;
    if (kind.empty()) kind = implied.second;
    if (api_version.empty() || kind.empty()) {
      return Report(absl::InvalidArgumentError(absl::StrCat(where, ": apiVersion and kind are required")));
    }

    switch (Classify(api_version, kind)) {
      case Known::kService: return Keep(where, DecodeService(node));
      case Known::kEndpointSlice: return Keep(where, DecodeEndpointSlice(node));
      case Known::kNode: return Keep(where, DecodeNode(node));
      case Known::kNamespace: return Keep(where, DecodeNamespace(node));
      case Known::kPod: return Keep(where, DecodePod(node));
      case Known::kNetworkPolicy: return Keep(where, DecodeNetworkPolicy(node));
      case Known::kList: {
        if (depth >= kMaxListDepth) {
          return Report(absl::InvalidArgumentError(absl::StrCat(where, ": lists nested too deeply")));
        }
        const std::vector<Field> items = reader.Items(Child(root, "items"));
        if (!reader.ok()) {
          return Report(absl::InvalidArgumentError(absl::StrCat(where, " ", kind, ": ", reader.error())));
        }
        for (const Field& item : items) {
          Decode(item.node, absl::StrCat(where, " ", item.path), ItemTypeOf(api_version, kind), depth + 1);
        }
        return;
      }
      case Known::kOther: spdlog::debug("{}: skipping {} {}", where, api_version, kind); return;
    }
  }

  std::vector<Object> TakeObjects() { return std::move(objects_); }

  void Report(absl::Status error) {
    if (errors_ != nullptr) {
      errors_->push_back(std::move(error));
    } else {
      spdlog::warn("skipping a manifest object: {}", std::string(error.message()));
    }
  }

 private:
  static constexpr int kMaxListDepth = 4;

  template <typename T>
  void Keep(const std::string& where, absl::StatusOr<T> object) {
    if (object.ok()) {
      objects_.emplace_back(*std::move(object));
    } else {
      Report(absl::Status(object.status().code(), absl::StrCat(where, ": ", object.status().message())));
    }
  }

  std::vector<absl::Status>* errors_;
  std::vector<Object> objects_;
};

}  // namespace

absl::StatusOr<Service> DecodeService(const YAML::Node& object) {
  return DecodeObject<Service>("Service", object, /*namespaced=*/true, DecodeServiceBody);
}

absl::StatusOr<EndpointSlice> DecodeEndpointSlice(const YAML::Node& object) {
  return DecodeObject<EndpointSlice>("EndpointSlice", object, /*namespaced=*/true, DecodeEndpointSliceBody);
}

absl::StatusOr<Node> DecodeNode(const YAML::Node& object) {
  return DecodeObject<Node>("Node", object, /*namespaced=*/false, DecodeNodeBody);
}

absl::StatusOr<Namespace> DecodeNamespace(const YAML::Node& object) {
  return DecodeObject<Namespace>("Namespace", object, /*namespaced=*/false, DecodeNamespaceBody);
}

absl::StatusOr<Pod> DecodePod(const YAML::Node& object) {
  return DecodeObject<Pod>("Pod", object, /*namespaced=*/true, DecodePodBody);
}

absl::StatusOr<NetworkPolicy> DecodeNetworkPolicy(const YAML::Node& object) {
  return DecodeObject<NetworkPolicy>("NetworkPolicy", object, /*namespaced=*/true, DecodeNetworkPolicyBody);
}

namespace {

absl::StatusOr<YAML::Node> LoadDocument(const DocumentText& document) {
  try {
    return YAML::Load(document.text);
  } catch (const YAML::ParserException& e) {
    return absl::InvalidArgumentError(absl::StrCat("not valid YAML at line ",
                                                   document.first_line + e.mark.line + 1, ", column ",
                                                   e.mark.column + 1, ": ", e.msg));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("not valid YAML near line ", document.first_line + 1, ": ", e.what()));
  }
}

}  // namespace

absl::StatusOr<std::vector<Object>> DecodeManifests(std::string_view yaml_text,
                                                    std::vector<absl::Status>* object_errors) {
  ManifestDecoder decoder(object_errors);
  int document_number = 0;
  for (const DocumentText& document : SplitDocuments(yaml_text)) {
    absl::StatusOr<YAML::Node> loaded = LoadDocument(document);
    if (!loaded.ok()) return loaded.status();
    const YAML::Node& root = *loaded;
    if (!root.IsDefined() || root.IsNull()) continue;  // only comments, or an empty "---" section
    ++document_number;
    const std::string where = absl::StrCat("document ", document_number, " (line ",
                                           document.first_line + root.Mark().line + 1, ")");
    try {
      decoder.Decode(root, where, {"", ""}, 0);
    } catch (const YAML::Exception& e) {
      // The object decoders catch their own; this guards the list walking in between.
      decoder.Report(absl::InvalidArgumentError(absl::StrCat(where, ": ", e.what())));
    }
  }
  return decoder.TakeObjects();
}

}  // namespace weir::k8s
