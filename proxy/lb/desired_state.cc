#include "proxy/lb/desired_state.h"

namespace weir::lb {

const char* ScopeName(Scope scope) { return scope == Scope::kInternal ? "internal" : "external"; }

}  // namespace weir::lb
