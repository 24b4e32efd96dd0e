// `cnnc explain` (issue 18): the page's sections, self-containment and errors; its worked
// convolution checked against numpy (explain_conv_oracle.py). tests/explain checks the page
// in a browser.
#include "tests/cli/CliTest.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <string>

using namespace cnnc_cli_test;

TEST_CASE("explain writes one self-contained HTML page: graph, info table, each pass's diff", "[cli][explain]") {
  fs::path d = tmpDir();
  const std::string page = (d / "base.html").string();
  Result r = runCnnc(fmt::format("explain examples/mnist_base.cnn -o {}", page));
  REQUIRE(r.code == 0);
  const std::string html = slurp(page);
  CHECK_THAT(html, Catch::StartsWith("<!DOCTYPE html>") && Catch::Contains("<svg") &&
                       Catch::Contains("total: 431,080 parameters") && // the info table
                       Catch::Contains("<b>grad</b>") && Catch::Contains("<b>fuse-conv-grad</b>") &&
                       Catch::Contains("drop what no output needs") && // the pass's reason
                       Catch::Contains("<span class=\"add\">+  %conv1.dw = conv2d_grad_filter("));
  // nothing fetched from elsewhere: outside the inline scripts (KaTeX's source builds
  // `<img src=` strings) no src= at all, no link to another document, no url() but data:
  std::string markup = html;
  for (size_t a = markup.find("<script>"); a != std::string::npos; a = markup.find("<script>", a + 8))
    markup.erase(a + 8, markup.find("</script>", a) - a - 8);
  CHECK_THAT(markup, !Catch::Contains(" src=") && !Catch::Contains("href=\"http") && !Catch::Contains("<link"));
  for (size_t u = markup.find("url("); u != std::string::npos; u = markup.find("url(", u + 4))
    CHECK(markup.substr(u, 9) == "url(data:");
  // every layer has a panel with its node and a rendered-to-be equation; rows and graph link
  for (const char *layer : {"conv1", "pool1", "conv2", "conv4", "relu1"}) {
    const size_t at = html.find(fmt::format("<div class=\"panel\" id=\"layer-{}\"", layer));
    REQUIRE(at != std::string::npos);
    const std::string panel = html.substr(at, html.find("</div>\n<div class=\"panel\"", at) - at);
    CHECK_THAT(panel, Catch::Contains(fmt::format("%{} = ", layer)) && Catch::Contains("class=\"tex\" data-tex="));
    CHECK_THAT(html, Catch::Contains(fmt::format("<span class=\"layer-row\" data-layer=\"{}\">", layer)));
  }
  // every layer's panel has its own generated code (issue 18): each conv's kernel (LLVM's
  // @cnnc_net_run entry) with FMAs in its hot loop, the pools' max (a compare), the softmax's
  // exp; a training build adds the backward kernels; the ReLU fused into conv3 points there
  auto panelOf = [&](const std::string &layer) {
    const size_t at = html.find(fmt::format("<div class=\"panel\" id=\"layer-{}\"", layer));
    REQUIRE(at != std::string::npos);
    return html.substr(at, html.find("</div>\n<div class=\"panel\"", at) - at);
  };
  auto kernelOf = [&](const std::string &layer, const std::string &node, const std::string &op) {
    const std::string panel = panelOf(layer);
    const size_t at = panel.find(fmt::format("<h4>Generated code of %{} ({},", node, op));
    REQUIRE(at != std::string::npos);
    return panel.substr(at, panel.find("<h4>", at + 4) - at);
  };
  for (const char *conv : {"conv1", "conv2", "conv3", "conv4"}) {
    const std::string k = kernelOf(conv, conv, "conv2d");
    CHECK_THAT(k, Catch::Contains("@cnnc_net_run") && Catch::Contains("<span class=\"fma\">") &&
                      Catch::Contains("trimmed to its hot loop") &&
                      Catch::Contains(fmt::format("<code>cnnc explain --op {}</code> shows it whole", conv)));
  }
  for (const char *pool : {"pool1", "pool2"})
    CHECK_THAT(kernelOf(pool, pool, "maxpool"), Catch::Contains("fcmp") && !Catch::Contains("class=\"fma\""));
  CHECK_THAT(kernelOf("prob", "prob", "softmax"), Catch::Contains("@llvm.exp"));
  CHECK_THAT(kernelOf("conv1", "conv1.dw", "conv2d_grad_filter"), Catch::Contains("<span class=\"fma\">"));
  CHECK_THAT(kernelOf("conv2", "conv2.dx", "conv2d_grad_input"), Catch::Contains("<span class=\"fma\">"));
  CHECK_THAT(kernelOf("pool1", "pool1.dx", "maxpool_grad"), Catch::Contains("fcmp"));
  CHECK_THAT(panelOf("relu1"), Catch::Contains("fused it into %conv3's kernel") &&
                                   Catch::Contains("Generated code of %relu1.dx (relu_grad"));
  // the seed's ReLU (eq. 12) only in the panels of the conv that carries relu=1 and the ReLU's
  CHECK_THAT(panelOf("conv3"), Catch::Contains("(12)</span>"));
  CHECK_THAT(panelOf("relu1"), Catch::Contains("(12)</span>"));
  for (const char *conv : {"conv1", "conv2", "conv4"})
    CHECK_THAT(panelOf(conv), !Catch::Contains("(12)</span>"));
  // conv1's gradient nodes cite eq. 35 and the panel carries the seed's eq. 35
  CHECK_THAT(html, Catch::Contains("(35)</span>") && Catch::Contains("\\phi(\\mathbf{x}^l)^T \\frac{\\partial z}{\\partial Y}"));
  // the tiny convolution: eq. 22 holds on the interpreter, and the code section has FMAs
  CHECK_THAT(html, Catch::Contains("conv2d| over the") && Catch::Contains("<b>0</b>.</p>"));
  CHECK_THAT(html, Catch::Contains("<span class=\"fma\">"));
  CHECK_THAT(html, Catch::Contains("No training log given"));
  // its numbers against numpy, an oracle independent of the interpreter
  CHECK(std::system(fmt::format("/usr/bin/python3 {}/tests/cli/explain_conv_oracle.py {}", CNNC_SOURCE_DIR, page).c_str()) == 0);
  // well-formed enough for an HTML parser that checks nesting (Python's, independent)
  const std::string cmd = fmt::format(
      "/usr/bin/python3 -c 'import sys, html.parser as H\n"
      "class P(H.HTMLParser):\n"
      "    def __init__(s): super().__init__(); s.stack = []\n"
      "    def handle_starttag(s, t, a):\n"
      "        if t not in (\"meta\", \"br\", \"path\", \"polygon\", \"ellipse\", \"polyline\"): s.stack.append(t)\n"
      "    def handle_endtag(s, t):\n"
      "        if t in (\"meta\", \"br\", \"path\", \"polygon\", \"ellipse\", \"polyline\"): return\n"
      "        assert s.stack and s.stack.pop() == t, t\n"
      "p = P(); p.feed(open(sys.argv[1]).read()); assert not p.stack, p.stack' {}",
      page);
  CHECK(std::system(cmd.c_str()) == 0);
}

