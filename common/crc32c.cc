#include "common/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace hosting {
namespace {

constexpr uint32_t kPolynomial = 0x82F63B78;  // Castagnoli, reflected

constexpr std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPolynomial : c >> 1;
    table[i] = c;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kTable = MakeTable();

// Shifting a CRC past zero bytes (zlib's crc32_combine method, as Mark Adler's crc32c.c
// uses it): a 32x32 matrix over GF(2) per operator, turned into four byte tables.
uint32_t Gf2Times(const uint32_t* mat, uint32_t vec) {
  uint32_t sum = 0;
  for (; vec != 0; vec >>= 1, ++mat) {
    if (vec & 1) sum ^= *mat;
  }
  return sum;
}

void Gf2Square(uint32_t* square, const uint32_t* mat) {
  for (int n = 0; n < 32; ++n) square[n] = Gf2Times(mat, mat[n]);
}

// The tables that move a CRC register past `len` zero bytes.
struct ZeroShift {
  uint32_t table[4][256];
  explicit ZeroShift(size_t len) {
    uint32_t odd[32], even[32];
    odd[0] = kPolynomial;  // one zero bit
    for (int n = 1; n < 32; ++n) odd[n] = 1u << (n - 1);
    Gf2Square(even, odd);  // two zero bits
    Gf2Square(odd, even);  // four
    const uint32_t* op = nullptr;
    for (;;) {  // each square doubles: the first gives one zero byte
      Gf2Square(even, odd);
      len >>= 1;
      if (len == 0) {
        op = even;
        break;
      }
      Gf2Square(odd, even);
      len >>= 1;
      if (len == 0) {
        op = odd;
        break;
      }
    }
    for (uint32_t n = 0; n < 256; ++n) {
      table[0][n] = Gf2Times(op, n);
      table[1][n] = Gf2Times(op, n << 8);
      table[2][n] = Gf2Times(op, n << 16);
      table[3][n] = Gf2Times(op, n << 24);
    }
  }
  uint32_t Shift(uint32_t crc) const {
    return table[0][crc & 0xFF] ^ table[1][(crc >> 8) & 0xFF] ^ table[2][(crc >> 16) & 0xFF] ^
           table[3][crc >> 24];
  }
};

#if defined(__x86_64__)
// Three streams at once: the instruction's latency is three cycles and its throughput one, so
// one stream runs at a third of what the unit can do. Each block's thirds are summed side by
// side and joined by shifting the earlier ones past the later ones' length.
constexpr size_t kLong = 8192, kShort = 256;

template <size_t kLen>
__attribute__((target("sse4.2"))) inline void ThreeWay(uint64_t& c0, const char*& p, size_t& n,
                                                       const ZeroShift& shift) {
  while (n >= 3 * kLen) {
    uint64_t c1 = 0, c2 = 0;
    for (const char* end = p + kLen; p < end; p += 8) {
      uint64_t w0, w1, w2;
      std::memcpy(&w0, p, 8);
      std::memcpy(&w1, p + kLen, 8);
      std::memcpy(&w2, p + 2 * kLen, 8);
      c0 = _mm_crc32_u64(c0, w0);
      c1 = _mm_crc32_u64(c1, w1);
      c2 = _mm_crc32_u64(c2, w2);
    }
    c0 = shift.Shift(static_cast<uint32_t>(c0)) ^ static_cast<uint32_t>(c1);
    c0 = shift.Shift(static_cast<uint32_t>(c0)) ^ static_cast<uint32_t>(c2);
    p += 2 * kLen;
    n -= 3 * kLen;
  }
}

__attribute__((target("sse4.2"))) uint32_t Crc32cSse42(uint32_t crc, absl::string_view data) {
  static const ZeroShift* const long_shift = new ZeroShift(kLong);
  static const ZeroShift* const short_shift = new ZeroShift(kShort);
  const char* p = data.data();
  size_t n = data.size();
  uint64_t c = static_cast<uint32_t>(~crc);
  ThreeWay<kLong>(c, p, n, *long_shift);
  ThreeWay<kShort>(c, p, n, *short_shift);
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = _mm_crc32_u64(c, word);
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  for (; n > 0; ++p, --n) c32 = _mm_crc32_u8(c32, static_cast<uint8_t>(*p));
  return ~c32;
}

bool HasSse42() {
  static const bool has = __builtin_cpu_supports("sse4.2");
  return has;
}
#endif

}  // namespace

uint32_t Crc32cPortable(uint32_t crc, absl::string_view data) {
  uint32_t c = ~crc;
  for (unsigned char b : data) c = kTable[(c ^ b) & 0xFF] ^ (c >> 8);
  return ~c;
}

uint32_t Crc32c(uint32_t crc, absl::string_view data) {
#if defined(__x86_64__)
  if (HasSse42()) return Crc32cSse42(crc, data);
#endif
  return Crc32cPortable(crc, data);
}

}  // namespace hosting
