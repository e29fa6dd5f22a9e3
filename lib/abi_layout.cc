// The kernel/userspace structs are defined once, in bpf/abi; this pins their layout so that a change
// on one side that the other would read differently fails the build instead of the datapath.
#include <cstddef>

#include "bpf/abi/endpoint.h"
#include "bpf/abi/metrics.h"

static_assert(sizeof(weir_addr) == 16);
static_assert(sizeof(weir_endpoint_key) == 20);
static_assert(offsetof(weir_endpoint_key, family) == 16);
static_assert(sizeof(weir_endpoint_value) == 24);
static_assert(offsetof(weir_endpoint_value, pod_mac) == 4);
static_assert(offsetof(weir_endpoint_value, flags) == 10);
static_assert(offsetof(weir_endpoint_value, policy_id) == 12);
static_assert(offsetof(weir_endpoint_value, pod_id) == 16);
static_assert(sizeof(weir_metric_value) == 16);

#include "bpf/abi/service.h"

static_assert(sizeof(weir_service_key) == 24);
static_assert(offsetof(weir_service_key, port) == 16);
static_assert(offsetof(weir_service_key, scope) == 20);
static_assert(sizeof(weir_inline_backend) == 24);
static_assert(offsetof(weir_inline_backend, id) == 20);
static_assert(offsetof(weir_service_value, inline_count) == 12);
static_assert(offsetof(weir_service_value, backends) == 16);
static_assert(sizeof(weir_service_value) == 16 + 24 * WEIR_SERVICE_INLINE_BACKENDS);
static_assert(sizeof(weir_slot_key) == 8);
static_assert(sizeof(weir_backend) == 24);
static_assert(offsetof(weir_backend, flags) == 20);
static_assert(sizeof(weir_affinity_key) == 24);
static_assert(sizeof(weir_affinity_value) == 16);
static_assert(sizeof(weir_sock_revnat_key) == 32);
static_assert(sizeof(weir_sock_revnat_value) == 24);

#include "bpf/abi/conntrack.h"

static_assert(sizeof(weir_ct_key) == 40);
static_assert(offsetof(weir_ct_key, sport) == 32);
static_assert(sizeof(weir_ct_value) == 56);
static_assert(offsetof(weir_ct_value, nat_port) == 32);
static_assert(offsetof(weir_ct_value, backend_id) == 40);
static_assert(offsetof(weir_ct_value, last_seen_ns) == 48);

#include "bpf/abi/masquerade.h"

static_assert(sizeof(weir_nonmasq_key) == 24);
static_assert(offsetof(weir_nonmasq_key, family) == 4);
static_assert(offsetof(weir_nonmasq_key, addr) == 8);

#include "bpf/abi/events.h"

static_assert(sizeof(weir_event) == 104);
static_assert(offsetof(weir_event, sport) == 56);
static_assert(offsetof(weir_event, type) == 64);
static_assert(offsetof(weir_event, ifindex) == 68);
static_assert(offsetof(weir_event, socket_cookie) == 80);
static_assert(offsetof(weir_event, cgroup_id) == 88);
static_assert(offsetof(weir_event, direction) == 66);
static_assert(offsetof(weir_event, policy_id) == 96);
static_assert(offsetof(weir_event, peer_identity) == 100);

#include "bpf/abi/policy.h"

static_assert(sizeof(weir_policy_peer_key) == 24);
static_assert(sizeof(weir_policy_host_key) == 20);
static_assert(offsetof(weir_policy_host_key, addr) == 4);
static_assert(offsetof(weir_policy_peer_key, family) == 4);
static_assert(offsetof(weir_policy_peer_key, addr) == 8);
static_assert(sizeof(weir_policy_rule_key) == 16);
static_assert(offsetof(weir_policy_rule_key, policy_id) == 4);
static_assert(offsetof(weir_policy_rule_key, peer) == 8);
static_assert(offsetof(weir_policy_rule_key, direction) == 12);
static_assert(offsetof(weir_policy_rule_key, proto) == 13);
static_assert(offsetof(weir_policy_rule_key, port) == 14);
// The prefix lengths name byte boundaries of the key's data (after prefixlen).
static_assert(WEIR_POLICY_RULE_FIXED_BITS == 8 * (offsetof(weir_policy_rule_key, proto) - 4));
static_assert(WEIR_POLICY_RULE_PROTO_BITS == 8 * (offsetof(weir_policy_rule_key, port) - 4));
static_assert(WEIR_POLICY_RULE_FULL_BITS == 8 * (sizeof(weir_policy_rule_key) - 4));
static_assert(sizeof(weir_policy_rule_value) == 4);
static_assert(sizeof(weir_policy_cidr_key) == 28);
static_assert(offsetof(weir_policy_cidr_key, addr) == 12);
static_assert(WEIR_POLICY_CIDR_FIXED_BITS == 8 * (offsetof(weir_policy_cidr_key, addr) - 4));
static_assert(WEIR_POLICY_PEER_FAMILY_BITS == 8 * (offsetof(weir_policy_peer_key, addr) - 4));
static_assert(sizeof(weir_policy_ct_value) == 16);
static_assert(sizeof(weir_policy_counters) == 48);

#include "bpf/abi/constants.h"

static_assert(weir_maglev_size_valid(WEIR_MAGLEV_DEFAULT_SIZE),
              "the default Maglev table size must be valid");
