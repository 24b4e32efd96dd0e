#include "tools/ExplainAssets.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace cnnc::tools {

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path &p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

const char *fontMime(const std::string &ext) {
  return ext == ".woff2" ? "font/woff2" : ext == ".woff" ? "font/woff" : ext == ".ttf" ? "font/ttf" : nullptr;
}

// One @font-face rule with its sources replaced by the first installed one, inlined; "" if
// none is installed. URLs are relative to the stylesheet's folder.
std::string inlineFontFace(const std::string &rule, const fs::path &cssDir) {
  static const std::regex url(R"re(url\(\s*["']?([^"')]+)["']?\s*\))re");
  for (std::sregex_iterator it(rule.begin(), rule.end(), url), end; it != end; ++it) {
    const fs::path file = cssDir / (*it)[1].str();
    const char *mime = fontMime(file.extension().string());
    std::error_code ec;
    if (!mime || !fs::is_regular_file(file, ec))
      continue;
    static const std::regex src(R"(src\s*:[^;}]*)");
    std::smatch m;
    if (!std::regex_search(rule, m, src))
      return "";
    return m.prefix().str() + fmt::format("src:url(data:{};base64,{})", mime, base64(slurp(file))) + m.suffix().str();
  }
  return "";
}

} // namespace

std::string base64(const std::string &bytes) {
  static const char *digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = uint8_t(bytes[i]) << 16 | uint8_t(bytes[i + 1]) << 8 | uint8_t(bytes[i + 2]);
    for (int s : {18, 12, 6, 0})
      out += digits[(v >> s) & 63];
  }
  if (const size_t rest = bytes.size() - i) {
    const uint32_t v = uint8_t(bytes[i]) << 16 | (rest == 2 ? uint8_t(bytes[i + 1]) << 8 : 0);
    out += digits[(v >> 18) & 63];
    out += digits[(v >> 12) & 63];
    out += rest == 2 ? digits[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

InlineAssets katexAssets(const std::string &dir) {
  InlineAssets a;
  const fs::path d(dir), js = d / "katex.min.js", css = d / "katex.min.css";
  std::error_code ec;
  if (!fs::is_regular_file(js, ec) || !fs::is_regular_file(css, ec)) {
    a.missing = fmt::format("KaTeX was not found in {} (Debian's libjs-katex, scripts/install-deps.sh): the "
                            "equations are shown as LaTeX source.",
                            dir);
    return a;
  }
  a.script = slurp(js);
  // "</script" inside the script would end the element early
  for (size_t p = a.script.find("</script"); p != std::string::npos; p = a.script.find("</script", p))
    a.script.replace(p, 2, "<\\/");
  const std::string sheet = slurp(css);
  static const std::regex face(R"(@font-face\s*\{[^}]*\})");
  size_t last = 0;
  for (std::sregex_iterator it(sheet.begin(), sheet.end(), face), end; it != end; ++it) {
    a.style += sheet.substr(last, it->position() - last) + inlineFontFace(it->str(), css.parent_path());
    last = it->position() + it->length();
  }
  a.style += sheet.substr(last);
  return a;
}

} // namespace cnnc::tools
