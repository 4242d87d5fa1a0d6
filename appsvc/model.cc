#include "appsvc/model.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace hosting::appsvc {

nlohmann::json ToJson(const User& u) {
  return {{"id", u.id}, {"name", u.name}, {"email", u.email},
          {"created_at", u.created_at}, {"updated_at", u.updated_at}};
}

nlohmann::json ToJson(const Order& o) {
  return {{"id", o.id},         {"user_id", o.user_id},       {"total_amount", o.total_amount},
          {"status", o.status}, {"created_at", o.created_at}, {"updated_at", o.updated_at}};
}

absl::StatusOr<nlohmann::json> ParseJsonObject(const std::string& body) {
  if (body.empty()) return absl::InvalidArgumentError("request body is empty; expected a JSON object");
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("request body is not valid JSON");
  if (!j.is_object()) return absl::InvalidArgumentError("request body must be a JSON object");
  return j;
}

namespace {

std::optional<InputError> StringField(const nlohmann::json& j, const char* field, bool required,
                                      size_t min_len, size_t max_len,
                                      std::optional<std::string>* out) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    if (required) return InputError{field, absl::StrCat("'", field, "' is required")};
    return std::nullopt;
  }
  if (!it->is_string()) return InputError{field, absl::StrCat("'", field, "' must be a string")};
  std::string v = std::string(absl::StripAsciiWhitespace(it->get<std::string>()));
  // PostgreSQL's text cannot hold NUL: stored, the value would end at it.
  if (v.find('\0') != std::string::npos) {
    return InputError{field, absl::StrCat("'", field, "' must not contain NUL (U+0000)")};
  }
  if (v.size() < min_len || v.size() > max_len) {
    return InputError{field, absl::StrCat("'", field, "' must be ", min_len, " to ", max_len,
                                          " characters")};
  }
  *out = std::move(v);
  return std::nullopt;
}

}  // namespace

std::optional<InputError> ParseUserInput(const nlohmann::json& j, bool require_all,
                                         UserInput* out) {
  if (auto e = StringField(j, "name", require_all, 1, 255, &out->name)) return e;
  if (auto e = StringField(j, "email", require_all, 3, 255, &out->email)) return e;
  if (out->email) {
    const std::string& e = *out->email;
    size_t at = e.find('@');
    if (at == std::string::npos || at == 0 || e.find('@', at + 1) != std::string::npos ||
        e.find('.', at) == std::string::npos || e.back() == '.' ||
        e.find(' ') != std::string::npos) {
      return InputError{"email", absl::StrCat("'", e, "' is not an email address")};
    }
    *out->email = absl::AsciiStrToLower(e);
  }
  if (!require_all && !out->name && !out->email) {
    return InputError{"name", "give at least one of 'name' and 'email'"};
  }
  return std::nullopt;
}

std::optional<InputError> ParseOrderInput(const nlohmann::json& j, OrderInput* out) {
  auto it = j.find("total_amount");
  if (it == j.end() || it->is_null()) return InputError{"total_amount", "'total_amount' is required"};
  std::string text;
  if (it->is_number()) {
    text = absl::StrFormat("%.6f", it->get<double>());
  } else if (it->is_string()) {
    text = std::string(absl::StripAsciiWhitespace(it->get<std::string>()));
  } else {
    return InputError{"total_amount", "'total_amount' must be a number"};
  }
  double value;
  if (text.empty() || !absl::SimpleAtod(text, &value) || text.find_first_of("eEnN") != std::string::npos) {
    return InputError{"total_amount", absl::StrCat("'", text, "' is not a number")};
  }
  if (value < 0 || value >= 1e8) {
    return InputError{"total_amount", "'total_amount' must be at least 0 and below 100000000"};
  }
  int64_t cents = std::llround(value * 100);
  if (std::abs(value * 100 - static_cast<double>(cents)) > 1e-6) {
    return InputError{"total_amount", "'total_amount' has more than two decimals"};
  }
  out->total_amount = absl::StrFormat("%d.%02d", cents / 100, cents % 100);
  if (auto s = j.find("status"); s != j.end() && !s->is_null()) {
    if (!s->is_string()) return InputError{"status", "'status' must be a string"};
    std::string v = s->get<std::string>();
    if (v != "pending" && v != "paid" && v != "shipped" && v != "cancelled") {
      return InputError{"status", absl::StrCat("'", v, "' is not one of pending, paid, shipped, cancelled")};
    }
    out->status = v;
  }
  return std::nullopt;
}

std::string UserCacheKey(int64_t id) { return absl::StrCat("users:", id); }

}  // namespace hosting::appsvc
