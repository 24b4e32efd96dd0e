#include "tools/ExplainHtml.h"

#include "tools/SeedEquations.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <regex>

namespace cnnc::tools {

std::string html(const std::string &s) {
  std::string o;
  for (char c : s)
    switch (c) {
    case '&': o += "&amp;"; break;
    case '<': o += "&lt;"; break;
    case '>': o += "&gt;"; break;
    case '"': o += "&quot;"; break;
    default: o += c;
    }
  return o;
}

std::vector<int> citedEquations(const std::string &text) {
  std::vector<int> out;
  auto add = [&](int n) {
    if (std::find(out.begin(), out.end(), n) == out.end())
      out.push_back(n);
  };
  // "eq." or "eqs." then numbers and ranges joined by ", " or " and "; a range's end may be
  // written in full ("53-56") only.
  static const std::regex cite(R"(\beqs?\.\s*(\d+(?:\s*-\s*\d+)?(?:\s*(?:,|and)\s*\d+(?:\s*-\s*\d+)?)*))");
  static const std::regex item(R"((\d+)(?:\s*-\s*(\d+))?)");
  for (std::sregex_iterator it(text.begin(), text.end(), cite), end; it != end; ++it) {
    const std::string list = (*it)[1];
    for (std::sregex_iterator jt(list.begin(), list.end(), item); jt != end; ++jt) {
      const int a = std::stoi((*jt)[1]);
      const int b = (*jt)[2].matched ? std::stoi((*jt)[2]) : a;
      for (int n = a; n <= b && n - a < 16; ++n)
        add(n);
    }
  }
  return out;
}

std::string equationHtml(int n) {
  const char *tex = seedEquation(n);
  if (!tex)
    return fmt::format("<div class=\"eqn\">(seed eq. {}: not in the seed)</div>\n", n);
  return fmt::format("<div class=\"eqn\"><span class=\"tex\" data-tex=\"{0}\">{0}</span>"
                     "<span class=\"eqno\">({1})</span></div>\n",
                     html(tex), n);
}

} // namespace cnnc::tools
