// Negative tests: every class of mistake in a .cnn file gives one cnnc::Error at the exact
// file:line:col of the offending token, naming the problem, with the line and a caret
// underlining the token. And no input, however mangled, does anything but throw cnnc::Error.
#include "FrontendTestUtil.h"

#include <catch2/catch.hpp>

using namespace cnnc;
using namespace cnnc::test;

namespace {
struct Bad {
  const char *what;   // the error class
  std::string source; // the model
  std::string at;     // "line:col"
  std::string says;   // a phrase the message must contain
  int underline = 0;  // expected caret length (^ plus ~s); 0 = don't check
};
} // namespace

static const std::string in = "input data 1x8x8\n"; // line 1 of most cases

static const std::vector<Bad> kBad = {
    {"unknown layer", in + "convv 3 3x3\n", "2:1", "unknown layer 'convv' (did you mean 'conv'?)",
     5},
    {"unknown layer", in + "pool max 2x2\nsoftmaxx\n", "3:1", "unknown layer 'softmaxx'", 8},
    {"unknown option", in + "conv 3 3x3 strid 2\n", "2:12",
     "unknown option 'strid' for 'conv' (did you mean 'stride'?)", 5},
    {"unknown option", in + "relu fast\n", "2:6",
     "unknown option 'fast' for 'relu'; it takes no options", 4},
    {"unknown option", in + "pool max 2x2 countpad\n", "2:14",
     "unknown option 'countpad' for 'pool'", 8},
    {"repeated option", in + "conv 3 3x3 pad 1 pad 2\n", "2:18", "option 'pad' given twice", 3},
    {"bad value", in + "conv 3 3x3 stride two\n", "2:19", "bad stride 'two'", 3},
    {"bad value", in + "conv 3 3\n", "2:8", "bad kernel size '3': expected HxW", 1},
    {"bad value", in + "conv 3 3x3 pad 1,2,3\n", "2:16", "give 1, 2 (V,H) or 4 (T,L,B,R) values",
     5},
    {"bad value", in + "conv 3 3x3 pad -1\n", "2:16", "pad must be between 0 and", 2},
    {"bad value", in + "conv 3 3x3 init foo\n", "2:17", "unknown init scheme 'foo'", 3},
    {"bad value", in + "pool maxx 2x2\n", "2:6", "bad pooling type 'maxx'", 4},
    {"bad value", in + "dropout 1.5\n", "2:9", "the dropout rate must be in [0, 1)", 3},
    {"bad value", in + "bn eps 0\n", "2:8", "eps must be positive", 1},
    {"bad value", in + "bn eps x\n", "2:8", "bad eps 'x': expected a number", 1},
    {"bad value", in + "loss hinge\n", "2:6", "unknown loss 'hinge'", 5},
    {"bad value", in + "pad same\n", "2:5", "'pad same' needs a window", 4},
    {"bad value", in + "pad 1 mode mirror\n", "2:12", "bad pad mode 'mirror'", 6},
    {"bad value", in + "pad 8 mode reflect\n", "2:5", "reflect padding must be smaller than the image", 1},
    {"unknown option", in + "pad 1 fill 2\n", "2:7", "unknown option 'fill' for 'pad'", 4},
    {"missing value", in + "conv 3 3x3 stride\n", "2:18", "option 'stride' needs a value", 1},
    {"missing value", in + "conv 3\n", "2:7", "'conv' needs a kernel size", 1},
    {"missing value", in + "fc\n", "2:3", "'fc' needs its output size", 1},
    {"non-positive size", in + "conv 0 3x3\n", "2:6", "channel count must be positive, got 0", 1},
    {"non-positive size", in + "conv 3 3x0\n", "2:10", "kernel size must be positive, got 0", 1},
    {"non-positive size", in + "fc -4\n", "2:4", "output size must be positive, got -4", 2},
    {"non-positive size", "input data 1x0x28\n", "1:14", "dimension must be positive, got 0", 1},
    {"non-positive size", in + "conv 3 3x3 stride 0\n", "2:19", "stride must be positive", 1},
    {"too large", "input data 3x1000000x1000000\nrelu\n", "1:1", "too large", 5},
    {"channel mismatch", in + "a: conv 4 3x3 pad 1\nb: conv 5 3x3 pad 1 < data\nadd < a b\n", "4:9",
     "'add' inputs differ in shape: 'a' is f32[1,4,8,8] but 'b' is f32[1,5,8,8]", 1},
    {"channel mismatch", in + "a: pool max 2x2\nconcat < a data\n", "3:12",
     "'concat' inputs differ in shape outside the channels", 4},
    {"groups mismatch", in + "conv 4 3x3 groups 3\n", "2:19", "groups=3 must divide both", 1},
    {"window too large", in + "conv 3 9x9\n", "2:8",
     "the 9x9 window is larger than its padded input 8x8", 3},
    {"window too large", in + "conv 3 3x3 dilation 4\n", "2:8", "the 9x9 window is larger", 3},
    {"window too large", in + "pool max 2x2\npool max 2x2\npool max 2x2\npool max 2x2\n", "5:10",
     "the 2x2 window is larger than its padded input 1x1 ('pool3' is f32[1,1,1,1])", 3},
    {"not an image", "input v 10\nconv 3 3x3\n", "2:1",
     "'conv' needs an image input [N,C,H,W], but 'v' is f32[1,10]", 4},
    {"not an image", "input v 10\ngap < v\n", "2:7", "'gap' needs an image input", 1},
    {"missing input name", in + "relu < nothere\n", "2:8", "unknown input 'nothere'", 7},
    {"missing input name", in + "first: relu\nrelu < frist\n", "3:8",
     "unknown input 'frist' (did you mean 'first'?)", 5},
    {"forward reference", in + "relu < later\nlater: relu\n", "2:8",
     "'later' is defined later, on line 3", 5},
    {"cycle", in + "a: relu < a\n", "2:11", "layer 'a' uses itself as its input (a cycle)", 1},
    {"duplicate name", in + "a: relu\nsigmoid\na: relu\n", "4:1",
     "duplicate name 'a' (first defined on line 2)", 1},
    {"duplicate name", in + "data: relu\n", "2:1", "duplicate name 'data'", 4},
    {"bad name", in + "1a: relu\n", "2:1", "bad layer name '1a'", 2},
    {"bad name", "input 3x3 1x8x8\n", "1:7", "bad input name '3x3'", 3},
    {"missing input line", "conv 3 3x3\n", "1:1", "'conv' has no input", 4},
    {"missing input line", "# nothing\n\n", "1:1", "no 'input' line", 0},
    {"missing input line", "", "1:1", "no 'input' line", 0},
    {"no layers", in, "1:1", "the network ends with an input", 5},
    {"input count", in + "add\n", "2:1", "'add' takes two inputs: 'add < A B'", 3},
    {"input count", in + "add < data\n", "2:5", "'add' takes two inputs", 1},
    {"input count", in + "concat < data\n", "2:8", "'concat' takes two or more inputs", 1},
    {"input count", in + "relu < data data\n", "2:13", "'relu' takes one input, got 2", 4},
    {"syntax", in + "relu <\n", "2:6", "expected input names after '<'", 1},
    {"syntax", in + "relu < data < data\n", "2:13", "a second '<'", 1},
    {"syntax", in + "a:\n", "2:3", "expected a layer after 'a:'", 1},
    {"syntax", in + "relu x : y\n", "2:8", "unexpected ':'", 1},
    {"syntax", in + "x: input y 1x2\n", "2:1", "an input is named after the keyword", 1},
    {"syntax", in + "input y 1x2 fast\n", "2:13", "unexpected 'fast'", 4},
    {"network", in + "network late\nrelu\n", "2:1", "'network' must come before", 7},
    {"network", "network 9lives\n" + in + "relu\n", "1:9", "'network' takes one name", 6},
    {"loss not last", in + "loss softmax\nrelu\n", "3:1",
     "a layer after the loss (line 2): the loss must be the last layer", 4},
};

