#include "common/line_splitter.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class LineSplitterTest : public ::testing::Test {
 protected:
  std::vector<std::string> lines_;
  LineSplitter splitter_{[this](absl::string_view l) { lines_.emplace_back(l); }, 16};
};

TEST_F(LineSplitterTest, WholeLinesInOneChunk) {
  splitter_.Feed("{\"a\":1}\n{\"b\":2}\n");
  EXPECT_THAT(lines_, ElementsAre("{\"a\":1}", "{\"b\":2}"));
  EXPECT_EQ(splitter_.pending_bytes(), 0u);
}

TEST_F(LineSplitterTest, LineSplitAcrossChunks) {
  splitter_.Feed("{\"a\"");
  EXPECT_THAT(lines_, IsEmpty());
  splitter_.Feed(":1}\n{\"b");
  EXPECT_THAT(lines_, ElementsAre("{\"a\":1}"));
  splitter_.Feed("\":2}\n");
  EXPECT_THAT(lines_, ElementsAre("{\"a\":1}", "{\"b\":2}"));
}

TEST_F(LineSplitterTest, ByteAtATime) {
  for (char c : std::string("ab\ncd\n")) splitter_.Feed(absl::string_view(&c, 1));
  EXPECT_THAT(lines_, ElementsAre("ab", "cd"));
}

TEST_F(LineSplitterTest, DropsEmptyLinesAndCarriageReturns) {
  splitter_.Feed("\n\r\nx\r\n\n");
  EXPECT_THAT(lines_, ElementsAre("x"));
}

TEST_F(LineSplitterTest, OverlongLineIsDiscardedAndStreamRecovers) {
  splitter_.Feed("0123456789");
  splitter_.Feed("0123456789");  // 20 bytes > 16: discarded
  splitter_.Feed("more\nok\n");
  EXPECT_THAT(lines_, ElementsAre("ok"));
  EXPECT_EQ(splitter_.discarded_lines(), 1u);
}

TEST_F(LineSplitterTest, OverlongLineInOneChunk) {
  splitter_.Feed("0123456789012345678901\nok\n");
  EXPECT_THAT(lines_, ElementsAre("ok"));
  EXPECT_EQ(splitter_.discarded_lines(), 1u);
}

}  // namespace
}  // namespace hosting
