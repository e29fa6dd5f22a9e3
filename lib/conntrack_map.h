// The conntrack map (bpf/abi/conntrack.h) as a typed map: one entry per direction of a translated
// flow. The datapath creates and refreshes entries; the agent's collector removes them.
#pragma once

#include "bpf/abi/conntrack.h"
#include "lib/bpf_map.h"

namespace weir {

using ConntrackMap = BpfMap<weir_ct_key, weir_ct_value>;

}  // namespace weir
