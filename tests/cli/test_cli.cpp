// The cnnc command line, run as a user runs it: exit codes (0 ok, 1 user error, 2 usage),
// one clear message on stderr, outputs that other tools read.
#include "ir/IR.h"
#include "io/Npz.h"
#include "tests/cli/CliTest.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <utility>
#include <vector>

using namespace cnnc_cli_test;

TEST_CASE("info on VGG-16 reproduces the seed's Table 2 receptive fields and parameter total", "[cli]") {
  Result r = runCnnc("info examples/vgg16.cnn");
  REQUIRE(r.code == 0);
  CHECK(r.err.empty());
  CHECK_THAT(r.out, Catch::Contains("total: 138,357,544 parameters"));
  // The r.f. column, layers 1..31 (the seed's Table 2, "r. size").
  const int table2[] = {212, 210, 210, 208, 208, 104, 102, 102, 100, 100, 50, 48, 48, 46, 46, 44,
                        44,  22,  20,  20,  18,  18,  16,  16,  8,   6,   6,  4,  4,  2,  2};
  std::istringstream lines(r.out);
  std::vector<int> column;
  for (std::string line; std::getline(lines, line);) {
    int idx = 0;
    if (std::sscanf(line.c_str(), "%d", &idx) != 1 || idx < 1 || idx > 31)
      continue;
    std::string last = line.substr(line.find_last_of(' ') + 1);
    column.push_back(std::stoi(last));
  }
  CHECK(column == std::vector<int>(std::begin(table2), std::end(table2)));
}

TEST_CASE("info --train and the --train header report the arena beside the naive sum", "[cli][train]") {
  Result r = runCnnc("info examples/mnist_bn.cnn --train --batch 20");
  REQUIRE(r.code == 0);
  // "training step @train_step: arena X (A B, ...), naive sum Y (B B, ...): P%"
  const std::string key = "training step @train_step: arena ";
  const size_t at = r.out.find(key);
  REQUIRE(at != std::string::npos);
  auto number = [&](size_t from) { // the first "(1,234 B" after `from`
    size_t open = r.out.find('(', from), end = r.out.find(" B", open);
    std::string digits;
    for (size_t i = open + 1; i < end; ++i)
      if (r.out[i] != ',')
        digits += r.out[i];
    return std::stoll(digits);
  };
  const int64_t arena = number(at), naive = number(r.out.find("naive sum", at));
  CHECK(arena > 0);
  CHECK(arena < naive);
  fs::path d = tmpDir();
  Result c = runCnnc(fmt::format("compile examples/mnist_bn.cnn --train --batch 20 -o {} --header {}",
                                 (d / "bn.so").string(), (d / "bn.h").string()));
  REQUIRE(c.code == 0);
  const std::string h = slurp(d / "bn.h");
  CHECK_THAT(h, Catch::Contains(fmt::format("#define MNIST_BN_TRAIN_WORKSPACE_BYTES {}\n", arena)));
  CHECK_THAT(h, Catch::Contains(fmt::format("#define MNIST_BN_TRAIN_NAIVE_BYTES {}\n", naive)));
}