TEST_CASE("explain draws a training log's curves and rejects a bad one or an unknown --op", "[cli][explain]") {
  fs::path d = tmpDir();
  const std::string log = (d / "log.csv").string(), page = (d / "p.html").string();
  std::ofstream(log) << "epoch,train_loss,train_error,test_loss,test_error,seconds,images_per_s\n"
                        "1,0.5,0.12,0.4,0.10,3.0,1000\n2,0.3,0.08,0.35,0.09,3.0,1000\n";
  Result r = runCnnc(fmt::format("explain examples/mnist_base.cnn --train-log {} -o {}", log, page));
  REQUIRE(r.code == 0);
  const std::string html = slurp(page);
  CHECK_THAT(html, Catch::Contains("2 epoch(s)") && Catch::Contains("test error 9.00%"));
  size_t lines = 0;
  for (size_t p = html.find("<polyline"); p != std::string::npos; p = html.find("<polyline", p + 1))
    ++lines;
  CHECK(lines == 4); // loss and error, train and test
  std::ofstream(log, std::ios::app) << "3,oops,0.1,0.1,0.1,1,1\n";
  r = runCnnc(fmt::format("explain examples/mnist_base.cnn --train-log {} -o {}", log, page));
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains(log + ":4:1: column 2 (train_loss) is not a finite number"));
  r = runCnnc(fmt::format("explain examples/mnist_base.cnn --op nosuch -o {}", page));
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("--op nosuch: @mnist_base has no layer of that name"));
}

TEST_CASE("explain's VGG-16 page stays small with every layer's code", "[cli][explain]") {
  fs::path d = tmpDir();
  const std::string page = (d / "vgg.html").string();
  Result r = runCnnc(fmt::format("explain examples/vgg16.cnn -o {}", page));
  REQUIRE(r.code == 0);
  const std::string html = slurp(page);
  CHECK(html.size() < 10u * 1000 * 1000);
  // each conv has its kernel in its panel, or (same shapes) points to the panel that has it
  for (int i = 1; i <= 13; ++i) {
    const size_t at = html.find(fmt::format("<div class=\"panel\" id=\"layer-conv{}\"", i));
    REQUIRE(at != std::string::npos);
    const std::string panel = html.substr(at, html.find("</div>\n<div class=\"panel\"", at) - at);
    const bool own = panel.find(fmt::format("<h4>Generated code of %conv{} (conv2d,", i)) != std::string::npos;
    const bool same = panel.find(fmt::format("<p>%conv{} (conv2d) compiles to the same code as %conv", i)) != std::string::npos;
    CHECK(own != same);
    if (own)
      CHECK_THAT(panel, Catch::Contains("<span class=\"fma\">") && Catch::Contains("(12)</span>"));
  }
}
