// The service load-balancing maps (bpf/abi/service.h) as typed maps: frontends, backend slots,
// backends, Maglev tables and session affinity.
#pragma once

#include <cstdint>
#include <vector>

#include "bpf/abi/service.h"
#include "lib/bpf_map.h"

namespace weir {

// Frontends: (address, port, protocol, scope) -> service id, backend count, flags.
using ServicesMap = BpfMap<weir_service_key, weir_service_value>;
// Backend slots: (service id, 1-based slot) -> backend id.
using SlotsMap = BpfMap<weir_slot_key, uint32_t>;
// Backends: backend id -> address, port, protocol, flags.
using BackendsMap = BpfMap<uint32_t, weir_backend>;
// Maglev lookup tables: service id -> backend id[table size]. One update replaces a whole table, so
// the datapath sees the old table or the new one, never a mix.
using MaglevMap = BpfMap<uint32_t, std::vector<uint32_t>>;
// sessionAffinity: (client, service id) -> the backend it last used.
using AffinityMap = BpfMap<weir_affinity_key, weir_affinity_value>;

// The table length the Maglev map was created with: tables of any other length are refused.
inline uint32_t MaglevTableSize(const MaglevMap& map) { return map.value_size() / sizeof(uint32_t); }

}  // namespace weir
