#include "common/crc32c.h"

#include <random>
#include <string>

#include "gtest/gtest.h"

namespace hosting {
namespace {

// RFC 3720 (iSCSI), appendix B.4, and the customary check value.
TEST(Crc32cTest, KnownValues) {
  EXPECT_EQ(Crc32c(0, ""), 0u);
  EXPECT_EQ(Crc32c(0, "123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(0, std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(0, std::string(32, '\xFF')), 0x62A8AB43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(Crc32c(0, ascending), 0x46DD794Eu);
}

TEST(Crc32cTest, TheInstructionAndTheTableAgreeOnEveryLengthAndAlignment) {
  std::mt19937 rng(7);
  std::string data(3 * 8192 * 2 + 3 * 256 * 3 + 100, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (size_t offset = 0; offset < 9; ++offset) {
    // Short tails, one and more three-way blocks of each size, and what is left after them.
    for (size_t len : {0, 1, 7, 8, 9, 63, 64, 65, 767, 768, 769, 1000, 4090, 24575, 24576, 24577,
                       24576 + 768 + 5, 49152, 49152 + 2 * 768 + 13}) {
      const absl::string_view s(data.data() + offset, len);
      EXPECT_EQ(Crc32c(0, s), Crc32cPortable(0, s)) << "offset " << offset << " len " << len;
    }
  }
}

TEST(Crc32cTest, ExtendingInPiecesEqualsTheWhole) {
  const std::string all = "the quick brown fox jumps over the lazy dog, twice over";
  for (size_t cut = 0; cut <= all.size(); ++cut) {
    const absl::string_view a(all.data(), cut), b(all.data() + cut, all.size() - cut);
    EXPECT_EQ(Crc32c(Crc32c(0, a), b), Crc32c(0, all));
    EXPECT_EQ(Crc32cPortable(Crc32cPortable(0, a), b), Crc32c(0, all));
  }
}

}  // namespace
}  // namespace hosting
