#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace hosting::appsvc {

// The parts of an HTTP request the application looks at; independent of the server library so
// the API is testable without sockets.
struct HttpRequest {
  std::string method;  // "GET"
  std::string path;    // "/api/users/7", without the query
  std::string query;   // "limit=10&cursor=5", without '?'
  std::string content_type;
  std::string body;
  std::string request_id;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

// {"error": message} with a status.
HttpResponse JsonError(int status, const std::string& message);
// {"error": message, "field": field}.
HttpResponse FieldError(const std::string& field, const std::string& message);

// The value of `key` in a URL query string ("" and false when absent); %-decoding applied.
bool QueryParam(const std::string& query, const std::string& key, std::string* value);

}  // namespace hosting::appsvc
