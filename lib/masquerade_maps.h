// The egress masquerade maps (bpf/abi/masquerade.h) as typed maps.
#pragma once

#include <cstdint>

#include "bpf/abi/masquerade.h"
#include "lib/bpf_map.h"

namespace weir {

// In-cluster destinations, an LPM trie of both families; the value is unused.
using NonMasqueradeMap = BpfMap<weir_nonmasq_key, uint32_t>;
// The ifindexes of the uplinks; the value is unused.
using UplinksMap = BpfMap<uint32_t, uint32_t>;

}  // namespace weir
