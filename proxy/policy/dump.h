// A readable, stable text form of identities and endpoint policies: the golden tests' expected
// output, and what `weirctl policy` will show.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "proxy/policy/endpoint_policy.h"
#include "proxy/policy/identity.h"

namespace weir::policy {

// How an identity is written: its number (golden files), or its key (to compare two computations
// that numbered identities differently).
using IdentityNamer = std::function<std::string(Identity)>;
IdentityNamer NumberNamer();
IdentityNamer KeyNamer(const IdentityAllocator& identities);

// One allowed entry: "identity 257 TCP 80-81", "cidr 10.0.0.0/8 except 10.1.0.0/16 all protocols".
std::string DumpEntry(const AllowEntry& entry, const IdentityNamer& name_of);

// One line per allocated identity: "identity 256: ns x {...} {...}".
std::string DumpIdentities(const IdentityAllocator& identities);

// "endpoint ns/name identity N addresses ...", then per direction either "not isolated" or the
// isolating policies and one line per allowed entry, e.g. "allow identity 257 TCP 80-81".
std::string DumpEndpoints(const std::map<ObjectRef, EndpointPolicy>& endpoints, const IdentityNamer& name_of);

}  // namespace weir::policy
