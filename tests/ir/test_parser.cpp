// The textual IR parser: round trips, and one located error per kind of mistake.
#include "ir/IR.h"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace cnnc;

static std::string errorOf(const std::string &text) {
  try {
    parseModule(text, "t.ir");
  } catch (const Error &e) {
    return e.what();
  }
  return "(no error)";
}

TEST_CASE("IR round trip keeps comments, locations and several functions", "[ir][parser]") {
  std::string text = "func @infer {\n"
                     "  %x = input : f32[2,3]\n"
                     "  %y = relu(%x) : f32[2,3] loc(\"net.cnn\":4:1)  // eq. 12\n"
                     "  return %y\n"
                     "}\n"
                     "\n"
                     "func @other {\n"
                     "  %a = input : f64[4]\n"
                     "  %c = constant {value=[1.0,2.0,-inf,0.5]} : f64[4]\n"
                     "  %s = add(%a, %c) : f64[4]\n"
                     "  return %s, %a\n"
                     "}\n";
  auto m = parseModule(text, "t.ir");
  REQUIRE(m->functions().size() == 2);
  // Without locations the text is reproduced except for the explicit loc(...); with them,
  // nodes parsed from IR text are located at their line there.
  std::string noLoc = text;
  noLoc.erase(noLoc.find(" loc(\"net.cnn\":4:1)"), std::string(" loc(\"net.cnn\":4:1)").size());
  CHECK(print(*m) == noLoc);
  std::string withLocs = print(*m, true);
  CHECK_THAT(withLocs, Catch::Contains("%y = relu(%x) : f32[2,3] loc(\"net.cnn\":4:1)  // eq. 12"));
  CHECK_THAT(withLocs, Catch::Contains("%x = input : f32[2,3] loc(\"t.ir\":2:3)"));
  CHECK(print(*parseModule(withLocs, "u.ir"), true) == withLocs);
  const Node *y = m->main().find("y");
  CHECK(y->comment == "eq. 12");
  CHECK(y->loc.file == "net.cnn");
  CHECK(y->loc.line == 4);
  // Without a loc(...), a node is located at its line in the IR text.
  CHECK(m->main().find("x")->loc.str() == "t.ir:2:3");
}

TEST_CASE("IR text stays one line per node whatever bytes a name or comment holds", "[ir][parser]") {
  // An ONNX node's name becomes its comment, a file name its loc(): a newline or a NUL there
  // must not end the line or the input (fuzz finding: "Relu 'a\nb'" did not parse back).
  auto m = parseModule("func @f {\n  %x = input : f32[2]\n  %y = relu(%x) : f32[2]\n  return %y\n}\n", "t.ir");
  Node *y = m->main().find("y");
  using namespace std::string_literals;
  y->comment = "Relu 'a\nb\r\0c\x7f'"s;
  y->loc.file = "dir\"/x\ny\\z\0.onnx"s;
  REQUIRE(y->loc.file.size() == 16);
  std::string text = print(*m, true);
  CHECK(std::count(text.begin(), text.end(), '\n') == 5);
  CHECK(std::none_of(text.begin(), text.end(), [](char c) { return (unsigned char)c < 0x20 && c != '\n'; }));
  CHECK_THAT(text, Catch::Contains("// Relu 'a\\x0ab\\x0d\\x00c\\x7f'"));
  auto back = parseModule(text, "u.ir");
  CHECK(back->main().find("y")->loc.file == y->loc.file); // strings parse back to their bytes
  CHECK(print(*back, true) == text);
}

TEST_CASE("IR parse errors carry file:line:col and a caret", "[ir][parser][errors]") {
  CHECK_THAT(errorOf("func @f {\n  %x = input : f32[1]\n  %y = frob(%x) : f32[1]\n  return %y\n}\n"),
             Catch::Contains("t.ir:3:8: error: unknown op 'frob'") && Catch::Contains("^~~~"));
  CHECK_THAT(errorOf("func @f {\n  %y = relu(%nope) : f32[1]\n  return %y\n}\n"),
             Catch::Contains("t.ir:2:13: error: use of undefined value %nope"));
  CHECK_THAT(errorOf("func @f {\n  %x = input : f32[1]\n  %x = relu(%x) : f32[1]\n  return %x\n}\n"),
             Catch::Contains("t.ir:3:3: error: value %x is defined twice"));
  CHECK_THAT(errorOf("func @f {\n  %x = input : q8[1]\n  return %x\n}\n"),
             Catch::Contains("t.ir:2:16: error: expected an element type"));
  CHECK_THAT(errorOf("func @f {\n  %x = input : f32[1,4]\n  %y = dropout(%x) {rate=\"high\"} : f32[1,4]\n  return %y\n}\n"),
             Catch::Contains("t.ir:3:26: error: attribute 'rate' expects a number"));
  CHECK_THAT(errorOf("func @f {\n  %x = input : f32[1,4]\n  %y = relu(%x) {axis=1} : f32[1,4]\n  return %y\n}\n"),
             Catch::Contains("t.ir:3:18: error: op 'relu' has no attribute 'axis'"));
  CHECK_THAT(errorOf("func @f {\n  %x = input : f32[1,4]\n  return %x\n"),
             Catch::Contains("t.ir:4:1: error: expected '}' to close the function body"));
  CHECK_THAT(errorOf("func @f {\n  %x = input : f32[1,4]\n  relu(%x)\n}\n"),
             Catch::Contains("t.ir:3:3: error: expected a node definition (%name = ...) or 'return'"));
  CHECK_THAT(errorOf("func @f {\n  %s = param {init=\"zeros} : f32[1]\n  return %s\n}\n"),
             Catch::Contains("t.ir:2:20: error: unterminated string"));
  CHECK_THAT(errorOf("func @f {\n  %x = input : f32[1]\n  return %x\n}\nfunc @f {\n  %x = input : f32[1]\n  return %x\n}\n"),
             Catch::Contains("t.ir:5:6: error: function @f is defined twice"));
  CHECK_THAT(errorOf("func @f {\n  %x = input : f32[1,99999999999999999999]\n  return %x\n}\n"),
             Catch::Contains("t.ir:2:")); // an out-of-range number is an error, not a crash
}

TEST_CASE("@infer and @train_step are found by role, not by name", "[ir][parser]") {
  auto m = parseModule("func @infer {\n  %x = input : f32[2]\n  return %x\n}\n"
                       "func @train_step {\n  %x = input : f32[2]\n  return %x\n}\n"
                       "func @other {\n  %x = input : f32[2]\n  return %x\n}\n");
  REQUIRE(m->find(FunctionRole::Infer) != nullptr);
  CHECK(m->find(FunctionRole::Infer) == m->find("infer"));
  CHECK(m->find(FunctionRole::TrainStep) == m->find("train_step"));
  CHECK(m->find("other")->role() == FunctionRole::Other);
  // a role set in memory names the function as the text form spells it
  Module n;
  Function &f = n.addFunction("training");
  CHECK(n.find(FunctionRole::TrainStep) == nullptr);
  f.setRole(FunctionRole::TrainStep);
  CHECK(n.find(FunctionRole::TrainStep) == &f);
  CHECK(f.name() == "train_step");
}