TEST_CASE("dump prints IR that parses back, after every pass and as DOT", "[cli]") {
  fs::path d = tmpDir();
  Result r = runCnnc("dump examples/mnist_bn_dropout.cnn --batch 4");
  REQUIRE(r.code == 0);
  write(d / "bn.ir", r.out);
  Result again = runCnnc(fmt::format("dump {}", (d / "bn.ir").string()));
  REQUIRE(again.code == 0);
  CHECK(again.out == r.out);
  CHECK_THAT(r.out, !Catch::Contains("= dropout(")); // folded at inference

  Result all = runCnnc("dump examples/mnist_bn_dropout.cnn --print-after-all");
  REQUIRE(all.code == 0);
  CHECK_THAT(all.out, Catch::Contains("// ----- IR after input -----") &&
                          Catch::Contains("// ----- IR after simplify -----") &&
                          Catch::Contains("// ----- IR after dce -----"));
  Result input = runCnnc("dump examples/mnist_bn_dropout.cnn --emit=input");
  CHECK_THAT(input.out, Catch::Contains("= dropout("));

  Result grad = runCnnc("dump examples/mnist_base.cnn --emit=grad --batch 2");
  REQUIRE(grad.code == 0);
  CHECK_THAT(grad.out, Catch::StartsWith("func @infer {") && Catch::Contains("func @train_step {") &&
                           Catch::Contains("// eq. 35") &&
                           Catch::Contains("im2row(") && Catch::Contains("row2im("));
  // fuse-conv-grad: the explicit chains after grad, the fused ops after the pass, no chain
  // left after dce; stopping after simplify keeps the chains
  Result fuse = runCnnc("dump examples/mnist_base.cnn --train --batch 2 --print-after-all");
  REQUIRE(fuse.code == 0);
  const size_t atGrad = fuse.out.find("// ----- IR after grad -----"),
               atFuse = fuse.out.find("// ----- IR after fuse-conv-grad -----"),
               atDce = fuse.out.find("// ----- IR after dce -----");
  REQUIRE(atGrad < atFuse);
  REQUIRE(atFuse < atDce);
  REQUIRE(atDce != std::string::npos);
  const std::string afterGrad = fuse.out.substr(atGrad, atFuse - atGrad),
                    afterFuse = fuse.out.substr(atFuse, atDce - atFuse),
                    afterDce = fuse.out.substr(atDce);
  CHECK_THAT(afterGrad, Catch::Contains("im2row(") && !Catch::Contains("conv2d_grad_"));
  CHECK_THAT(afterFuse, Catch::Contains("= conv2d_grad_filter(") &&
                            Catch::Contains("= conv2d_grad_input("));
  CHECK_THAT(afterDce, !Catch::Contains("im2row(") && !Catch::Contains("row2im(") &&
                           Catch::Contains("= conv2d_grad_filter("));
  Result unfused = runCnnc("dump examples/mnist_base.cnn --train --batch 2 --emit=simplify");
  REQUIRE(unfused.code == 0);
  CHECK_THAT(unfused.out, Catch::Contains("im2row(") && !Catch::Contains("conv2d_grad_"));

  Result dot = runCnnc("dump examples/resnet_mnist.cnn --format=dot");
  REQUIRE(dot.code == 0);
  CHECK_THAT(dot.out, Catch::StartsWith("digraph") && Catch::Contains("->"));

  Result train = runCnnc("dump examples/mnist_bn.cnn --train --batch 8");
  REQUIRE(train.code == 0);
  CHECK_THAT(train.out, Catch::Contains("bn_mean(") && Catch::Contains("softmax_xent(") &&
                            Catch::Contains("input : i32[8]"));
}

TEST_CASE("run and init: outputs numpy can read, weights round trip", "[cli]") {
  fs::path d = tmpDir();
  std::string w = (d / "w.npz").string(), y1 = (d / "y1.npy").string(), y2 = (d / "y2.npy").string();
  REQUIRE(runCnnc(fmt::format("init examples/mnist_base.cnn --seed 3 -o {}", w)).code == 0);
  auto params = cnnc::io::readNpz(w);
  CHECK(params.size() == 8);
  CHECK(params.at("conv1.w").shape == std::vector<int64_t>{20, 1, 5, 5});
  // The same seed through --seed and through the weights file gives identical outputs.
  Result a = runCnnc(fmt::format("run examples/mnist_base.cnn --weights {} -i data/mnist/sample-images.npy -o {}", w, y1));
  Result b = runCnnc(fmt::format("run examples/mnist_base.cnn --seed 3 -i data/mnist/sample-images.npy -o {}", y2));
  REQUIRE(a.code == 0);
  REQUIRE(b.code == 0);
  CHECK_THAT(a.out, Catch::Contains("%prob : [16,10]"));
  auto p1 = cnnc::io::readNpy(y1), p2 = cnnc::io::readNpy(y2);
  CHECK(p1.shape == std::vector<int64_t>{16, 10});
  CHECK(p1.data == p2.data);
  double rowSum = 0;
  for (int i = 0; i < 10; ++i)
    rowSum += p1.toDoubles()[i];
  CHECK(rowSum == Approx(1.0).epsilon(1e-5));
  // A different seed gives different weights.
  Result c = runCnnc(fmt::format("run examples/mnist_base.cnn --seed 4 -i data/mnist/sample-images.npy -o {}", y2));
  REQUIRE(c.code == 0);
  CHECK(cnnc::io::readNpy(y2).data != p1.data);
  // A single example without its batch dimension is accepted.
  Result one = runCnnc("run examples/vgg16.cnn --input-shape 32x32 --input random");
  CHECK(one.code == 0);
  CHECK_THAT(one.out, Catch::Contains("[1,1000]"));
}

