// A line diff for IR dumps (`cnnc dump --print-changed=diff`): the unified format of
// `diff -u` and LLVM's -print-changed=diff, computed by a longest common subsequence.
#pragma once

#include <string>

namespace cnnc::tools {

/// The unified diff turning `a` into `b` (headers `--- aName`, `+++ bName`, hunks with
/// `context` unchanged lines around each change); "" when the texts are equal.
std::string unifiedDiff(const std::string &a, const std::string &b, const std::string &aName,
                        const std::string &bName, int context = 3);

} // namespace cnnc::tools
