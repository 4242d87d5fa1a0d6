#include "common/http/http_types.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace hosting::http {
namespace {

HttpResponse Json(int status, const nlohmann::json& j) {
  HttpResponse r;
  r.status = status;
  r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

}  // namespace

HttpResponse JsonError(int status, const std::string& message) {
  return Json(status, {{"error", message}});
}

HttpResponse FieldError(const std::string& field, const std::string& message) {
  return Json(400, {{"error", message}, {"field", field}});
}

bool QueryParam(const std::string& query, const std::string& key, std::string* value) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t end = query.find('&', pos);
    if (end == std::string::npos) end = query.size();
    absl::string_view pair(query.data() + pos, end - pos);
    size_t eq = pair.find('=');
    absl::string_view k = pair.substr(0, eq);
    if (k == key) {
      std::string out;
      absl::string_view v = eq == absl::string_view::npos ? "" : pair.substr(eq + 1);
      for (size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '%' && i + 2 < v.size()) {
          int hex;
          if (absl::SimpleHexAtoi(v.substr(i + 1, 2), &hex)) {
            out.push_back(static_cast<char>(hex));
            i += 2;
            continue;
          }
        }
        out.push_back(v[i] == '+' ? ' ' : v[i]);
      }
      *value = std::move(out);
      return true;
    }
    pos = end + 1;
  }
  return false;
}

}  // namespace hosting::http
