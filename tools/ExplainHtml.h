// Helpers shared by the sections of `cnnc explain`'s page (tools/Explain*.cpp).
#pragma once

#include <string>
#include <vector>

namespace cnnc::tools {

/// Text escaped for HTML element content and double-quoted attribute values.
std::string html(const std::string &s);

/// The seed equation numbers a text cites: "eq. 35", "eqs. 18-21", "eqs. 45-46, adjoint",
/// "eqs. 35, 45 and 46"; ranges expanded, in order of first mention, no repeats.
std::vector<int> citedEquations(const std::string &text);

/// Equation n as an element KaTeX renders on load (`class="tex"`, the LaTeX in `data-tex`,
/// the source shown until then or without scripting), numbered as in the seed.
std::string equationHtml(int n);

} // namespace cnnc::tools
