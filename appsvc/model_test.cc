#include "appsvc/model.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::appsvc {
namespace {

using ::testing::HasSubstr;

nlohmann::json J(const char* text) { return nlohmann::json::parse(text); }

TEST(ParseJsonObjectTest, Errors) {
  EXPECT_FALSE(ParseJsonObject("").ok());
  EXPECT_THAT(std::string(ParseJsonObject("{bad").status().message()), HasSubstr("not valid JSON"));
  EXPECT_THAT(std::string(ParseJsonObject("[1]").status().message()), HasSubstr("JSON object"));
  EXPECT_TRUE(ParseJsonObject(R"({"a":1})").ok());
}

TEST(ParseUserInputTest, CreateNeedsBothFields) {
  UserInput in;
  auto e = ParseUserInput(J(R"({"email":"a@b.io"})"), true, &in);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->field, "name");
  in = {};
  e = ParseUserInput(J(R"({"name":"Ann"})"), true, &in);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->field, "email");
  in = {};
  EXPECT_FALSE(ParseUserInput(J(R"({"name":" Ann ","email":"Ann@Example.COM"})"), true, &in));
  EXPECT_EQ(*in.name, "Ann");
  EXPECT_EQ(*in.email, "ann@example.com");
}

TEST(ParseUserInputTest, RejectsBadValues) {
  for (const char* body : {R"({"name":"","email":"a@b.io"})", R"({"name":5,"email":"a@b.io"})",
                           R"({"name":"A","email":"nope"})", R"({"name":"A","email":"a@@b.io"})",
                           R"({"name":"A","email":"a@b"})", R"({"name":"A","email":"a b@c.io"})"}) {
    UserInput in;
    EXPECT_TRUE(ParseUserInput(J(body), true, &in).has_value()) << body;
  }
  UserInput in;
  std::string long_name(256, 'x');
  EXPECT_TRUE(ParseUserInput({{"name", long_name}, {"email", "a@b.io"}}, true, &in).has_value());
}

TEST(ParseUserInputTest, RefusesNulWhichPostgresCannotStore) {
  UserInput in;
  auto e = ParseUserInput(J(R"({"name":"x\u0000y","email":"a@b.io"})"), true, &in);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->field, "name");
  EXPECT_EQ(e->message, "'name' must not contain NUL (U+0000)");
  in = {};
  e = ParseUserInput(J(R"({"email":"a\u0000@b.io"})"), false, &in);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->field, "email");
}

TEST(ParseUserInputTest, UpdateNeedsAtLeastOneField) {
  UserInput in;
  EXPECT_TRUE(ParseUserInput(J("{}"), false, &in).has_value());
  in = {};
  EXPECT_FALSE(ParseUserInput(J(R"({"name":"B"})"), false, &in).has_value());
  EXPECT_FALSE(in.email.has_value());
}

TEST(ParseOrderInputTest, AmountsAndStatus) {
  OrderInput in;
  EXPECT_FALSE(ParseOrderInput(J(R"({"total_amount": 12.5})"), &in));
  EXPECT_EQ(in.total_amount, "12.50");
  EXPECT_EQ(in.status, "pending");
  in = {};
  EXPECT_FALSE(ParseOrderInput(J(R"({"total_amount": "99999999.99", "status": "paid"})"), &in));
  EXPECT_EQ(in.total_amount, "99999999.99");
  EXPECT_EQ(in.status, "paid");
  for (const char* body : {R"({})", R"({"total_amount": -1})", R"({"total_amount": 1.234})",
                           R"({"total_amount": "abc"})", R"({"total_amount": 100000000})",
                           R"({"total_amount": true})", R"({"total_amount": "1e3"})",
                           R"({"total_amount": 5, "status": "lost"})"}) {
    OrderInput o;
    EXPECT_TRUE(ParseOrderInput(J(body), &o).has_value()) << body;
  }
}

TEST(CacheKeysTest, ReferenceNames) {
  EXPECT_EQ(UserCacheKey(7), "users:7");
  EXPECT_STREQ(kUsersListCacheKey, "users:all");
}

}  // namespace
}  // namespace hosting::appsvc
