#include "proxy/policy/label_selector.h"

#include <algorithm>

namespace weir::policy {
namespace {

bool RequirementHolds(const k8s::LabelSelectorRequirement& requirement, const Labels& labels) {
  const auto found = labels.find(requirement.key);
  const bool present = found != labels.end();
  const auto listed = [&] {
    return present && std::find(requirement.values.begin(), requirement.values.end(), found->second) !=
                          requirement.values.end();
  };
  switch (requirement.op) {
    case k8s::SelectorOperator::kIn: return listed();
    case k8s::SelectorOperator::kNotIn: return !listed();
    case k8s::SelectorOperator::kExists: return present;
    case k8s::SelectorOperator::kDoesNotExist: return !present;
  }
  return false;
}

}  // namespace

bool SelectorMatches(const k8s::LabelSelector& selector, const Labels& labels) {
  for (const auto& [key, value] : selector.match_labels) {
    const auto found = labels.find(key);
    if (found == labels.end() || found->second != value) return false;
  }
  return std::all_of(selector.match_expressions.begin(), selector.match_expressions.end(),
                     [&](const k8s::LabelSelectorRequirement& requirement) {
                       return RequirementHolds(requirement, labels);
                     });
}

}  // namespace weir::policy
