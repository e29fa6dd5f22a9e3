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
static_assert(offsetof(weir_endpoint_value, pod_id) == 16);
static_assert(sizeof(weir_metric_value) == 16);

#include "bpf/abi/service.h"

static_assert(sizeof(weir_service_key) == 24);
static_assert(offsetof(weir_service_key, port) == 16);
static_assert(offsetof(weir_service_key, scope) == 20);
static_assert(sizeof(weir_service_value) == 16);
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

static_assert(sizeof(weir_event) == 96);
static_assert(offsetof(weir_event, sport) == 56);
static_assert(offsetof(weir_event, type) == 64);
static_assert(offsetof(weir_event, ifindex) == 68);
static_assert(offsetof(weir_event, socket_cookie) == 80);
static_assert(offsetof(weir_event, cgroup_id) == 88);

#include "bpf/abi/constants.h"

static_assert(weir_maglev_size_valid(WEIR_MAGLEV_DEFAULT_SIZE),
              "the default Maglev table size must be valid");
