// The longest common subsequence of the lines that differ (common head and tail trimmed
// first: a pass changes a few regions of a long dump), by the textbook dynamic programme
// (Cormen et al., section 15.4). A training step's dump has a few thousand lines and a pass
// changes a fraction of them, so the table stays small; past kMaxCells the changed middle is
// shown as removed then added, still a correct diff.
#include "tools/TextDiff.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <sstream>
#include <vector>

namespace cnnc::tools {

namespace {

constexpr size_t kMaxCells = size_t(1) << 26; // 64 Mi cells of uint32 = 256 MiB at most

std::vector<std::string> lines(const std::string &s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);)
    out.push_back(l);
  return out;
}

enum class Edit : char { Same = ' ', Del = '-', Add = '+' };
struct Step {
  Edit e;
  size_t ai, bi; // line indices in a and b (the one not moved past is where it would be)
};

std::vector<Step> editScript(const std::vector<std::string> &a, const std::vector<std::string> &b) {
  size_t head = 0;
  while (head < a.size() && head < b.size() && a[head] == b[head])
    ++head;
  size_t tail = 0;
  while (tail < a.size() - head && tail < b.size() - head && a[a.size() - 1 - tail] == b[b.size() - 1 - tail])
    ++tail;
  const size_t n = a.size() - head - tail, m = b.size() - head - tail;
  std::vector<Step> steps;
  for (size_t i = 0; i < head; ++i)
    steps.push_back({Edit::Same, i, i});
  if ((n + 1) * (m + 1) <= kMaxCells) {
    // L[i][j] = LCS length of a[head+i..] and b[head+j..]
    std::vector<uint32_t> L((n + 1) * (m + 1), 0);
    auto at = [&](size_t i, size_t j) -> uint32_t & { return L[i * (m + 1) + j]; };
    for (size_t i = n; i-- > 0;)
      for (size_t j = m; j-- > 0;)
        at(i, j) = a[head + i] == b[head + j] ? at(i + 1, j + 1) + 1 : std::max(at(i + 1, j), at(i, j + 1));
    size_t i = 0, j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && a[head + i] == b[head + j])
        steps.push_back({Edit::Same, head + i++, head + j++});
      else if (i < n && (j == m || at(i + 1, j) >= at(i, j + 1))) // removals first, as diff -u
        steps.push_back({Edit::Del, head + i++, head + j});
      else
        steps.push_back({Edit::Add, head + i, head + j++});
    }
  } else {
    for (size_t i = 0; i < n; ++i)
      steps.push_back({Edit::Del, head + i, head});
    for (size_t j = 0; j < m; ++j)
      steps.push_back({Edit::Add, head + n, head + j});
  }
  for (size_t k = 0; k < tail; ++k)
    steps.push_back({Edit::Same, head + n + k, head + m + k});
  return steps;
}

} // namespace

std::string unifiedDiff(const std::string &aText, const std::string &bText, const std::string &aName,
                        const std::string &bName, int context) {
  const auto a = lines(aText), b = lines(bText);
  const std::vector<Step> steps = editScript(a, b);
  std::string out;
  const size_t ctx = (size_t)context;
  for (size_t k = 0; k < steps.size();) {
    if (steps[k].e == Edit::Same) {
      ++k;
      continue;
    }
    // a hunk: from ctx lines before this change to ctx lines after the last change that is
    // within 2*ctx unchanged lines of the one before it
    const size_t begin = k >= ctx ? k - ctx : 0;
    size_t end = k, same = 0;
    for (size_t j = k; j < steps.size(); ++j) {
      if (steps[j].e == Edit::Same) {
        if (++same > 2 * ctx)
          break;
      } else {
        same = 0;
        end = j;
      }
    }
    end = std::min(steps.size(), end + 1 + ctx);
    size_t na = 0, nb = 0;
    std::string body;
    for (size_t j = begin; j < end; ++j) {
      const Step &s = steps[j];
      na += s.e != Edit::Add;
      nb += s.e != Edit::Del;
      body += (char)s.e + (s.e == Edit::Add ? b[s.bi] : a[s.ai]) + "\n";
    }
    // unified format: a range of 0 lines names the line before it
    const size_t a0 = steps[begin].ai + (na ? 1 : 0), b0 = steps[begin].bi + (nb ? 1 : 0);
    out += fmt::format("@@ -{},{} +{},{} @@\n", a0, na, b0, nb) + body;
    k = end;
  }
  if (out.empty())
    return "";
  return fmt::format("--- {}\n+++ {}\n", aName, bName) + out;
}

} // namespace cnnc::tools