TEST_CASE("user errors: one message, exit 1, no crash", "[cli][errors]") {
  fs::path d = tmpDir();
  struct Case {
    std::string args, message;
  } cases[] = {
      {"info no/such/model.cnn", "no/such/model.cnn"},
      {"info README.md", "unknown model format"},
      {"info examples/vgg16.cnn --input-shape 16x16", "larger than its padded input"},
      {"info examples/vgg16.cnn --input-shape banana", "--input-shape 'banana'"},
      {"run examples/mnist_base.cnn --input no-such.npy", "no-such.npy"},
      {"run examples/mnist_base.cnn --input random --weights no-such.npz", "no-such.npz"},
      {"run examples/mnist_base.cnn --input data/mnist/sample-labels.npy", "input %data: the file holds [16], the model expects [16,1,28,28]"},
      {"run examples/mnist_base.cnn --input random --backend llvm", "--backend llvm: expected interp"},
      {"dump examples/mnist_base.cnn --emit=fusion", "unknown pass 'fusion'"},
      {"run examples/vgg16.cnn --input random --max-memory 1M",
       "MiB of memory, more than the limit of 1 MiB (--max-memory; the default is the physical memory)"},
      {"run examples/mnist_base.cnn --input random --backend jit --max-memory 64K",
       "compiled (workspace and buffers) needs"},
  };
  for (const Case &c : cases) {
    INFO(c.args);
    Result r = runCnnc(c.args);
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains(c.message));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') <= 4);
    CHECK_THAT(r.err, !Catch::Contains("internal compiler error"));
  }
  // A 0-d .npy is an input like any other, refused for its shape (it was once taken for
  // `--input random` and silently replaced by noise).
  cnnc::io::writeNpy((d / "scalar.npy").string(), cnnc::io::Array::fromFloats({0.5f}, {}));
  Result scalar = runCnnc(fmt::format("run examples/mnist_base.cnn --input {}", (d / "scalar.npy").string()));
  CHECK(scalar.code == 1);
  CHECK_THAT(scalar.err, Catch::Contains("input %data: the file holds [], the model expects [1,1,28,28]"));
  // A weights file for another model names every mismatch.
  std::string w = (d / "other.npz").string();
  REQUIRE(runCnnc(fmt::format("init examples/mnist_bn.cnn -o {}", w)).code == 0);
  Result r = runCnnc(fmt::format("run examples/mnist_base.cnn --input random --weights {}", w));
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("does not match the model") && Catch::Contains("'conv1.b'") &&
                        Catch::Contains("'bn1.scale'"));
  // A corrupt weights file.
  write(d / "bad.npz", "PK\x03\x04 this is not a zip");
  Result bad = runCnnc(fmt::format("run examples/mnist_base.cnn --input random --weights {}", (d / "bad.npz").string()));
  CHECK(bad.code == 1);
  CHECK_THAT(bad.err, Catch::Contains("bad.npz"));
}

TEST_CASE("an empty or comment-only .ir file: a clean error in every subcommand", "[cli][errors]") {
  fs::path d = tmpDir();
  write(d / "empty.ir", "");
  write(d / "comments.ir", "# nothing here\n\n// but comments\n");
  for (const char *file : {"empty.ir", "comments.ir"}) {
    const std::string ir = (d / file).string();
    for (const std::string &sub :
         {"info " + ir, "dump " + ir, "run " + ir + " --input random", "init " + ir + " -o " +
          (d / "w.npz").string(), "compile " + ir + " -o " + (d / "m.so").string(),
          "export " + ir + " -o " + (d / "m.onnx").string(),
          "train " + ir + " --data mnist --epochs 1 --out " + (d / "t").string()}) {
      INFO(sub);
      Result r = runCnnc(sub);
      CHECK(r.code == 1);
      CHECK_THAT(r.err, Catch::Contains(file) && Catch::Contains("no function in this IR file"));
      CHECK_THAT(r.err, !Catch::Contains("internal compiler error"));
    }
  }
}

TEST_CASE("usage errors exit 2, --help works on every subcommand", "[cli][errors]") {
  CHECK(runCnnc("").code == 2);
  CHECK(runCnnc("frobnicate").code == 2);
  CHECK(runCnnc("run examples/mnist_base.cnn").code == 2); // --input is required
  CHECK(runCnnc("info examples/vgg16.cnn --batch 0").code == 2);
  // a bad value: one line that says what is wanted (not CLI11's 309-digit bound or its maps)
  for (const auto &[args, msg] : std::vector<std::pair<std::string, std::string>>{
           {"bench examples/mnist_base.cnn --reps 0", "--reps: '0' is not a positive number"},
           {"bench examples/mnist_base.cnn --warmup -1", "--warmup: '-1' is not a non-negative number"},
           {"train examples/mnist_base.cnn --train-size 0", "--train-size: '0' is not a positive number"},
           {"compile examples/mnist_base.cnn -o x.so --batch x", "--batch: 'x' is not a positive number"},
           {"train examples/mnist_base.cnn --train-subset 0", "--train-subset: '0' is not one of first, stratified"}}) {
    INFO(args);
    Result r = runCnnc(args);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Catch::StartsWith(msg) && !Catch::Contains("1797693"));
  }
  for (const char *sub : {"info", "dump", "run", "init", "ops", "compile", "export", "train", "bench", "explain"}) {
    INFO(sub);
    Result r = runCnnc(fmt::format("{} --help", sub));
    CHECK(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("Usage"));
  }
}

