// runtime/Parallel.c, the pool generated code runs on: every index of [0, n) is visited
// exactly once, in the fixed chunks [n*k/C, n*(k+1)/C), at any thread count; calls back to
// back (the spinning path) and after the workers fell asleep (the condition-variable path)
// both complete; NULL and one-thread pools run inline on the caller.
#include "runtime/Parallel.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

namespace {

struct Visits {
  std::vector<std::atomic<int>> count;
  std::mutex mu;
  std::set<std::pair<int64_t, int64_t>> ranges;
  std::set<std::thread::id> threads;
  explicit Visits(int64_t n) : count((size_t)n) {}
};

void body(void *ctx, int64_t b, int64_t e) {
  auto *v = static_cast<Visits *>(ctx);
  for (int64_t i = b; i < e; ++i)
    v->count[(size_t)i].fetch_add(1);
  std::lock_guard<std::mutex> lock(v->mu);
  v->ranges.insert({b, e});
  v->threads.insert(std::this_thread::get_id());
}

void checkOnce(cnnc_rt_pool *pool, int64_t n) {
  Visits v(n);
  cnnc_rt_parallel_for(pool, n, body, &v);
  for (int64_t i = 0; i < n; ++i) {
    INFO("n " << n << " index " << i);
    REQUIRE(v.count[(size_t)i].load() == 1);
  }
  const int64_t T = cnnc_rt_pool_threads(pool);
  const int64_t C = T == 1 ? 1 : std::min<int64_t>(n, 4 * T);
  std::set<std::pair<int64_t, int64_t>> want;
  for (int64_t k = 0; k < C; ++k)
    if (n * k / C < n * (k + 1) / C)
      want.insert({n * k / C, n * (k + 1) / C});
  if (n > 0)
    CHECK(v.ranges == want);
}

} // namespace

TEST_CASE("parallel_for visits every index once, in fixed chunks", "[runtime][threads]") {
  for (int threads : {1, 2, 3, 5}) {
    cnnc_rt_pool *pool = cnnc_rt_pool_create(threads);
    REQUIRE(pool);
    CHECK(cnnc_rt_pool_threads(pool) == threads);
    for (int64_t n : {0, 1, 2, 3, 7, 64, 1000, 12345})
      checkOnce(pool, n);
    for (int rep = 0; rep < 2000; ++rep) // back to back: workers spinning
      checkOnce(pool, 1 + rep % 37);
    std::this_thread::sleep_for(std::chrono::milliseconds(20)); // workers asleep
    checkOnce(pool, 999);
    cnnc_rt_pool_destroy(pool);
  }
}

TEST_CASE("a NULL or one-thread pool runs inline on the caller", "[runtime][threads]") {
  for (cnnc_rt_pool *pool : {(cnnc_rt_pool *)nullptr, cnnc_rt_pool_create(1)}) {
    Visits v(100);
    cnnc_rt_parallel_for(pool, 100, body, &v);
    CHECK(v.ranges == std::set<std::pair<int64_t, int64_t>>{{0, 100}});
    CHECK(v.threads == std::set<std::thread::id>{std::this_thread::get_id()});
    cnnc_rt_pool_destroy(pool);
  }
  CHECK(cnnc_rt_pool_threads(nullptr) == 1);
  CHECK(cnnc_rt_default_threads() >= 1);
  cnnc_rt_pool_destroy(nullptr); // a no-op
}

TEST_CASE("pools are independent: two pools driven from two threads", "[runtime][threads]") {
  cnnc_rt_pool *a = cnnc_rt_pool_create(2), *b = cnnc_rt_pool_create(2);
  REQUIRE((a && b));
  std::atomic<bool> ok{true};
  auto drive = [&](cnnc_rt_pool *p, int64_t n) {
    for (int rep = 0; rep < 500; ++rep) {
      Visits v(n);
      cnnc_rt_parallel_for(p, n, body, &v);
      for (int64_t i = 0; i < n; ++i)
        if (v.count[(size_t)i].load() != 1)
          ok = false;
    }
  };
  std::thread ta(drive, a, 101), tb(drive, b, 77);
  ta.join();
  tb.join();
  CHECK(ok.load());
  cnnc_rt_pool_destroy(a);
  cnnc_rt_pool_destroy(b);
}
