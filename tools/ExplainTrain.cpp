#include "tools/ExplainTrain.h"

#include "ir/Diagnostic.h"
#include "tools/ExplainHtml.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <sstream>
#include <vector>

namespace cnnc::tools {

namespace {

constexpr std::array<const char *, 5> kColumns = {"epoch", "train_loss", "train_error", "test_loss", "test_error"};

struct Row {
  std::array<double, 5> v;
};

std::vector<Row> readLog(const std::string &path) {
  std::ifstream in(path);
  if (!in)
    throw Error(fmt::format("{}: cannot read the training log", path));
  std::vector<Row> rows;
  std::string line;
  int lineNo = 0;
  auto fail = [&](const std::string &why) { throw Error(fmt::format("{}:{}:1: {}", path, lineNo, why)); };
  while (std::getline(in, line)) {
    ++lineNo;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    std::vector<std::string> cells;
    std::istringstream ls(line);
    for (std::string c; std::getline(ls, c, ',');)
      cells.push_back(c);
    if (lineNo == 1) {
      for (size_t i = 0; i < kColumns.size(); ++i)
        if (i >= cells.size() || cells[i] != kColumns[i])
          fail(fmt::format("not a `cnnc train` log.csv: the header must start with {}", fmt::join(kColumns, ",")));
      continue;
    }
    if (line.empty())
      continue;
    Row r;
    for (size_t i = 0; i < kColumns.size(); ++i) {
      size_t used = 0;
      try {
        r.v[i] = i < cells.size() ? std::stod(cells[i], &used) : NAN;
      } catch (const std::exception &) {
        used = 0;
      }
      if (i >= cells.size() || used != cells[i].size() || !std::isfinite(r.v[i]))
        fail(fmt::format("column {} ({}) is not a finite number", i + 1, kColumns[i]));
    }
    rows.push_back(r);
  }
  if (rows.empty())
    throw Error(fmt::format("{}: the training log has no epoch", path));
  return rows;
}

// One chart: epochs along x, columns a (train) and b (test) along y, from 0.
std::string chart(const std::vector<Row> &rows, int a, int b, const std::string &title, double scale, const char *unit) {
  const double W = 420, H = 240, L = 50, R = 10, T = 25, B = 35;
  double xmax = 0, ymax = 0;
  for (const Row &r : rows)
    xmax = std::max(xmax, r.v[0]), ymax = std::max({ymax, r.v[a] * scale, r.v[b] * scale});
  xmax = std::max(xmax, 1.0), ymax = ymax > 0 ? ymax * 1.05 : 1;
  auto X = [&](double x) { return L + x / xmax * (W - L - R); };
  auto Y = [&](double y) { return H - B - y / ymax * (H - T - B); };
  std::string s = fmt::format("<svg class=\"curve\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
                              "viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\">\n<text x=\"{}\" y=\"16\" "
                              "font-size=\"13\">{}</text>\n",
                              W, H, W, H, html(title), L, html(title));
  s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#888\"/><line x1=\"{0}\" y1=\"{1}\" "
                   "x2=\"{0}\" y2=\"{3}\" stroke=\"#888\"/>\n",
                   L, H - B, W - R, T);
  for (int k = 0; k <= 4; ++k) { // y ticks
    const double y = ymax * k / 4;
    s += fmt::format("<text x=\"{}\" y=\"{:.1f}\" font-size=\"10\" text-anchor=\"end\">{:.3g}{}</text>\n", L - 4,
                     Y(y) + 3, y, unit);
  }
  s += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">epoch (0 to {:g})</text>\n",
                   (L + W - R) / 2, H - 8, xmax);
  for (auto [col, colour, name] : {std::tuple{a, "#0969da", "train"}, std::tuple{b, "#cf222e", "test"}}) {
    std::string pts;
    for (const Row &r : rows)
      pts += fmt::format("{:.1f},{:.1f} ", X(r.v[0]), Y(r.v[col] * scale));
    s += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"><title>{}</title>"
                     "</polyline>\n",
                     colour, pts, name);
  }
  s += fmt::format("<text x=\"{0}\" y=\"{1}\" font-size=\"11\" fill=\"#0969da\" text-anchor=\"end\">train</text>"
                   "<text x=\"{0}\" y=\"{2}\" font-size=\"11\" fill=\"#cf222e\" text-anchor=\"end\">test</text>\n",
                   W - R, T + 10, T + 24);
  return s + "</svg>\n";
}

} // namespace

std::string trainingCurvesHtml(const std::string &logPath, const std::string &modelPath) {
  if (logPath.empty())
    return fmt::format("<p class=\"todo\">No training log given. Train the model and pass its log: "
                       "<code>cnnc train {0} --out run</code> writes <code>run/log.csv</code>, then "
                       "<code>cnnc explain {0} --train-log run/log.csv -o page.html</code>.</p>\n",
                       html(modelPath));
  const auto rows = readLog(logPath);
  const Row &last = rows.back();
  return fmt::format("<p>From <code>{}</code>: {} epoch(s); after the last, train loss {:.4g}, test loss {:.4g}, test "
                     "error {:.2f}%.</p>\n<div class=\"row\">\n{}{}</div>\n",
                     html(logPath), rows.size(), last.v[1], last.v[3], last.v[4] * 100,
                     chart(rows, 1, 3, "loss", 1, ""), chart(rows, 2, 4, "error", 100, "%"));
}

} // namespace cnnc::tools
