#include "proxy/k8s/kube_resources.h"

#include "absl/strings/str_cat.h"
#include "proxy/k8s/decode.h"
#include "proxy/k8s/kube_json.h"

namespace weir::k8s {
namespace {

absl::string_view ToAbsl(std::string_view text) { return absl::string_view(text.data(), text.size()); }

// Reads fields of one object, keeping the first problem with its path (like decode.cc's Reader).
class JsonReader {
 public:
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  void Fail(std::string_view path, std::string_view message) {
    if (ok()) error_ = absl::StrCat(ToAbsl(path), ": ", ToAbsl(message));
  }

  // A member that must be an object when present.
  const rapidjson::Value* Object(const rapidjson::Value& parent, const char* name, std::string_view path) {
    const rapidjson::Value* member = JsonMember(parent, name);
    if (member == nullptr || member->IsNull()) return nullptr;
    if (!member->IsObject()) {
      Fail(path, "expected a map");
      return nullptr;
    }
    return member;
  }
  const rapidjson::Value* Array(const rapidjson::Value& parent, const char* name, std::string_view path) {
    const rapidjson::Value* member = JsonMember(parent, name);
    if (member == nullptr || member->IsNull()) return nullptr;
    if (!member->IsArray()) {
      Fail(path, "expected a list");
      return nullptr;
    }
    return member;
  }
  std::string String(const rapidjson::Value& parent, const char* name, std::string_view path) {
    const rapidjson::Value* member = JsonMember(parent, name);
    if (member == nullptr || member->IsNull()) return "";
    if (!member->IsString()) {
      Fail(path, "expected a string");
      return "";
    }
    return std::string(member->GetString(), member->GetStringLength());
  }
  bool Bool(const rapidjson::Value& parent, const char* name, std::string_view path) {
    const rapidjson::Value* member = JsonMember(parent, name);
    if (member == nullptr || member->IsNull()) return false;
    if (!member->IsBool()) {
      Fail(path, "expected a boolean");
      return false;
    }
    return member->GetBool();
  }

 private:
  std::string error_;
};

ObjectMeta MetaFromJson(JsonReader& reader, const rapidjson::Value& object, bool namespaced) {
  ObjectMeta meta;
  const rapidjson::Value* metadata = reader.Object(object, "metadata", "metadata");
  if (metadata == nullptr) {
    reader.Fail("metadata.name", "required");
    return meta;
  }
  meta.name = reader.String(*metadata, "name", "metadata.name");
  if (meta.name.empty()) reader.Fail("metadata.name", "required");
  if (namespaced) {
    meta.namespace_ = reader.String(*metadata, "namespace", "metadata.namespace");
    if (meta.namespace_.empty()) meta.namespace_ = "default";
  }
  meta.uid = reader.String(*metadata, "uid", "metadata.uid");
  meta.resource_version = reader.String(*metadata, "resourceVersion", "metadata.resourceVersion");
  if (const rapidjson::Value* labels = reader.Object(*metadata, "labels", "metadata.labels")) {
    for (const auto& label : labels->GetObject()) {
      const std::string key(label.name.GetString(), label.name.GetStringLength());
      if (!label.value.IsString()) {
        reader.Fail(absl::StrCat("metadata.labels.", key), "expected a string");
        continue;
      }
      meta.labels[key] = std::string(label.value.GetString(), label.value.GetStringLength());
    }
  }
  return meta;
}

// The frame of the decoders below: metadata, then the body, and errors labelled with the object.
template <typename T, typename DecodeBody>
absl::StatusOr<T> DecodeWith(const char* kind, const rapidjson::Value& object, bool namespaced,
                             DecodeBody body) {
  if (!object.IsObject()) return absl::InvalidArgumentError(absl::StrCat(kind, ": expected a map"));
  JsonReader reader;
  T decoded;
  decoded.metadata = MetaFromJson(reader, object, namespaced);
  body(reader, object, decoded);
  if (!reader.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kind, " ", decoded.metadata.Describe(), ": ", reader.error()));
  }
  return decoded;
}

void DecodeDaemonSetBody(JsonReader& reader, const rapidjson::Value& object, DaemonSet& daemon_set) {
  if (const rapidjson::Value* metadata = reader.Object(object, "metadata", "metadata")) {
    daemon_set.deleting =
        !reader.String(*metadata, "deletionTimestamp", "metadata.deletionTimestamp").empty();
  }
}

// decode.h's decoders read yaml-cpp nodes; hand them a converted tree.
template <typename T>
absl::StatusOr<T> ViaYaml(absl::StatusOr<T> (*decode)(const YAML::Node&), const rapidjson::Value& object) {
  return decode(JsonToYaml(object));
}

}  // namespace

absl::StatusOr<Service> ServiceFromJson(const rapidjson::Value& object) {
  return ViaYaml(&DecodeService, object);
}

absl::StatusOr<EndpointSlice> EndpointSliceFromJson(const rapidjson::Value& object) {
  return ViaYaml(&DecodeEndpointSlice, object);
}

absl::StatusOr<Node> NodeFromJson(const rapidjson::Value& object) { return ViaYaml(&DecodeNode, object); }

absl::StatusOr<DaemonSet> DaemonSetFromJson(const rapidjson::Value& object) {
  return DecodeWith<DaemonSet>("DaemonSet", object, /*namespaced=*/true, DecodeDaemonSetBody);
}

absl::StatusOr<Pod> PodFromJson(const rapidjson::Value& object) { return ViaYaml(&DecodePod, object); }

absl::StatusOr<Namespace> NamespaceFromJson(const rapidjson::Value& object) {
  return ViaYaml(&DecodeNamespace, object);
}

absl::StatusOr<NetworkPolicy> NetworkPolicyFromJson(const rapidjson::Value& object) {
  return ViaYaml(&DecodeNetworkPolicy, object);
}

ResourceQuery ServicesResource() { return {.path = "/api/v1/services"}; }
ResourceQuery EndpointSlicesResource() { return {.path = "/apis/discovery.k8s.io/v1/endpointslices"}; }
ResourceQuery NodesResource() { return {.path = "/api/v1/nodes"}; }
ResourceQuery DaemonSetResource(const std::string& namespace_, const std::string& name) {
  return {.path = absl::StrCat("/apis/apps/v1/namespaces/", namespace_, "/daemonsets"),
          .field_selector = absl::StrCat("metadata.name=", name)};
}

ResourceQuery PodsResource() { return {.path = "/api/v1/pods"}; }
ResourceQuery PodsOnNodeResource(const std::string& node_name) {
  return {.path = "/api/v1/pods", .field_selector = absl::StrCat("spec.nodeName=", node_name)};
}
ResourceQuery NamespacesResource() { return {.path = "/api/v1/namespaces"}; }
ResourceQuery NetworkPoliciesResource() { return {.path = "/apis/networking.k8s.io/v1/networkpolicies"}; }

}  // namespace weir::k8s