TEST_CASE("a mistyped subcommand gets a suggestion, and --version says what built cnnc", "[cli][errors]") {
  Result r = runCnnc("traim examples/mnist_base.cnn");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("'traim' is not a cnnc command (did you mean 'train'?)"));
  r = runCnnc("xyzzy");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("'xyzzy' is not a cnnc command;") && !Catch::Contains("did you mean"));
  r = runCnnc("--version");
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("cnnc 0.1 (git ") && Catch::Contains("\nLLVM 19.") &&
                        Catch::Contains("\nhost CPU "));
  CHECK_THAT(r.out, !Catch::Contains("(git unknown)"));
}

TEST_CASE("compile reports what it wrote, the prefix it exports, and warns without weights", "[cli]") {
  fs::path d = tmpDir();
  Result r = runCnnc(fmt::format("compile examples/mnist_base.cnn --batch 2 -o {} --header {}",
                                 (d / "libm.so").string(), (d / "m.h").string()));
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("libm.so (") && Catch::Contains("exports mnist_base_create, mnist_base_infer") &&
                        Catch::Contains("m.h ("));
  CHECK_THAT(r.err, Catch::Contains("warning: no weights embedded") &&
                        Catch::Contains("mnist_base_load_weights"));
  std::string syms;
  {
    FILE *p = popen(fmt::format("nm -D --defined-only {}", (d / "libm.so").string()).c_str(), "r");
    REQUIRE(p);
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, p))
      syms.append(buf, n);
    pclose(p);
  }
  CHECK_THAT(syms, Catch::Contains(" T mnist_base_infer\n") && !Catch::Contains("cnnc_"));
  Result w = runCnnc(fmt::format("init examples/mnist_base.cnn -o {}", (d / "w.npz").string()));
  REQUIRE(w.code == 0);
  r = runCnnc(fmt::format("compile examples/mnist_base.cnn --batch 2 -o {} --prefix digits --weights {}",
                          (d / "libm.so").string(), (d / "w.npz").string()));
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("exports digits_create") && Catch::Contains("weights: embedded (8 params"));
  CHECK(r.err.empty());
  r = runCnnc(fmt::format("compile examples/mnist_base.cnn -o {} --prefix 'no-good'", (d / "libm.so").string()));
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("--prefix 'no-good' is not a C identifier"));
}

TEST_CASE("docs/ops.md is the op table's current rendering", "[cli][docs]") {
  Result r = runCnnc("ops --markdown");
  REQUIRE(r.code == 0);
  CHECK(r.out == slurp(fs::path(CNNC_SOURCE_DIR) / "docs/ops.md"));
}

// The block between the markers is `cnnc ops --onnx`'s output (regenerate it with that command).
TEST_CASE("docs/onnx.md's operator table is the importer's and gradient tables' rendering",
          "[cli][docs]") {
  Result r = runCnnc("ops --onnx");
  REQUIRE(r.code == 0);
  const std::string doc = slurp(fs::path(CNNC_SOURCE_DIR) / "docs/onnx.md");
  const std::string begin = "<!-- begin: cnnc ops --onnx -->\n", end = "<!-- end: cnnc ops --onnx -->";
  const size_t b = doc.find(begin), e = doc.find(end);
  REQUIRE(b != std::string::npos);
  REQUIRE(e != std::string::npos);
  CHECK(doc.substr(b + begin.size(), e - b - begin.size()) == r.out);
}

// ---------------------------------------------------------------------------- dumps --
namespace {

// The `// ----- IR after X... -----` blocks of a dump, in order: (header, body).
std::vector<std::pair<std::string, std::string>> stages(const std::string &out) {
  std::vector<std::pair<std::string, std::string>> v;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("// ----- IR after ", 0) == 0)
      v.push_back({line, ""});
    else if (!v.empty())
      v.back().second += line + "\n";
  }
  return v;
}

} // namespace

