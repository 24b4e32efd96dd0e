// Ops.def's traits at compile time (OpInfo has them at run time, parsed from the same
// strings), for the per-op tables whose entry an op needs exactly when it has a trait.
#pragma once

#include "ir/IR.h"

#include <algorithm>
#include <array>
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

/// A table indexed by OpKind, built when it compiles: `entry.operator()<OpKind::X>()` for every
/// op of Ops.def, in order. `entry` is a lambda template `[]<OpKind K>() -> T {...}` whose
/// `if constexpr (opHasTrait(K, ...))` picks the ops that need a function of their own,
/// `fn<K>`, declared `template <OpKind K> ... fn(...) = delete;` and specialised per op: a
/// missing one fails the build naming the op ("use of deleted function ... fn<OpKind::X>").
template <class Entry> constexpr auto opTable(Entry entry) {
  return std::array{
#define OP(Enum, Mnemonic, Operands, Attrs, Traits, Doc, Example)                                \
  entry.template operator()<OpKind::Enum>(),
#include "ir/Ops.def"
#undef OP
  };
}

/// Whether an op's result may be stored over one of its operands (codegen/Plan.cpp).
enum class InPlace : uint8_t {
  /// Never: it reads operand elements at other indices than the one it writes (a conv, a
  /// pooling window, a reduction), writes before it has read, or is not worth proving.
  No,
  /// Element i of the result reads only element i of each operand that has the result's
  /// type (others, such as a broadcast bias or a per-channel scale, are read at any index),
  /// and its lowering reads them before it writes element i: such an operand that dies at
  /// this node may give the result its block. Also what lets a fused group (PlanFuse.cpp)
  /// whose members are all SameIndex store over one of its outside operands.
  SameIndex,
};

/// Ops.def's `inplace` trait (codegen/Plan.cpp): the ops it marks are elementwise math (seed
/// eq. 12 and section 5's activations), their gradients and reduce_max's tie mask (one loop
/// that loads element i of each operand, then stores element i: EmitElementwise.cpp, alone,
/// broadcast or in a group), and batchnorm's y = x·a + b per channel (EmitReduce.cpp). An op
/// without it is never stored in place: safe for every op, so the column needs no entry per
/// op (a trait, like `view`), and adding an op costs no extra file.
constexpr InPlace opInPlace(OpKind k) {
  return opHasTrait(k, "inplace") ? InPlace::SameIndex : InPlace::No;
}

} // namespace cnnc
