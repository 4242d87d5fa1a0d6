#pragma once

#include <functional>
#include <memory>
#include <string>

#include "controlplane/store/store.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {

// The behaviour every Store backend must have. A backend's test instantiates it:
//   INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformanceTest,
//                            ::testing::Values(StoreFactory{"memory", [] { ... }}));
struct StoreFactory {
  std::string name;
  std::function<std::unique_ptr<Store>()> make;
};

inline std::string StoreFactoryName(const ::testing::TestParamInfo<StoreFactory>& info) {
  return info.param.name;
}

class StoreConformanceTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    store_ = GetParam().make();
    ASSERT_NE(store_, nullptr);
  }
  std::unique_ptr<Store> store_;
};

}  // namespace hosting::controlplane