TEST_CASE("dump --print-changed names every pass, its text is each stage's own dump", "[cli][dump]") {
  for (const std::string model : {"examples/mnist_base.cnn --batch 2", "examples/mnist_bn_dropout.cnn --train --batch 2"}) {
    INFO(model);
    const bool training = model.find("--train") != std::string::npos;
    Result r = runCnnc("dump " + model + " --print-changed");
    REQUIRE(r.code == 0);
    auto st = stages(r.out);
    // input, then each pass of the pipeline once (grad only in a training build)
    std::vector<std::string> names{"input"};
    for (const char *p : {"grad", "simplify", "fuse-conv-grad", "grad-input-as-conv", "fuse-bn-grad", "fold-bn", "fuse-residual", "fuse-relu", "dce"})
      if (training || std::string(p) != "grad")
        names.push_back(p);
    REQUIRE(st.size() == names.size());
    for (size_t i = 0; i < st.size(); ++i) {
      INFO(st[i].first);
      CHECK_THAT(st[i].first, Catch::StartsWith("// ----- IR after " + names[i]));
      if (st[i].first.find(": no change") != std::string::npos) {
        CHECK(st[i].second.empty());
        continue;
      }
      // the oracle: stopping the pipeline at that pass
      Result alone = runCnnc(fmt::format("dump {} --emit={}", model, names[i]));
      REQUIRE(alone.code == 0);
      CHECK(st[i].second == alone.out);
    }
    if (!training) { // BASE has no batch norm to fold and no gradient to fuse
      CHECK_THAT(r.out, Catch::Contains("// ----- IR after fold-bn: no change -----\n") &&
                            Catch::Contains("// ----- IR after fuse-conv-grad: no change -----\n") &&
                            Catch::Contains("// ----- IR after fuse-relu -----\n"));
    }
  }
}

TEST_CASE("dump --print-changed=diff: each diff, applied by patch(1), gives the next stage", "[cli][dump]") {
  fs::path d = tmpDir();
  const std::string model = "examples/mnist_base.cnn --train --batch 2";
  Result r = runCnnc("dump " + model + " --print-changed=diff");
  REQUIRE(r.code == 0);
  auto st = stages(r.out);
  REQUIRE(st.size() >= 4);
  CHECK(st[0].first == "// ----- IR after input -----");
  std::string prevName = "input";
  int diffs = 0;
  for (size_t i = 1; i < st.size(); ++i) {
    INFO(st[i].first);
    if (st[i].first.find(": no change") != std::string::npos)
      continue;
    const std::string name = st[i].first.substr(18, st[i].first.find(' ', 18) - 18);
    CHECK_THAT(st[i].first, Catch::Contains(fmt::format("(diff against {})", prevName)));
    CHECK_THAT(st[i].second, Catch::StartsWith("--- after " + prevName + "\n+++ after " + name + "\n@@ -"));
    Result before = runCnnc(fmt::format("dump {} --emit={}", model, prevName)),
           after = runCnnc(fmt::format("dump {} --emit={}", model, name));
    write(d / "stage.ir", before.out);
    write(d / "stage.diff", st[i].second);
    const std::string cmd = fmt::format("patch --quiet {} {} >/dev/null 2>&1", (d / "stage.ir").string(),
                                        (d / "stage.diff").string());
    REQUIRE(std::system(cmd.c_str()) == 0);
    CHECK(slurp(d / "stage.ir") == after.out);
    prevName = name;
    ++diffs;
  }
  CHECK(diffs >= 3); // grad, simplify, fuse-conv-grad, ... change a training step
}

TEST_CASE("dump --dump-dir writes one numbered .ir and .dot per stage", "[cli][dump]") {
  fs::path d = tmpDir() / "stages";
  fs::remove_all(d);
  Result r = runCnnc(fmt::format("dump examples/mnist_bn.cnn --dump-dir {}", d.string()));
  REQUIRE(r.code == 0);
  // inference: no grad pass, so stage 01 is absent; the numbers are pipeline positions
  for (const char *stem : {"00-input", "02-simplify", "03-fuse-conv-grad", "04-grad-input-as-conv",
                           "05-fuse-bn-grad", "06-fold-bn", "07-fuse-residual", "08-fuse-relu", "09-dce"}) {
    INFO(stem);
    CHECK(fs::exists(d / (std::string(stem) + ".ir")));
    CHECK_THAT(slurp(d / (std::string(stem) + ".dot")), Catch::StartsWith("digraph"));
  }
  CHECK_FALSE(fs::exists(d / "01-grad.ir"));
  CHECK(slurp(d / "09-dce.ir") == runCnnc("dump examples/mnist_bn.cnn").out);
  CHECK(slurp(d / "00-input.ir") == runCnnc("dump examples/mnist_bn.cnn --emit=input").out);
  // each file is IR: dumping it gives it back (the stage after dce is the pipeline's fixpoint)
  Result again = runCnnc(fmt::format("dump {}", (d / "09-dce.ir").string()));
  REQUIRE(again.code == 0);
  CHECK(again.out == slurp(d / "09-dce.ir"));
  CHECK_THAT(r.out, Catch::Contains("06-fold-bn.ir, .dot\n") && Catch::Contains("03-fuse-conv-grad.ir, .dot: no change"));
}

