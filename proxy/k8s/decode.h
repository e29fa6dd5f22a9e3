// Decoding Kubernetes objects from YAML or JSON (yaml-cpp reads both) into proxy/k8s/objects.h.
// Objects come from the API server or from hand-written manifest files, so everything is checked:
// wrong types, invalid IPs, out-of-range ports and unknown enum values are errors that name the
// object and the field path, e.g. `Service default/web: spec.ports[1].port: 70000 is not in 1-65535`.
// Fields weir does not need are ignored.
#pragma once

#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proxy/k8s/objects.h"
#include "yaml-cpp/yaml.h"

namespace weir::k8s {

// Each decodes one object (the `kind` field is not checked: the caller chose the decoder).
// A missing metadata.namespace means "default", as kubectl assumes.
absl::StatusOr<Service> DecodeService(const YAML::Node& object);
absl::StatusOr<EndpointSlice> DecodeEndpointSlice(const YAML::Node& object);
absl::StatusOr<Node> DecodeNode(const YAML::Node& object);
// Adds the kubernetes.io/metadata.name label, as the API server does.
absl::StatusOr<Namespace> DecodeNamespace(const YAML::Node& object);
absl::StatusOr<Pod> DecodePod(const YAML::Node& object);
// Applies the policyTypes defaults and checks what the API validates (peers, ipBlock excepts, endPort).
absl::StatusOr<NetworkPolicy> DecodeNetworkPolicy(const YAML::Node& object);

// Decodes a multi-document YAML (or a JSON) text: Services, Nodes, Namespaces and Pods (v1),
// EndpointSlices (discovery.k8s.io/v1) and NetworkPolicies (networking.k8s.io/v1), also inside
// `kind: List` / ServiceList / ... items.
// Other kinds (and same-named kinds of other API groups, e.g. Knative's Service) are skipped.
// A bad object is skipped too and reported in `object_errors` when given, else logged: one typo
// must not take down every other Service of the file. Errors start with "document N (line L)",
// N counting non-empty documents from 1. Only text that is not YAML fails the call (the file is
// then in an unknown state, e.g. half-saved; the caller should keep what it had).
absl::StatusOr<std::vector<Object>> DecodeManifests(std::string_view yaml_text,
                                                    std::vector<absl::Status>* object_errors = nullptr);

}  // namespace weir::k8s
