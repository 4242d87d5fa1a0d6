#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace hosting::appsvc {

struct User {
  int64_t id = 0;
  std::string name;
  std::string email;
  std::string created_at;  // ISO 8601, UTC
  std::string updated_at;
};

struct Order {
  int64_t id = 0;
  int64_t user_id = 0;
  std::string total_amount;  // decimal(10,2) as text, as PostgreSQL returns it
  std::string status;
  std::string created_at;
  std::string updated_at;
};

nlohmann::json ToJson(const User& u);
nlohmann::json ToJson(const Order& o);

// A validation failure that names the field.
struct InputError {
  std::string field;
  std::string message;
};

struct UserInput {
  std::optional<std::string> name;
  std::optional<std::string> email;
};

struct OrderInput {
  std::string total_amount;  // normalized, e.g. "12.50"
  std::string status = "pending";
};

// Parses a request body as a JSON object; the error says what is malformed.
absl::StatusOr<nlohmann::json> ParseJsonObject(const std::string& body);

// POST /api/users needs both fields; PUT needs at least one. Names are 1..255 characters,
// emails 3..255 with one '@' and a dot after it; both trimmed.
std::optional<InputError> ParseUserInput(const nlohmann::json& j, bool require_all, UserInput* out);

// total_amount: a number or numeric string, 0 <= x < 100000000, at most two decimals.
// status: one of pending, paid, shipped, cancelled (default pending).
std::optional<InputError> ParseOrderInput(const nlohmann::json& j, OrderInput* out);

// Cache keys, as the reference platform named them.
std::string UserCacheKey(int64_t id);
inline constexpr char kUsersListCacheKey[] = "users:all";

}  // namespace hosting::appsvc