TEST_CASE("dump --format=dot: one digraph per dump that dot renders to well-formed SVG", "[cli][dump][dot]") {
  fs::path d = tmpDir();
  std::vector<std::string> svgs;
  // returns the DOT text; the SVG is checked below
  auto render = [&](const std::string &args, const std::string &stem) {
    INFO(args);
    Result r = runCnnc("dump " + args + " --format=dot");
    REQUIRE(r.code == 0);
    // one graph: `| dot -Tsvg` used to show only the first of several
    CHECK(r.out.find("digraph") == 0);
    CHECK(r.out.find("digraph", 1) == std::string::npos);
    write(d / (stem + ".dot"), r.out);
    const fs::path svg = d / (stem + ".svg");
    const std::string cmd = fmt::format("dot -Tsvg {} -o {}", (d / (stem + ".dot")).string(), svg.string());
    REQUIRE(std::system(cmd.c_str()) == 0);
    svgs.push_back(svg.string());
    return r.out;
  };
  for (const auto &e : fs::directory_iterator(fs::path(CNNC_SOURCE_DIR) / "examples"))
    if (e.path().extension() == ".cnn")
      render("examples/" + e.path().filename().string(), e.path().stem().string());
  const std::string train = render("examples/mnist_bn.cnn --train --batch 2", "train");
  for (const char *s : {"label=\"@infer after the pipeline\"", "label=\"@train_step after the pipeline\"", "label=\"forward\"", "label=\"backward\"",
                        "label=\"update\"", "conv2d_grad_filter", "[label=\"x [2,1,28,28]\"]"})
    CHECK_THAT(train, Catch::Contains(s));
  const std::string perStage = render("examples/mnist_base.cnn --print-after-all", "stages");
  CHECK_THAT(perStage, Catch::Contains("label=\"@mnist_base after fuse-relu\"") &&
                           Catch::Contains("label=\"@mnist_base as lowered (input)\"")); // the input
  // the SVGs parse as XML (an independent parser: Python's) and hold the clusters' titles
  std::string cmd = "/usr/bin/python3 -c 'import sys, xml.etree.ElementTree as E\n"
                    "for f in sys.argv[1:]:\n"
                    "    r = E.parse(f).getroot()\n"
                    "    assert r.tag.endswith(\"svg\"), f\n"
                    "    assert any(t.text == \"@train_step after the pipeline\" for t in r.iter() if t.tag.endswith(\"text\")) == f.endswith(\"train.svg\"), f' ";
  for (const std::string &s : svgs)
    cmd += " " + s;
  CHECK(std::system(cmd.c_str()) == 0);
}

namespace {
// A number field of a one-line JSON object (the first one of that name).
double jsonNumber(const std::string &json, const std::string &key) {
  const size_t p = json.find("\"" + key + "\": ");
  REQUIRE(p != std::string::npos);
  return std::stod(json.substr(p + key.size() + 4));
}
std::vector<std::string> jsonFields(const std::string &json, const std::string &key) {
  std::vector<std::string> out;
  for (size_t p = json.find("\"" + key + "\": "); p != std::string::npos; p = json.find("\"" + key + "\": ", p + 1))
    out.push_back(json.substr(p + key.size() + 4));
  return out;
}
} // namespace

TEST_CASE("run --profile prints the compiled model's nodes, sorted, against the call", "[cli][profile]") {
  Result r = runCnnc("run examples/mnist_bn.cnn --input random --profile --profile-reps 2 --threads 1");
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("%prob : [1,10]")); // the run itself, as without --profile
  CHECK_THAT(r.out, Catch::Contains("profile of @mnist_bn (compiled, batch 1, 1 thread, mean of 2 calls)"));
  for (const char *n : {"%conv1 ", "%pool1 ", "%conv2 ", "%conv3 ", "%conv4 ", "%prob "})
    CHECK_THAT(r.out, Catch::Contains(n));
  CHECK_THAT(r.out, Catch::Contains("conv2d+relu") && Catch::Contains("sum of nodes"));
  // sorted by time, longest first
  std::istringstream lines(r.out.substr(r.out.find("share")));
  std::vector<double> ms;
  std::string line;
  std::getline(lines, line);
  while (std::getline(lines, line) && line.find("sum of nodes") == std::string::npos) {
    std::istringstream f(line);
    std::string node, ops;
    double t;
    f >> node >> ops >> t;
    ms.push_back(t);
  }
  CHECK(ms.size() >= 6);
  CHECK(std::is_sorted(ms.rbegin(), ms.rend()));

  Result t = runCnnc("run examples/mnist_base.cnn --train --input data=random --input label=random --profile "
                     "--profile-reps 1");
  REQUIRE(t.code == 0);
  CHECK_THAT(t.out, Catch::Contains("profile of @train_step") && Catch::Contains("  (update) ") &&
                        Catch::Contains("conv2d_grad_filter"));
}

