#include "proxy/lb/murmur3.h"

#include <cstddef>

namespace weir::lb {
namespace {

constexpr uint64_t kC1 = 0x87c37b91114253d5ULL;
constexpr uint64_t kC2 = 0x4cf5ad432745937fULL;

uint64_t Rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

// Final avalanche: every input bit affects every output bit.
uint64_t Fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

// Little-endian load of up to 8 bytes, so that big-endian hosts hash like x86.
uint64_t LoadLittleEndian(const unsigned char* bytes, size_t count) {
  uint64_t word = 0;
  for (size_t i = 0; i < count; ++i) word |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  return word;
}

uint64_t MixK1(uint64_t k1) {
  k1 *= kC1;
  k1 = Rotl64(k1, 31);
  k1 *= kC2;
  return k1;
}

uint64_t MixK2(uint64_t k2) {
  k2 *= kC2;
  k2 = Rotl64(k2, 33);
  k2 *= kC1;
  return k2;
}

}  // namespace

Hash128 MurmurHash3X64_128(absl::string_view data, uint32_t seed) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  const size_t length = data.size();
  const size_t block_count = length / 16;

  uint64_t h1 = seed;
  uint64_t h2 = seed;

  for (size_t i = 0; i < block_count; ++i) {
    const uint64_t k1 = LoadLittleEndian(bytes + 16 * i, 8);
    const uint64_t k2 = LoadLittleEndian(bytes + 16 * i + 8, 8);

    h1 ^= MixK1(k1);
    h1 = Rotl64(h1, 27);
    h1 += h2;
    h1 = h1 * 5 + 0x52dce729;

    h2 ^= MixK2(k2);
    h2 = Rotl64(h2, 31);
    h2 += h1;
    h2 = h2 * 5 + 0x38495ab5;
  }

  // The 0..15 trailing bytes: the first eight feed k1, the rest k2.
  const unsigned char* tail = bytes + 16 * block_count;
  const size_t tail_length = length & 15;
  if (tail_length > 8) h2 ^= MixK2(LoadLittleEndian(tail + 8, tail_length - 8));
  if (tail_length > 0) h1 ^= MixK1(LoadLittleEndian(tail, tail_length < 8 ? tail_length : 8));

  h1 ^= static_cast<uint64_t>(length);
  h2 ^= static_cast<uint64_t>(length);
  h1 += h2;
  h2 += h1;
  h1 = Fmix64(h1);
  h2 = Fmix64(h2);
  h1 += h2;
  h2 += h1;
  return Hash128{h1, h2};
}

}  // namespace weir::lb
