// The dropout mask generator: a counter-based hash, so that the mask of element i at step s
// is a pure function of (seed, s, i) with no generator state to thread through the graph.
// Compiled code must reproduce it bit for bit; docs/interp.md states the same definition.
//
//   mix(z)  = splitmix64 finaliser of z + 0x9e3779b97f4a7c15 (Steele, Lea & Flood 2014)
//   key     = mix(mix(seed) ^ step)
//   u(i)    = (mix(key ^ i) >> 11) * 2^-53        uniform in [0, 1), exact in a double
//   keep(i) = u(i) >= rate
#pragma once

#include <cstdint>

namespace cnnc::interp {

constexpr uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

constexpr uint64_t dropoutKey(uint64_t seed, uint64_t step) {
  return splitmix64(splitmix64(seed) ^ step);
}

/// The uniform draw of flat (row-major) element `index` under `key`.
constexpr double dropoutUniform(uint64_t key, uint64_t index) {
  return (double)(splitmix64(key ^ index) >> 11) * 0x1.0p-53;
}

} // namespace cnnc::interp