TEST_CASE("bench times inference and a training step through the C API, FLOPs as bench/cnnc_bench counts them", "[cli][bench]") {
  Result r = runCnnc("bench examples/mnist_base.cnn --train --batch 4 --reps 3 --warmup 1 --json");
  REQUIRE(r.code == 0);
  CHECK(jsonNumber(r.out, "batch") == 4);
  const auto fns = jsonFields(r.out, "function");
  REQUIRE(fns.size() == 2);
  CHECK(fns[0].rfind("\"infer\"", 0) == 0);
  CHECK(fns[1].rfind("\"train_step\"", 0) == 0);
  const auto flops = jsonFields(r.out, "flops"), med = jsonFields(r.out, "median_ms"),
             lo = jsonFields(r.out, "min_ms"), hi = jsonFields(r.out, "max_ms"), gf = jsonFields(r.out, "gflops");
  REQUIRE(flops.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    const double m = std::stod(med[i]);
    CHECK(std::stod(lo[i]) <= m);
    CHECK(m <= std::stod(hi[i]));
    CHECK(std::stod(gf[i]) == Approx(std::stod(flops[i]) / (m * 1e6)).epsilon(1e-3));
  }
  // the other harness on the same cases counts the same work: the GFLOP/s of the two are
  // that count over times from the same clock and summary (bench/machine.h)
  for (int train = 0; train < 2; ++train) {
    fs::path d = tmpDir();
    const std::string cmd = fmt::format("cd {} && {} examples/mnist_base.cnn --batch 4 --iters 2 {} > {}",
                                        CNNC_SOURCE_DIR, CNNC_BENCH_EXE, train ? "--train" : "",
                                        (d / "jit.json").string());
    REQUIRE(std::system(cmd.c_str()) == 0);
    CHECK(jsonNumber(slurp(d / "jit.json"), "flops") == std::stod(flops[train]));
  }
  CHECK(jsonNumber(r.out, "peak_gflops") > 0);

  Result table = runCnnc("bench examples/mnist_bn.cnn --reps 2 --warmup 0 --profile");
  REQUIRE(table.code == 0);
  CHECK_THAT(table.out, Catch::Contains("median ms") && Catch::Contains("infer ") &&
                            Catch::Contains("% peak") && Catch::Contains("profile of @mnist_bn"));
  Result bad = runCnnc("bench examples/nope.cnn");
  CHECK(bad.code == 1);
}

TEST_CASE("bench --vs-torch: PyTorch runs the model converted from ONNX, outputs checked first", "[cli][bench][torch]") {
  // Weights of scale ~0.3 (not the seed's gauss(0.01), under which every output is ~uniform
  // and a wrong conversion could pass), a model without softmax: the outputs vary.
  fs::path d = tmpDir();
  write(d / "vt.cnn", "network vt\ninput data 1x28x28\nconv 8 5x5 pad 2\nrelu\npool max 2x2 stride 2\n"
                      "conv 16 3x3 stride 2\nrelu\nconv 10 6x6\n");
  const std::string npz = (d / "vt.npz").string();
  REQUIRE(std::system(fmt::format("/usr/bin/python3 -c 'import numpy as np; r = np.random.RandomState(1); "
                                  "np.savez(\"{}\", **{{k: (r.randn(*s) * 0.3).astype(np.float32) for k, s in "
                                  "[(\"conv1.w\", (8,1,5,5)), (\"conv1.b\", (8,)), (\"conv2.w\", (16,8,3,3)), "
                                  "(\"conv2.b\", (16,)), (\"conv3.w\", (10,16,6,6)), (\"conv3.b\", (10,))]}})'",
                                  npz)
                          .c_str()) == 0);
  Result r = runCnnc(fmt::format("bench {} --weights {} --batch 3 --reps 3 --warmup 1 --vs-torch --json",
                                 (d / "vt.cnn").string(), npz));
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(jsonNumber(r.out, "max_abs_diff") < 1e-3);
  CHECK(jsonNumber(r.out, "speedup") > 0);
  const auto med = jsonFields(r.out, "median_ms");
  REQUIRE(med.size() == 2); // cnnc's infer, then PyTorch's
  CHECK(jsonNumber(r.out, "speedup") == Approx(std::stod(med[1]) / std::stod(med[0])).epsilon(1e-3));
  // an .onnx goes to PyTorch as given; the table
  REQUIRE(runCnnc(fmt::format("export {} --weights {} -o {}", (d / "vt.cnn").string(), npz, (d / "vt.onnx").string())).code == 0);
  Result t = runCnnc(fmt::format("bench {} --reps 2 --warmup 0 --vs-torch", (d / "vt.onnx").string()));
  REQUIRE(t.code == 0);
  CHECK_THAT(t.out, Catch::Contains("torch infer") && Catch::Contains("cnnc / PyTorch speed"));

  // The check can fail: the worker refuses outputs that are not the model's.
  const std::string worker = std::string(CNNC_SOURCE_DIR) + "/python/cnnc/onnx_torch.py";
  const std::string py = fmt::format(
      "/usr/bin/python3 -c 'import numpy as np; np.save(\"{0}/x.npy\", np.random.RandomState(2).rand(3,1,28,28)"
      ".astype(np.float32))' && {1} run {0}/vt.onnx --input {0}/x.npy --output {0}/y.npy > /dev/null && "
      "echo 'run 1' | /usr/bin/python3 {2} serve {0}/vt.onnx --inputs {0}/x.npy --expect {0}/y.npy",
      d.string(), CNNC_EXE, worker);
  const std::string good = runCommandOut(py);
  CHECK_THAT(good, Catch::Contains("\"ready\": true") && Catch::Contains("\"ms\": ["));
  const std::string bad = runCommandOut(fmt::format(
      "{} && /usr/bin/python3 -c 'import numpy as np; y = np.load(\"{}/y.npy\"); y[0, 3] += 0.005 * max(1, np.abs(y).max()); "
      "np.save(\"{}/y.npy\", y)' && /usr/bin/python3 {} serve {}/vt.onnx --inputs {}/x.npy --expect {}/y.npy; echo rc=$?",
      py, d.string(), d.string(), worker, d.string(), d.string(), d.string()));
  CHECK_THAT(bad, Catch::Contains("PyTorch and cnnc disagree") && Catch::Contains("rc=1"));
}

