// In-memory PolicyMaps for tests: holds the entries and logs every mutation in order, so tests
// can check both the final state and the order (rules before flags before deletions).
#pragma once

#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "proxy/policy_sync/policy_maps.h"

namespace weir::policy_sync {

class FakePolicyMaps : public PolicyMaps {
 public:
  absl::Status PutPeer(const weir_policy_peer_key& key, uint32_t identity) override;
  absl::Status PutRule(const weir_policy_rule_key& key) override;
  absl::Status PutCidr(const weir_policy_cidr_key& key, uint32_t cidr_class) override;
  absl::Status DeletePeer(const weir_policy_peer_key& key) override;
  absl::Status DeleteRule(const weir_policy_rule_key& key) override;
  absl::Status DeleteCidr(const weir_policy_cidr_key& key) override;
  absl::Status DeleteCounters(uint32_t policy_id) override;
  absl::StatusOr<std::optional<weir_endpoint_value>> GetEndpoint(const weir_endpoint_key& key) override;
  absl::Status PutEndpoint(const weir_endpoint_key& key, const weir_endpoint_value& value) override;
  absl::StatusOr<PolicyMapContents> ReadAll() const override;

  // Readable operations in order, e.g. "put rule policy 1 ingress identity 257 TCP 80".
  const std::vector<std::string>& operations() const { return operations_; }
  void ClearOperations() { operations_.clear(); }
  // The next `successful` mutations succeed, every later one fails until StopFailing().
  void FailAfter(size_t successful) { failures_start_after_ = successful; }
  void StopFailing() { failures_start_after_.reset(); }

  // Every entry as one sorted line per map entry: the golden tests' maps.txt.
  std::vector<std::string> DumpLines() const;
  size_t rule_count() const { return rules_.size(); }
  size_t cidr_count() const { return cidrs_.size(); }
  size_t peer_count() const { return peers_.size(); }

 private:
  template <typename Key>
  struct BytesLess {
    bool operator()(const Key& a, const Key& b) const { return std::memcmp(&a, &b, sizeof(Key)) < 0; }
  };
  absl::Status Record(std::string text);

  std::map<weir_policy_peer_key, uint32_t, BytesLess<weir_policy_peer_key>> peers_;
  std::map<weir_policy_rule_key, bool, BytesLess<weir_policy_rule_key>> rules_;
  std::map<weir_policy_cidr_key, uint32_t, BytesLess<weir_policy_cidr_key>> cidrs_;
  std::map<weir_endpoint_key, weir_endpoint_value, BytesLess<weir_endpoint_key>> endpoints_;
  std::vector<std::string> operations_;
  std::optional<size_t> failures_start_after_;
};

}  // namespace weir::policy_sync
