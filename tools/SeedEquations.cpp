// The seed's numbered equations (1-56) as LaTeX, copied from its text
// (shared/seed/000_f2e52e0d0dfadf81.txt, one `$$...\quad (N)$$` line each) so that `cnnc explain`
// can render any equation a node cites with KaTeX. Generated once; the seed does not change.
#include "tools/SeedEquations.h"

namespace cnnc::tools {

const char *seedEquation(int n) {
  static const char *const eqs[] = {
      R"seed(A = \begin{bmatrix} 1 & 2 \\ 3 & 4 \end{bmatrix}, \quad A(\cdot) = (1, 3, 2, 4)^T = \begin{bmatrix} 1 \\ 3 \\ 2 \\ 4 \end{bmatrix})seed", // 1
      R"seed(\left[ \frac{\partial z}{\partial \mathbf{y}} \right]_i = \frac{\partial z}{\partial y_i})seed", // 2
      R"seed(\left[ \frac{\partial \mathbf{y}}{\partial \mathbf{x}^T} \right]_{ij} = \frac{\partial y_i}{\partial x_j})seed", // 3
      R"seed(\frac{\partial z}{\partial \mathbf{x}^T} = \frac{\partial z}{\partial \mathbf{y}^T} \frac{\partial \mathbf{y}}{\partial \mathbf{x}^T})seed", // 4
      R"seed(\mathbf{x}^1 \longrightarrow \boxed{\mathbf{w}^1} \longrightarrow \mathbf{x}^2 \longrightarrow \dots \longrightarrow \mathbf{x}^{L-1} \longrightarrow \boxed{\mathbf{w}^{L-1}} \longrightarrow \mathbf{x}^L \longrightarrow \boxed{\mathbf{w}^L} \longrightarrow z)seed", // 5
      R"seed(z = \frac{1}{2} \|\mathbf{t} - \mathbf{x}^L\|^2)seed", // 6
      R"seed(\arg \max_i x_i^L)seed", // 7
      R"seed(\mathbf{w}^i \longleftarrow \mathbf{w}^i - \eta \frac{\partial z}{\partial \mathbf{w}^i})seed", // 8
      R"seed((\mathbf{w}^i)^{t+1} = (\mathbf{w}^i)^t - \eta \frac{\partial z}{\partial (\mathbf{w}^i)^t})seed", // 9
      R"seed(\frac{\partial z}{\partial (\text{vec}(\mathbf{w}^i)^T)} = \frac{\partial z}{\partial (\text{vec}(\mathbf{x}^{i+1})^T)} \frac{\partial \text{vec}(\mathbf{x}^{i+1})}{\partial (\text{vec}(\mathbf{w}^i)^T)})seed", // 10
      R"seed(\frac{\partial z}{\partial (\text{vec}(\mathbf{x}^i)^T)} = \frac{\partial z}{\partial (\text{vec}(\mathbf{x}^{i+1})^T)} \frac{\partial \text{vec}(\mathbf{x}^{i+1})}{\partial (\text{vec}(\mathbf{x}^i)^T)})seed", // 11
      R"seed(y_{i,j,d} = \max\{0, x_{i,j,d}^l\})seed", // 12
      R"seed(\frac{dy_{i,j,d}}{dx_{i,j,d}^l} = \llbracket x_{i,j,d}^l > 0 \rrbracket)seed", // 13
      R"seed(\left[ \frac{\partial z}{\partial \mathbf{x}^l} \right]_{i,j,d} = \begin{cases} \left[ \frac{\partial z}{\partial \mathbf{y}} \right]_{i,j,d} & \text{if } x_{i,j,d}^l > 0 \\ 0 & \text{otherwise} \end{cases})seed", // 14
      R"seed(y_{i^{l+1}, j^{l+1}, d} = \sum_{i=0}^H \sum_{j=0}^W \sum_{d^l=0}^{D^l} f_{i,j,d^l} \times x_{i^{l+1}+i, j^{l+1}+j, d^l}^l)seed", // 15
      R"seed(\begin{bmatrix} 1 & 2 & 3 & 1 \\ 4 & 5 & 6 & 1 \\ 7 & 8 & 9 & 1 \end{bmatrix} * \begin{bmatrix} 1 & 1 \\ 1 & 1 \end{bmatrix} = \begin{bmatrix} 12 & 16 & 11 \\ 24 & 28 & 17 \end{bmatrix})seed", // 16
      R"seed(B^T \begin{bmatrix} 1 \\ 1 \\ 1 \\ 1 \end{bmatrix} = \begin{bmatrix} 12 \\ 24 \\ 16 \\ 28 \\ 11 \\ 17 \end{bmatrix})seed", // 17
      R"seed(p = i^{l+1} + (H^l - H + 1) \times j^{l+1})seed", // 18
      R"seed(q = i + H \times j + H \times W \times d^l)seed", // 19
      R"seed(i^l = i^{l+1} + i)seed", // 20
      R"seed(j^l = j^{l+1} + j)seed", // 21
      R"seed(\text{vec}(\mathbf{y}) = \text{vec}(\mathbf{x}^{l+1}) = \text{vec}(\phi(\mathbf{x}^l)F))seed", // 22
      R"seed(A \otimes B = \begin{bmatrix} a_{11}B & \cdots & a_{1n}B \\ \vdots & \ddots & \vdots \\ a_{m1}B & \cdots & a_{mn}B \end{bmatrix})seed", // 23
      R"seed((A \otimes B)^T = A^T \otimes B^T)seed", // 24
      R"seed(\text{vec}(AXB) = (B^T \otimes A) \text{vec}(X))seed", // 25
      R"seed(\text{vec}(\mathbf{y}) = \text{vec}(\phi(\mathbf{x}^l)FI) = (I \otimes \phi(\mathbf{x}^l)) \text{vec}(F))seed", // 26
      R"seed(\text{vec}(\mathbf{y}) = \text{vec}(I\phi(\mathbf{x}^l)F) = (F^T \otimes I) \text{vec}(\phi(\mathbf{x}^l)))seed", // 27
      R"seed(\frac{\partial z}{\partial (\text{vec}(F))^T} = \frac{\partial z}{\partial (\text{vec}(Y)^T)} \frac{\partial \text{vec}(\mathbf{y})}{\partial (\text{vec}(F)^T)})seed", // 28
      R"seed(\frac{\partial \text{vec}(\mathbf{y})}{\partial (\text{vec}(F)^T)} = \frac{\partial ((I \otimes \phi(\mathbf{x}^l)) \text{vec}(F))}{\partial (\text{vec}(F)^T)} = I \otimes \phi(\mathbf{x}^l))seed", // 29
      R"seed(\frac{\partial z}{\partial (\text{vec}(F))^T} = \frac{\partial z}{\partial (\text{vec}(\mathbf{y})^T)} (I \otimes \phi(\mathbf{x}^l)))seed", // 30
      R"seed(\frac{\partial z}{\partial \text{vec}(F)} = (I \otimes \phi(\mathbf{x}^l))^T \frac{\partial z}{\partial \text{vec}(\mathbf{y})})seed", // 31
      R"seed(= (I \otimes \phi(\mathbf{x}^l)^T) \text{vec} \left( \frac{\partial z}{\partial Y} \right))seed", // 32
      R"seed(= \text{vec} \left( \phi(\mathbf{x}^l)^T \frac{\partial z}{\partial Y} I \right))seed", // 33
      R"seed(= \text{vec} \left( \phi(\mathbf{x}^l)^T \frac{\partial z}{\partial Y} \right))seed", // 34
      R"seed(\frac{\partial z}{\partial F} = \phi(\mathbf{x}^l)^T \frac{\partial z}{\partial Y})seed", // 35
      R"seed(M(x, y) = \begin{cases} 1 & \text{if } m(p, q) = (i^l, j^l, d^l) \\ 0 & \text{otherwise} \end{cases})seed", // 36
      R"seed(\text{vec}(\phi(\mathbf{x}^l)) = M \text{vec}(\mathbf{x}^l))seed", // 37
      R"seed(\frac{\partial \text{vec}(\mathbf{y})}{\partial (\text{vec}(\mathbf{x}^l)^T)} = \frac{\partial (F^T \otimes I) \text{vec}(\phi(\mathbf{x}^l))}{\partial (\text{vec}(\mathbf{x}^l)^T)} = (F^T \otimes I)M)seed", // 38
      R"seed(\frac{\partial z}{\partial (\text{vec}(\mathbf{x}^l)^T)} = \frac{\partial z}{\partial (\text{vec}(\mathbf{y})^T)} (F^T \otimes I)M)seed", // 39
      R"seed(\frac{\partial z}{\partial(\text{vec}(\mathbf{y})^T)}(F^T \otimes I) = \left( (F \otimes I) \frac{\partial z}{\partial \text{vec}(\mathbf{y})} \right)^T)seed", // 40
      R"seed(= \left( (F \otimes I) \text{vec} \left( \frac{\partial z}{\partial Y} \right) \right)^T)seed", // 41
      R"seed(= \text{vec} \left( I \frac{\partial z}{\partial Y} F^T \right)^T)seed", // 42
      R"seed(= \text{vec} \left( \frac{\partial z}{\partial Y} F^T \right)^T)seed", // 43
      R"seed(\frac{\partial z}{\partial(\text{vec}(\mathbf{x}^l)^T)} = \text{vec} \left( \frac{\partial z}{\partial Y} F^T \right)^T M)seed", // 44
      R"seed(\frac{\partial z}{\partial(\text{vec}(\mathbf{x}^l))} = M^T \text{vec} \left( \frac{\partial z}{\partial Y} F^T \right))seed", // 45
      R"seed(\left[ \frac{\partial z}{\partial X} \right]_{(i^l, j^l, d^l)} = \sum_{(p, q) \in m^{-1}(i^l, j^l, d^l)} \left[ \frac{\partial z}{\partial Y} F^T \right]_{(p, q)})seed", // 46
      R"seed(H^{l+1} = \frac{H^l}{H}, \quad W^{l+1} = \frac{W^l}{W}, \quad D^{l+1} = D^l)seed", // 47
      R"seed(\text{max :} \quad y_{i^{l+1}, j^{l+1}, d} = \max_{0 \leq i < H, 0 \leq j < W} x_{i^l \times H + i, j^l \times W + j, d}^l)seed", // 48
      R"seed(\text{average :} \quad y_{i^{l+1}, j^{l+1}, d} = \frac{1}{HW} \sum_{0 \leq i < H, 0 \leq j < W} x_{i^l \times H + i, j^l \times W + j, d}^l)seed", // 49
      R"seed(d^{l+1} = d^l)seed", // 50
      R"seed(\left\lfloor \frac{i^l}{H} \right\rfloor = i^{l+1}, \left\lfloor \frac{j^l}{W} \right\rfloor = j^{l+1})seed", // 51
      R"seed(x_{i^l, j^l, d^l}^l \geq y_{i+i^{l+1} \times H, j+j^{l+1} \times W, d^l}, \forall 0 \leq i < H, 0 \leq j < W)seed", // 52
      R"seed(S(\mathbf{x}^l) \in \mathbb{R}^{(H^{l+1}W^{l+1}D^{l+1}) \times (H^lW^lD^l)})seed", // 53
      R"seed(\text{vec}(\mathbf{y}) = S(\mathbf{x}^l) \text{vec}(\mathbf{x}^l))seed", // 54
      R"seed(\frac{\partial \text{vec}(\mathbf{y})}{\partial (\text{vec}(\mathbf{x}^l)^T)} = S(\mathbf{x}^l), \quad \frac{\partial z}{\partial (\text{vec}(\mathbf{x}^l)^T)} = \frac{\partial z}{\partial (\text{vec}(\mathbf{y})^T)} S(\mathbf{x}^l))seed", // 55
      R"seed(\frac{\partial z}{\partial \text{vec}(\mathbf{x}^l)} = S(\mathbf{x}^l)^T \frac{\partial z}{\partial \text{vec}(\mathbf{y})})seed", // 56
  };
  return n >= 1 && n <= int(sizeof eqs / sizeof *eqs) ? eqs[n - 1] : nullptr;
}

} // namespace cnnc::tools