TEST_CASE("every error class: location, message, caret", "[frontend][errors]") {
  for (const Bad &b : kBad) {
    INFO(b.what << ":\n" << b.source);
    std::string msg = errorOf(b.source);
    REQUIRE(!msg.empty());
    INFO("message:\n" << msg);
    CHECK(msg.rfind("t.cnn:" + b.at + ": error: ", 0) == 0);
    CHECK(msg.find(b.says) != std::string::npos);
    if (b.underline > 0) {
      // formatDiagnostic: "  <line>\n  <pad>^~~~" as the last two lines.
      std::string caret = msg.substr(msg.rfind('\n') + 1);
      std::string marks = caret.substr(caret.find('^'));
      CHECK(marks == "^" + std::string(b.underline - 1, '~'));
      int col = std::stoi(b.at.substr(b.at.find(':') + 1));
      CHECK(caret.find('^') == size_t(2 + col - 1));
    }
  }
}

TEST_CASE("the message shows the offending line", "[frontend][errors]") {
  std::string msg = errorOf("input data 1x8x8\n  conv 3 3x3 strid 2   # typo\n");
  CHECK(msg == "t.cnn:2:14: error: unknown option 'strid' for 'conv' (did you mean 'stride'?); "
               "expected one of: stride, pad, dilation, groups, init, nobias, widen\n"
               "    conv 3 3x3 strid 2   # typo\n"
               "               ^~~~~");
}

