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
