// The op table drives printing, parsing and verification; each op's documented example must
// be real IR: it parses (inside a function that defines its operands) and prints back
// identically.
#include "ir/IR.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <regex>
#include <set>

using namespace cnnc;

namespace {
// Wraps a one-line example in a function, declaring each operand it uses as an input of a
// type the example's op accepts. The types are the ones the examples were written for.
std::string wrap(const OpInfo &op) {
  static const std::map<std::string, std::string> operandTypes = {
      {"conv2d", "%data : f32[100,1,28,28]; %conv1.w : f32[20,1,5,5]; %conv1.b : f32[20]"},
      {"maxpool", "%conv1 : f32[100,20,24,24]"},
      {"avgpool", "%x : f32[1,64,56,56]"},
      {"global_avgpool", "%x : f32[1,512,7,7]"},
      {"relu", "%conv1 : f32[1,64,224,224]"},
      {"fc", "%flat : f32[1,25088]; %fc6.w : f32[4096,25088]; %fc6.b : f32[4096]"},
      {"matmul", "%a : f32[64,32]; %b : f32[10,32]"},
      {"batch_matmul", "%a : f32[2,3,4]; %b : f32[2,4,5]"},
      {"softmax_xent_nd", "%x : f32[3,4,5]; %y : i64[3,5]; %w : f32[4]"},
      {"add", "%branch : f32[1,16,28,28]; %shortcut : f32[1,16,28,28]"},
      {"concat", "%a : f32[1,64,28,28]; %b : f32[1,32,28,28]"},
      {"flatten", "%pool5 : f32[1,512,7,7]"},
      {"reshape", "%x : f32[1,32,5,5]"},
      {"softmax", "%fc8 : f32[1,1000]"},
      {"log_softmax", "%fc8 : f32[1,1000]"},
      {"batchnorm", "%conv1 : f32[100,20,24,24]; %bn1.scale : f32[20]; %bn1.bias : f32[20]; "
                    "%bn1.mean : f32[20]; %bn1.var : f32[20]"},
      {"bn_mean", "%conv1 : f32[100,20,24,24]"},
      {"bn_var", "%conv1 : f32[100,20,24,24]; %bn1.bmean : f32[20]"},
      {"bn_unbias", "%conv1 : f32[100,20,24,24]"},
      {"dropout", "%relu6 : f32[1,4096]"},
      {"softmax_xent", "%conv4 : f32[100,10]; %label : i32[100]"},
      {"l2_loss", "%y : f32[8,10]; %t : f32[8,10]"},
      {"count_correct", "%fc : f32[100,10]; %label : i32[100]"},
      {"transpose", "%x : f32[2,4,9]"},
      {"expand", "%g : f32[1,16,1,1]"},
      {"reduce_sum", "%dy : f32[8,16,7,7]"},
      {"slice", "%g : f32[1,96,28,28]"},
      {"im2row", "%x : f32[1,2,8,8]"},
      {"row2im", "%dphi : f32[1,64,9]"},
      {"relu_grad", "%dy : f32[1,64,56,56]; %x : f32[1,64,56,56]"},
      {"sigmoid_grad", "%dy : f32[1,10]; %y : f32[1,10]"},
      {"tanh_grad", "%dy : f32[1,10]; %y : f32[1,10]"},
      {"softmax_grad", "%dy : f32[1,10]; %y : f32[1,10]"},
      {"log_softmax_grad", "%dy : f32[1,10]; %y : f32[1,10]"},
      {"maxpool_grad", "%dy : f32[1,64,56,56]; %x : f32[1,64,112,112]"},
      {"avgpool_grad", "%dy : f32[1,8,2,2]"},
      {"batchnorm_grad", "%dy : f32[8,16,7,7]; %x : f32[8,16,7,7]; %s : f32[16]; %m : f32[16]; %v : f32[16]"},
      {"bn_mean_grad", "%dm : f32[16]; %x : f32[8,16,7,7]"},
      {"bn_var_grad", "%dv : f32[16]; %x : f32[8,16,7,7]; %m : f32[16]"},
      {"bn_train_grad", "%dy : f32[8,16,7,7]; %x : f32[8,16,7,7]; %s : f32[16]; %m : f32[16]; %v : f32[16]; %ds : f32[16]; %db : f32[16]"},
      {"softmax_xent_grad", "%one : f32[]; %fc : f32[100,10]; %label : i32[100]"},
      {"l2_loss_grad", "%one : f32[]; %y : f32[8,10]; %t : f32[8,10]"},
      {"conv2d_grad_filter", "%data : f32[100,1,28,28]; %conv1.dy : f32[100,20,24,24]"},
      {"conv2d_grad_input", "%conv2.dy : f32[100,50,8,8]; %conv2.w : f32[50,20,5,5]"},
      {"filter_flip", "%conv2.w : f32[50,20,5,5]"},
      {"update", "%conv1.w : f32[20,1,5,5]; %conv1.w.new : f32[20,1,5,5]"},
      {"pad", "%x : f32[1,64,56,56]"},
      {"pad_grad", "%dy : f32[1,64,58,58]"},
      {"clip_grad", "%dy : f32[1,10]; %x : f32[1,10]"},
      {"prelu", "%x : f32[1,10]; %slope : f32[1]"},
      {"reduce_max", "%x : f32[1,64,7,7]"},
      {"reduce_min", "%x : f32[2,3,5]"},
      {"argmax", "%prob : f32[1,1000]"},
      {"equal_mask", "%x : f32[1,64,7,7]; %m : f32[1,64,1,1]"},
  };
  std::string decls;
  auto it = operandTypes.find(op.mnemonic);
  std::string spec = it != operandTypes.end() ? it->second : "%a : f32[1,10]; %b : f32[1,10]; %x : f32[1,10]";
  std::regex item(R"(%([\w.]+) : ([^;]+))");
  std::string example = op.example;
  for (std::sregex_iterator m(spec.begin(), spec.end(), item), end; m != end; ++m)
    if (example.find("%" + (*m)[1].str() + ")") != std::string::npos ||
        example.find("%" + (*m)[1].str() + ",") != std::string::npos)
      // update's first operand must be a param; every other operand is declared an input.
      decls += fmt::format("  %{} = {} : {}\n", (*m)[1].str(),
                           op.kind == OpKind::Update && (*m)[1].str() == "conv1.w" ? "param" : "input",
                           (*m)[2].str());
  std::string result = example.substr(1, example.find(' ') - 1);
  return fmt::format("func @example {{\n{}  {}\n  return %{}\n}}\n", decls, example, result);
}
} // namespace

