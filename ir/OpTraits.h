// Ops.def's traits at compile time (OpInfo has them at run time, parsed from the same
// strings), for the per-op tables whose entry an op needs exactly when it has a trait.
#pragma once

#include "ir/IR.h"

#include <algorithm>
#include <string_view>

namespace cnnc {

/// Ops.def's trait words at compile time, for the per-op tables whose entry an op needs
/// exactly when it has a trait (a FLOP formula for `macs`, a batch rule for `batch:custom`):
/// such a table is built by an X-macro over Ops.def that instantiates the entry of every op
/// with the trait, so a missing one fails the build naming the op and the table.
namespace detail {
inline constexpr std::string_view kOpTraits[] = {
#define OP(Enum, Mnemonic, Operands, Attrs, Traits, Doc, Example) Traits,
#include "ir/Ops.def"
#undef OP
};
} // namespace detail
constexpr bool opHasTrait(OpKind k, std::string_view trait) {
  const std::string_view s = detail::kOpTraits[(size_t)k];
  for (size_t i = 0; i < s.size();) {
    const size_t end = std::min(s.find(' ', i), s.size());
    if (s.substr(i, end - i) == trait)
      return true;
    i = end + 1;
  }
  return false;
}

} // namespace cnnc
