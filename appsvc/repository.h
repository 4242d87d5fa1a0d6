#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "appsvc/model.h"

namespace hosting::appsvc {

// Where a read was served from.
enum class ReadSource { kPrimary, kReplica };

// The application's data in PostgreSQL. Calls block: they run on appsvc's database workers,
// never on an I/O thread. Errors: UNAVAILABLE when the database cannot be reached,
// ALREADY_EXISTS for a duplicate email, DEADLINE_EXCEEDED for a statement timeout.
class Repository {
 public:
  virtual ~Repository() = default;

  virtual absl::StatusOr<std::optional<User>> GetUser(int64_t id) = 0;
  // Newest first; `before_id` > 0 continues after that id (the cursor).
  virtual absl::StatusOr<std::vector<User>> ListUsers(int limit, int64_t before_id) = 0;
  virtual absl::StatusOr<User> CreateUser(const std::string& name, const std::string& email) = 0;
  // nullopt when there is no such user.
  virtual absl::StatusOr<std::optional<User>> UpdateUser(int64_t id, const UserInput& input) = 0;
  virtual absl::StatusOr<bool> DeleteUser(int64_t id) = 0;
  // nullopt when there is no such user.
  virtual absl::StatusOr<std::optional<std::vector<Order>>> ListOrders(int64_t user_id) = 0;
  virtual absl::StatusOr<std::optional<Order>> CreateOrder(int64_t user_id,
                                                           const OrderInput& input) = 0;
  virtual absl::StatusOr<std::optional<Order>> GetOrder(int64_t id) = 0;
};

}  // namespace hosting::appsvc