TEST_CASE("dump --lowering shows each node's storage and its kernel's layouts, and parses back", "[cli][dump]") {
  // AVX2: VGG's conv1 (3 channels) copies its input to zero-bordered planes, conv2 (64) to
  // the channel-blocked [N][C/8][Hp][Wp][8]; inference weights are packed once by prepare
  Result r = runCnnc("dump examples/vgg16.cnn --input-shape 32x32 --lowering --target-cpu x86-64-v3");
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("%conv1 = conv2d(") &&
                        Catch::Contains("x: copied to [N][C][34][34] planes (zero border)") &&
                        Catch::Contains("x: copied to [N][C/8][34][34][8] (zero border, channel-blocked)") &&
                        Catch::Contains("packed once by the prepare entry") && Catch::Contains("(8-lane vectors)") &&
                        Catch::Contains("codegen: view of %"));
  // MNIST's 8-wide rows at AVX2 are tiled across rows (ConvGeom::planeTiles)
  CHECK_THAT(runCnnc("dump examples/mnist_base.cnn --lowering --target-cpu x86-64-v3").out,
             Catch::Contains("pixels of the plane, across rows"));
  // a training step (params change every call) packs its weights per call and fuses its SGD
  Result t = runCnnc("dump examples/mnist_base.cnn --train --batch 10 --lowering --target-cpu x86-64-v3");
  REQUIRE(t.code == 0);
  const std::string step = t.out.substr(t.out.find("@train_step"));
  CHECK_THAT(step, Catch::Contains("packed every call") && Catch::Contains("codegen: fused SGD update pass") &&
                       !Catch::Contains("packed once by the prepare entry"));
  // comments are comments: the annotated dump reads back as the same IR, and annotating it
  // again replaces the account instead of repeating it
  fs::path f = tmpDir() / "lowered.ir";
  write(f, r.out);
  Result plain = runCnnc("dump examples/vgg16.cnn --input-shape 32x32");
  Result back = runCnnc(fmt::format("dump {}", f.string()));
  REQUIRE(back.code == 0);
  auto strip = [](const std::string &s) {
    std::string out, line;
    std::istringstream in(s);
    while (std::getline(in, line))
      out += line.substr(0, line.find("  //")) + "\n";
    return out;
  };
  CHECK(strip(back.out) == strip(plain.out));
  Result again = runCnnc(fmt::format("dump {} --lowering --target-cpu x86-64-v3", f.string()));
  REQUIRE(again.code == 0);
  CHECK(again.out == r.out);
  // it annotates the final IR only
  Result bad = runCnnc("dump examples/mnist_base.cnn --emit=input --lowering");
  CHECK(bad.code == 1);
  CHECK_THAT(bad.err, Catch::Contains("--lowering annotates the final IR"));
}
