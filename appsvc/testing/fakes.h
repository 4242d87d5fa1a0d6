#pragma once

// In-memory stand-ins for PostgreSQL and Redis: the API's unit tests and the HTTP fuzz target.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "appsvc/cache.h"
#include "appsvc/repository.h"

namespace hosting::appsvc {

class FakeRepository : public Repository {
 public:
  absl::StatusOr<std::optional<User>> GetUser(int64_t id) override {
    ++reads;
    if (down) return absl::UnavailableError("db down");
    auto it = users.find(id);
    if (it == users.end()) return std::optional<User>();
    return std::optional<User>(it->second);
  }
  absl::StatusOr<std::vector<User>> ListUsers(int limit, int64_t before_id) override {
    ++reads;
    if (down) return absl::UnavailableError("db down");
    std::vector<User> out;
    for (auto it = users.rbegin(); it != users.rend() && static_cast<int>(out.size()) < limit; ++it) {
      if (before_id == 0 || it->first < before_id) out.push_back(it->second);
    }
    return out;
  }
  absl::StatusOr<User> CreateUser(const std::string& name, const std::string& email) override {
    if (down) return absl::UnavailableError("db down");
    for (const auto& [id, u] : users) {
      if (u.email == email) return absl::AlreadyExistsError("duplicate key");
    }
    User u{next_id++, name, email, "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z"};
    users[u.id] = u;
    return u;
  }
  absl::StatusOr<std::optional<User>> UpdateUser(int64_t id, const UserInput& in) override {
    auto it = users.find(id);
    if (it == users.end()) return std::optional<User>();
    if (in.name) it->second.name = *in.name;
    if (in.email) it->second.email = *in.email;
    return std::optional<User>(it->second);
  }
  absl::StatusOr<bool> DeleteUser(int64_t id) override { return users.erase(id) > 0; }
  absl::StatusOr<std::optional<std::vector<Order>>> ListOrders(int64_t user_id) override {
    if (!users.count(user_id)) return std::optional<std::vector<Order>>();
    std::vector<Order> out;
    for (const auto& [id, o] : orders) {
      if (o.user_id == user_id) out.push_back(o);
    }
    return std::optional<std::vector<Order>>(out);
  }
  absl::StatusOr<std::optional<Order>> CreateOrder(int64_t user_id, const OrderInput& in) override {
    if (!users.count(user_id)) return std::optional<Order>();
    Order o{next_order++, user_id, in.total_amount, in.status, "t", "t"};
    orders[o.id] = o;
    return std::optional<Order>(o);
  }
  absl::StatusOr<std::optional<Order>> GetOrder(int64_t id) override {
    auto it = orders.find(id);
    if (it == orders.end()) return std::optional<Order>();
    return std::optional<Order>(it->second);
  }

  std::map<int64_t, User> users;
  std::map<int64_t, Order> orders;
  int64_t next_id = 1;
  int64_t next_order = 1;
  int reads = 0;
  bool down = false;
};

class FakeCache : public RemoteCache {
 public:
  absl::StatusOr<std::optional<std::string>> Get(const std::string& key) override {
    if (down) return absl::UnavailableError("redis down");
    auto it = data.find(key);
    if (it == data.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  absl::Status Set(const std::string& key, const std::string& value, absl::Duration ttl) override {
    if (down) return absl::UnavailableError("redis down");
    data[key] = value;
    ttls[key] = ttl;
    return absl::OkStatus();
  }
  absl::Status Invalidate(const std::vector<std::string>& keys) override {
    invalidated.insert(invalidated.end(), keys.begin(), keys.end());
    if (down) return absl::UnavailableError("redis down");
    for (const auto& k : keys) data.erase(k);
    return absl::OkStatus();
  }
  bool available() override { return !down; }
  bool invalidations_live() override { return !down; }

  std::map<std::string, std::string> data;
  std::map<std::string, absl::Duration> ttls;
  std::vector<std::string> invalidated;
  bool down = false;
};

}  // namespace hosting::appsvc
