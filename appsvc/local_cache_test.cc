#include "appsvc/local_cache.h"

#include "gtest/gtest.h"

namespace hosting::appsvc {
namespace {

TEST(LocalCacheTest, GetPutEraseAndTtl) {
  FakeClock clock;
  LocalCache cache(1000, absl::Seconds(5), clock);
  EXPECT_FALSE(cache.Get("a").has_value());
  cache.Put("a", "1");
  EXPECT_EQ(cache.Get("a"), "1");
  cache.Put("a", "2");
  EXPECT_EQ(cache.Get("a"), "2");
  cache.Erase("a");
  EXPECT_FALSE(cache.Get("a").has_value());
  cache.Put("b", "x");
  clock.Advance(absl::Seconds(6));
  EXPECT_FALSE(cache.Get("b").has_value());
}

TEST(LocalCacheTest, BoundedByEvictingLeastRecentlyUsed) {
  FakeClock clock;
  LocalCache cache(16, absl::Minutes(1), clock);  // one entry per shard
  for (int i = 0; i < 1000; ++i) cache.Put("k" + std::to_string(i), "v");
  EXPECT_LE(cache.size(), 16u);
  cache.Clear();
  EXPECT_EQ(cache.size(), 0u);
}

TEST(LocalCacheTest, DisabledCacheHoldsNothing) {
  FakeClock clock;
  LocalCache cache(0, absl::Minutes(1), clock);
  EXPECT_FALSE(cache.enabled());
  cache.Put("a", "1");
  EXPECT_FALSE(cache.Get("a").has_value());
}

}  // namespace
}  // namespace hosting::appsvc
