#include "common/subprocess.h"

#include <atomic>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting {
namespace {

using ::testing::HasSubstr;

TEST(RunProcessTest, AnswersTheOutputOfAProgramThatSucceeds) {
  ProcessOptions o;
  o.env = {"GREETING=hello"};
  absl::StatusOr<std::string> out =
      RunProcess({"/bin/sh", "-c", "echo $GREETING; echo err >&2"}, o);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "hello\nerr\n");
}

TEST(RunProcessTest, AFailureNamesTheExitCodeAndTheLastLines) {
  absl::Status st = RunProcess({"/bin/sh", "-c", "echo one; echo two; exit 3"}).status();
  EXPECT_TRUE(absl::IsInternal(st)) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("/bin/sh exited 3: one\ntwo"));
  absl::Status missing = RunProcess({"/nonexistent/tool"}).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(missing)) << missing;
  EXPECT_THAT(std::string(missing.message()), HasSubstr("could not be run"));
}

TEST(RunProcessTest, ATimeoutOrACancelStopsTheProcessAndWhatItStarted) {
  ProcessOptions o;
  o.timeout = absl::Milliseconds(300);
  absl::Status st = RunProcess({"/bin/sh", "-c", "sleep 30 & wait"}, o).status();
  EXPECT_TRUE(absl::IsDeadlineExceeded(st)) << st;
  ProcessOptions c;
  std::atomic<int> polls{0};
  c.cancelled = [&] { return ++polls > 3; };
  absl::Status cancelled = RunProcess({"/bin/sleep", "30"}, c).status();
  EXPECT_TRUE(absl::IsCancelled(cancelled)) << cancelled;
}

}  // namespace
}  // namespace hosting
