#pragma once

#include "passes/ModelStats.h"

#include <string>

namespace cnnc::tools {

/// The `cnnc info` report: a table, one row per layer, and totals.
std::string formatInfo(const Function &f, const ModelStats &s);
std::string humanBytes(int64_t b);
std::string grouped(int64_t v); // 138357544 -> "138,357,544"

} // namespace cnnc::tools