TEST_CASE("errors in options that change shapes", "[frontend][errors]") {
  CnnOptions o;
  o.width = 0.5; // 3 channels -> 2, no longer divisible by groups 3
  CHECK(errorOf("input x 3x8x8\nconv 3 3x3 groups 3 widen\n", o).find("after widening") !=
        std::string::npos);
  o = {};
  o.inputHW = std::pair<int64_t, int64_t>{2, 2};
  CHECK(errorOf("input x 3x8x8\nconv 3 3x3\n", o).rfind("t.cnn:2:8: error: the 3x3 window", 0) ==
        0);
  // The IR takes zero-size dims (docs/ir.md); the .cnn language keeps every size positive.
  o = {};
  o.batch = 0;
  CHECK(errorOf("input x 3x8x8\nrelu\n", o).find("batch size") != std::string::npos);
  o = {};
  o.inputHW = std::pair<int64_t, int64_t>{0, 8};
  CHECK(errorOf("input x 3x8x8\nrelu\n", o).find("input size must be positive") !=
        std::string::npos);
  o = {};
  o.width = -1;
  CHECK(errorOf("input x 3x8x8\nrelu\n", o).find("width multiplier") != std::string::npos);
  CHECK_THROWS_AS(parseCnnFile("/nonexistent/x.cnn"), Error);
}

// Deletes or replaces each token of the examples in turn: every variant must either parse or
// throw cnnc::Error (a crash or another exception fails the test run).
TEST_CASE("mangled examples never crash", "[frontend][errors]") {
  const std::vector<std::string> junk = {"",   "0",           "-1",   "x",   "<",    ":",
                                         "3x", "99999999999", "same", "1,2", "conv", "add"};
  int parsed = 0, rejected = 0;
  for (const char *name : {"resnet_mnist", "mnist_sk", "mnist_bn_dropout"}) {
    std::string text = readFile(examplePath(name));
    for (size_t pos = 0; pos < text.size();) {
      size_t start = text.find_first_not_of(" \n#", pos);
      if (start == std::string::npos)
        break;
      size_t end = text.find_first_of(" \n", start);
      for (const std::string &j : junk) {
        std::string mangled = text.substr(0, start) + j + text.substr(end);
        for (bool training : {false, true}) {
          CnnOptions o;
          o.training = training;
          try {
            parseCnn(mangled, "m.cnn", o);
            ++parsed;
          } catch (const Error &) {
            ++rejected;
          }
        }
      }
      pos = end;
    }
  }
  CHECK(parsed > 0);
  CHECK(rejected > 0);
}
