// The cnnc tensor IR: a module of functions; a function is a list of nodes in SSA order.
//
// Semantics notes (read before writing a pass):
//  - Every node defines exactly one value, named by its SSA name (`%conv1`); names are unique
//    within a function. A node's operands are earlier nodes of the same function, so the node
//    list is always a topological order. Multi-output computations are several nodes
//    (batch-norm training = bn_mean + bn_var + batchnorm), which keeps every rule one-to-one.
//  - Values are immutable tensors. Parameter updates (training, issue 3) produce new values;
//    writing them back in place is the memory planner's decision, not the IR's.
//  - `input`, `param` and `constant` nodes are the sources; their types are declared. Every
//    other node's type is derived by its op's shape rule (ShapeRules.cpp) and checked by the
//    verifier.
//  - Floating-point arithmetic follows IEEE-754 binary32 for f32 values; the reference
//    interpreter may evaluate in f64 as an oracle.
#pragma once

#include "ir/Diagnostic.h"
#include "ir/Type.h"

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace cnnc {

// ---------------------------------------------------------------------------- op kinds --
enum class OpKind : uint8_t {
#define OP(Enum, Mnemonic, Operands, Attrs, Traits, Doc, Example) Enum,
#include "ir/Ops.def"
#undef OP
};
constexpr int kNumOps = 0
#define OP(Enum, Mnemonic, Operands, Attrs, Traits, Doc, Example) +1
#include "ir/Ops.def"
#undef OP
    ;

// ---------------------------------------------------------------------------- attributes --
/// An attribute value. Integers and integer lists are exact; floats are doubles printed so
/// that they parse back to the same bits.
using Attr = std::variant<int64_t, double, std::vector<int64_t>, std::vector<double>, std::string>;
enum class AttrKind : uint8_t { Int, Float, Ints, Floats, Str };
const char *attrKindName(AttrKind k);
AttrKind attrKindOf(const Attr &a);
std::string attrStr(const Attr &a); // IR syntax: 3, 0.5, [1,1], [0.5], "he"
std::string quote(std::string_view s);         // "a\"b\x0a": a string literal of the IR text
std::string escapeControl(std::string_view s); // control bytes as \xNN (comments stay one line)

// ---------------------------------------------------------------------------- op table --
struct OperandSpec {
  std::string name;
  bool optional = false; // `b?`
  bool variadic = false; // `xs*`
};
struct AttrSpec {
  std::string name;
  AttrKind kind;
  std::optional<Attr> defaultValue; // none = required
};
/// How an op's loops follow the runtime mini-batch (the `batch:` trait of Ops.def; read by
/// codegen/Plan.cpp's batch analysis).
enum class BatchRule : uint8_t {
  Elementwise, // numpy broadcasting: a batched operand's batch dim, aligned to the result
  Leading,     // N×... first operand batched in dim 0, so is the result; weights never
  Axis,        // normalises along `axis`, which must come after the operands' batch dim
  Fixed,       // its loops run at the compiled batch only
  Custom,      // a rule of its own
};
const char *batchRuleName(BatchRule r);

struct OpInfo {
  OpKind kind;
  std::string mnemonic;
  std::vector<OperandSpec> operands;
  std::vector<AttrSpec> attrs;
  bool source = false, elementwise = false, loss = false, stochastic = false;
  bool view = false; // the result is operand 0 reinterpreted (with `training`: when it is 0)
  bool macs = false; // a dense product: ModelStats counts its multiply-adds
  bool inPlace = false; // the result may be stored over a dying operand of its type (Ops.def)
  BatchRule batch = BatchRule::Fixed;
  std::string doc, example;

  int minOperands() const;
  int maxOperands() const; // -1 = unbounded
  const AttrSpec *attr(std::string_view name) const;
};
const OpInfo &opInfo(OpKind k);
const std::vector<OpInfo> &allOps();
std::optional<OpKind> opByMnemonic(std::string_view m);

// ---------------------------------------------------------------------------- nodes --
struct Node {
  OpKind op;
  std::string name; // SSA name without the '%'
  std::vector<Node *> operands;
  std::map<std::string, Attr> attrs; // only what is set; defaults come from the op table
  TensorType type;
  Loc loc;             // where the user wrote it (.cnn line, IR line), when known
  std::string comment; // printed after the node as `// ...` (e.g. "eq. 35"); not semantic

  const OpInfo &info() const { return opInfo(op); }

  // Attribute accessors: the node's value, else the op table's default; a missing required
  // attribute or a kind mismatch is an internal error (the verifier rejects both first).
  int64_t getInt(std::string_view name) const;
  double getFloat(std::string_view name) const;
  std::vector<int64_t> getInts(std::string_view name) const;
  std::vector<double> getFloats(std::string_view name) const;
  std::string getStr(std::string_view name) const;
  const Attr &get(std::string_view name) const;
  bool has(std::string_view name) const { return attrs.count(std::string(name)) != 0; }

  /// "node %conv1 (conv2d)" plus " at file:line:col" when located: the prefix of every
  /// error that names a node.
  std::string describe() const;
};

// ---------------------------------------------------------------------------- functions --
/// What a function is for. Tools and backends find a module's @infer and @train_step by
/// role (Module::find(FunctionRole)); the textual IR spells a role as the function's name,
/// and the parser gives @infer and @train_step their roles.
enum class FunctionRole : uint8_t { Other, Infer, TrainStep };

/// Function::add's type argument: a type, or none (`{}`: derive it by the shape rule).
struct GivenType {
  std::optional<TensorType> type;
  GivenType() = default;
  GivenType(TensorType t) : type(std::move(t)) {}
  GivenType(DType d, Shape s) : type(TensorType{d, std::move(s)}) {}
  GivenType(std::optional<TensorType> t) : type(std::move(t)) {}
};

class Function {
public:
  explicit Function(std::string name) : name_(std::move(name)) {}
  Function(const Function &) = delete;
  Function &operator=(const Function &) = delete;

  const std::string &name() const { return name_; }
  void setName(std::string n) { name_ = std::move(n); }
  FunctionRole role() const { return role_; }
  /// Gives the function its role and the role's name (@infer, @train_step).
  void setRole(FunctionRole r);

  /// Appends a node; its name must be new in this function (made unique with a numeric
  /// suffix if `uniquify`, an error otherwise). Returns the node, owned by the function.
  /// Without a `type`, the op's shape rule derives it from the operands (inferType) before
  /// the node is appended: a shape error throws cnnc::Error naming the node and adds nothing.
  /// Sources (input, param, constant) must be given their type; a given type is taken as
  /// written (the parser's), and verify() checks it against the rule.
  Node *add(OpKind op, std::string name, std::vector<Node *> operands = {},
            std::map<std::string, Attr> attrs = {}, GivenType type = {}, Loc loc = {},
            bool uniquify = false);
  Node *find(std::string_view name) const; // nullptr if absent
  /// Moves a node without operands (a source) to the start of the function, so that nodes
  /// anywhere in it may use it.
  void moveToFront(Node *n);
  /// Moves n to just before pos, e.g. a node a pass appended that pos's replacement will use.
  /// n's operands must already come before pos (checked: internal error otherwise).
  void moveBefore(Node *n, const Node *pos);

  const std::vector<std::unique_ptr<Node>> &nodes() const { return nodes_; }
  std::vector<Node *> nodeList() const;
  std::vector<Node *> &outputs() { return outputs_; }
  const std::vector<Node *> &outputs() const { return outputs_; }

  /// Removes nodes for which keep(n) is false. The caller guarantees no kept node or output
  /// uses a removed one (checked: internal error otherwise).
  template <class Pred> void removeIf(Pred drop);
  /// Replaces every use of `from` (operands and outputs) with `to`.
  void replaceAllUses(Node *from, Node *to);
  /// Number of uses of n as an operand or output.
  int useCount(const Node *n) const;

private:
  std::string name_;
  FunctionRole role_ = FunctionRole::Other;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::map<std::string, Node *, std::less<>> byName_;
  std::vector<Node *> outputs_;
};

/// The role a function of that name has in textual IR (Other for any other name).
FunctionRole roleOfName(std::string_view name);

class Module {
public:
  Function &addFunction(std::string name);
  Function *find(std::string_view name) const;
  Function *find(FunctionRole role) const; // the first function with that role, or nullptr
  /// Moves another module's function into this one, at the end (its name must be new here).
  Function &adopt(std::unique_ptr<Function> f);
  /// Takes a function out of the module.
  std::unique_ptr<Function> release(std::string_view name);
  const std::vector<std::unique_ptr<Function>> &functions() const { return functions_; }
  Function &main() const; // the first function; internal error if none

private:
  std::vector<std::unique_ptr<Function>> functions_;
};

template <class Pred> void Function::removeIf(Pred drop) {
  std::vector<std::unique_ptr<Node>> kept;
  for (auto &n : nodes_) {
    if (drop(n.get()))
      byName_.erase(n->name);
    else
      kept.push_back(std::move(n));
  }
  nodes_ = std::move(kept);
  for (auto &n : nodes_)
    for (Node *o : n->operands)
      CNNC_ASSERT(byName_.count(o->name) && byName_.at(o->name) == o, "removed node still used");
  for (Node *o : outputs_)
    CNNC_ASSERT(byName_.count(o->name) && byName_.at(o->name) == o, "removed node is an output");
}

// ---------------------------------------------------------------------------- services --
/// Textual IR. `printLocs` appends ` loc("file":line:col)` to located nodes.
std::string print(const Module &m, bool printLocs = false);
std::string print(const Function &f, bool printLocs = false);
/// docs/ops.md: every op's doc, operands, attributes and example, from the table.
std::string opsMarkdown();
/// Graphviz DOT of a function (`cnnc dump --format=dot`).
std::string printDot(const Function &f);
/// Parses textual IR (the printer's output). Errors carry file:line:col and a caret.
std::unique_ptr<Module> parseModule(std::string_view text, const std::string &filename = "<ir>");

/// Derives a non-source node's type from its operands by the op's shape rule. Throws
/// cnnc::Error naming the node on a shape error.
TensorType inferType(const Node &n);
/// The attributes of a reshape to the concrete `shape`: allowzero=1 when it holds a 0 (a
/// zero-size dim), since a 0 entry would otherwise copy the input's dim.
std::map<std::string, Attr> reshapeAttrs(const Shape &shape);
/// Checks the whole function: operand counts and order, attribute names, kinds and values,
/// types consistent with the shape rules, unique names, outputs present. Throws cnnc::Error.
void verify(const Function &f);
void verify(const Module &m);

} // namespace cnnc