TEST_CASE("every op has a mnemonic, a doc line and an example that round-trips", "[ir][ops]") {
  std::set<std::string> mnemonics;
  REQUIRE(allOps().size() == (size_t)kNumOps);
  for (const OpInfo &op : allOps()) {
    INFO(op.mnemonic);
    CHECK(mnemonics.insert(op.mnemonic).second);
    CHECK(opByMnemonic(op.mnemonic) == op.kind);
    CHECK(!op.doc.empty());
    REQUIRE(!op.example.empty());
    std::string text = wrap(op);
    INFO(text);
    auto m = parseModule(text, "example.ir");
    CHECK(print(*m) == text);
    const Node &n = *m->main().nodes().back();
    CHECK(n.op == op.kind);
  }
}

TEST_CASE("attribute defaults come from the table and are not printed", "[ir][ops]") {
  const OpInfo &conv = opInfo(OpKind::Conv2d);
  REQUIRE(conv.attr("stride"));
  CHECK(std::get<std::vector<int64_t>>(*conv.attr("stride")->defaultValue) == std::vector<int64_t>{1, 1});
  CHECK(std::get<int64_t>(*conv.attr("groups")->defaultValue) == 1);
  CHECK(!opInfo(OpKind::MaxPool).attr("kernel")->defaultValue); // required
  CHECK(opInfo(OpKind::Conv2d).minOperands() == 2);
  CHECK(opInfo(OpKind::Conv2d).maxOperands() == 4); // x w b? r?
  CHECK(opInfo(OpKind::Concat).maxOperands() == -1);

  auto m = parseModule("func @f {\n  %x = input : f32[1,2,8,8]\n  %w = param : f32[4,2,3,3]\n"
                       "  %y = conv2d(%x, %w) {stride=[1,1], groups=1, pads=[1,1,1,1]} : f32[1,4,8,8]\n"
                       "  return %y\n}\n");
  CHECK(print(*m) == "func @f {\n  %x = input : f32[1,2,8,8]\n  %w = param : f32[4,2,3,3]\n"
                     "  %y = conv2d(%x, %w) {pads=[1,1,1,1]} : f32[1,4,8,8]\n  return %y\n}\n");
  CHECK(m->main().find("y")->getInts("stride") == std::vector<int64_t>{1, 1});
}

TEST_CASE("float attributes print so that they parse back to the same bits", "[ir][attr]") {
  for (double v : {0.1, 1e-5, 1.0, 3.0, 0.30000000000000004, 1e300, -2.5, 123456789.0}) {
    Attr a = v;
    std::string s = attrStr(a);
    INFO(s);
    CHECK(s.find_first_of(".e") != std::string::npos);
    auto m2 = parseModule(fmt::format("func @f {{\n  %c = constant {{value=[{}]}} : f32[]\n  return %c\n}}\n", s));
    CHECK(m2->main().find("c")->getFloats("value")[0] == v);
  }
}
