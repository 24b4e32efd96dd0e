// KaTeX for `cnnc explain`'s equations, inlined into the page from Debian's libjs-katex
// (/usr/share/javascript/katex) so that the page fetches nothing: the script and style as
// they are, each @font-face's font embedded as a data: URL (the first of its sources that is
// installed), or the rule dropped when none is (KaTeX then falls back to the system's fonts).
#pragma once

#include <string>

namespace cnnc::tools {

struct InlineAssets {
  std::string style;  // for a <style> element
  std::string script; // for a <script> element
  std::string missing; // why there is no KaTeX ("" when there is)
};

/// KaTeX from `dir` (normally Debian's; the page then still shows each equation's LaTeX
/// source when the files are not there).
InlineAssets katexAssets(const std::string &dir = "/usr/share/javascript/katex");

/// RFC 4648 base64 of `bytes`, padded.
std::string base64(const std::string &bytes);

} // namespace cnnc::tools
