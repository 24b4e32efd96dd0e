// Parameter initialisation: determinism, independence, and the statistics of each scheme
// against its definition (moments within 5 standard errors on >= 10^5 draws).
#include "ir/ParamInit.h"

#include <catch2/catch.hpp>

#include <cmath>

using namespace cnnc;

namespace {

struct Moments {
  double mean = 0, sd = 0, min = INFINITY, max = -INFINITY, within1sd = 0;
};

Moments moments(const std::vector<double> &v) {
  Moments m;
  for (double x : v) {
    m.mean += x;
    m.min = std::min(m.min, x);
    m.max = std::max(m.max, x);
  }
  m.mean /= v.size();
  for (double x : v)
    m.sd += (x - m.mean) * (x - m.mean);
  m.sd = std::sqrt(m.sd / v.size());
  for (double x : v)
    m.within1sd += std::abs(x - m.mean) <= m.sd;
  m.within1sd /= v.size();
  return m;
}

std::vector<double> init(const std::string &scheme, Shape shape, uint64_t seed = 7,
                         const std::string &name = "w") {
  Function f("f");
  Node *p = f.add(OpKind::Param, name, {}, {{"init", scheme}}, TensorType{DType::F32, shape});
  return initParam(*p, seed);
}

// The draws of a normal scheme with standard deviation `sd`, checked as a normal sample.
void checkNormal(const std::vector<double> &v, double sd) {
  double n = v.size();
  Moments m = moments(v);
  INFO("mean " << m.mean << " sd " << m.sd << " within 1 sd " << m.within1sd);
  CHECK(std::abs(m.mean) < 5 * sd / std::sqrt(n));
  CHECK(std::abs(m.sd - sd) < 5 * sd / std::sqrt(2 * n));
  CHECK(std::abs(m.within1sd - 0.682689) < 5 * std::sqrt(0.682689 * 0.317311 / n));
}

} // namespace

TEST_CASE("init: deterministic per (seed, name), independent of other parameters", "[init]") {
  auto a = init("gauss(1)", {1000}, 42, "conv1.w");
  CHECK(a == init("gauss(1)", {1000}, 42, "conv1.w"));
  CHECK(a != init("gauss(1)", {1000}, 43, "conv1.w"));
  CHECK(a != init("gauss(1)", {1000}, 42, "conv2.w"));

  // The same parameter in two functions with different neighbours and order.
  Function f("f"), g("g");
  TensorType t{DType::F32, {20, 5}};
  f.add(OpKind::Param, "other", {}, {{"init", std::string("he")}}, t);
  Node *pf = f.add(OpKind::Param, "w", {}, {{"init", std::string("he")}}, t);
  Node *pg = g.add(OpKind::Param, "w", {}, {{"init", std::string("he")}}, t);
  g.add(OpKind::Param, "zz", {}, {{"init", std::string("he")}}, {DType::F32, {3}});
  auto vf = initParam(*pf, 9), vg = initParam(*pg, 9);
  CHECK(vf == vg);

  // Streams of different names are uncorrelated.
  auto x = init("gauss(1)", {100000}, 1, "a"), y = init("gauss(1)", {100000}, 1, "b");
  double corr = 0;
  for (size_t i = 0; i < x.size(); ++i)
    corr += x[i] * y[i];
  corr /= x.size();
  CHECK(std::abs(corr) < 5 / std::sqrt(100000.0));
}

TEST_CASE("init: constant schemes", "[init]") {
  CHECK(init("zeros", {2, 3}) == std::vector<double>(6, 0.0));
  CHECK(init("ones", {4}) == std::vector<double>(4, 1.0));
  CHECK(init("const(-2.5)", {3}) == std::vector<double>(3, -2.5));
  CHECK(init("const(1e-3)", {}) == std::vector<double>{1e-3});
  CHECK(init("zeros", {0, 4}).empty());
}

TEST_CASE("init: gauss(S) moments", "[init]") {
  checkNormal(init("gauss(0.01)", {100000}), 0.01);
  checkNormal(init("gauss(2.5)", {100001}, 3), 2.5); // odd count: the last pair is half used
  CHECK(init("gauss(0)", {10}) == std::vector<double>(10, 0.0));
}

TEST_CASE("init: he scale is sqrt(2 / fan_in)", "[init]") {
  // conv weight [M, C, kh, kw]: fan_in = C*kh*kw = 8*3*3 = 72
  checkNormal(init("he", {2000, 8, 3, 3}), std::sqrt(2.0 / 72));
  // fc weight [M, K]: fan_in = K
  checkNormal(init("he", {100, 1000}), std::sqrt(2.0 / 1000));
}

TEST_CASE("init: xavier is uniform(-a, a), a = sqrt(6 / (fan_in + fan_out))", "[init]") {
  // conv [M=50, C=16, 5, 5]: fan_in = 400, fan_out = 50*25 = 1250
  double a = std::sqrt(6.0 / (400 + 1250));
  auto v = init("xavier", {50, 16, 5, 5});
  Moments m = moments(v);
  double n = v.size(), sd = a / std::sqrt(3.0); // variance of uniform(-a, a) = a^2 / 3
  CHECK(m.min >= -a);
  CHECK(m.max <= a);
  CHECK(m.max > a * (1 - 1e-3)); // reaches both ends
  CHECK(m.min < -a * (1 - 1e-3));
  CHECK(std::abs(m.mean) < 5 * sd / std::sqrt(n));
  // sd of the sample variance of a uniform: sqrt((a^4/5 - a^4/9) / n)
  CHECK(std::abs(m.sd * m.sd - sd * sd) < 5 * a * a * std::sqrt((1.0 / 5 - 1.0 / 9) / n));
  // fc [M=10, K=784]: fan_in 784, fan_out 10
  double a2 = std::sqrt(6.0 / 794);
  Moments m2 = moments(init("xavier", {10, 784}));
  CHECK(m2.max <= a2);
  CHECK(m2.max > 0.99 * a2);
}

TEST_CASE("init: scheme strings are parsed strictly", "[init]") {
  for (std::string ok :
       {"zeros", "ones", "const(0.5)", "const(-3)", "gauss(0.01)", "gauss(1e-2)", "he", "xavier"}) {
    INFO(ok);
    CHECK(validInitScheme(ok));
  }
  for (std::string bad : {"", "zero", "He", "zeros ", " ones", "const()", "const(1.0", "const(x)",
                          "const( 1)", "const(nan)", "const(inf)", "gauss", "gauss()", "gauss(-1)",
                          "gauss(0.1)x", "gauss(0.1,2)", "uniform(1)"}) {
    INFO("'" << bad << "'");
    CHECK_FALSE(validInitScheme(bad));
    Function f("f");
    Node *p = f.add(OpKind::Param, "conv1.w", {}, {{"init", bad}}, {DType::F32, {2}});
    try {
      initParam(*p, 0);
      FAIL("no error");
    } catch (const Error &e) {
      std::string msg = e.what();
      CHECK(msg.find(p->describe()) != std::string::npos);
      CHECK(msg.find("init scheme") != std::string::npos);
    }
  }
}
