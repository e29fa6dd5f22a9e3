// Label selector matching (meta/v1 LabelSelector semantics), shared by policy subjects and peers.
#pragma once

#include <map>
#include <string>

#include "proxy/k8s/objects.h"

namespace weir::policy {

using Labels = std::map<std::string, std::string>;

// True when every matchLabels pair and every matchExpressions requirement holds. An empty selector
// matches every label set. NotIn and DoesNotExist also hold when the key is absent, as in Kubernetes.
bool SelectorMatches(const k8s::LabelSelector& selector, const Labels& labels);

}  // namespace weir::policy
