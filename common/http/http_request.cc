#include "common/http/http_request.h"

#include "absl/strings/str_cat.h"
#include "boost/asio/buffer.hpp"
#include "boost/beast/http/error.hpp"
#include "boost/beast/http/parser.hpp"

namespace hosting::http {

namespace beast = boost::beast;
namespace bhttp = beast::http;

absl::StatusOr<HttpRequest> ToHttpRequest(BeastRequest& req) {
  if (req.version() >= 11 && req.find(bhttp::field::host) == req.end()) {
    return absl::InvalidArgumentError(
        "malformed HTTP request: an HTTP/1.1 request needs a Host header");
  }
  HttpRequest r;
  r.method = std::string(req.method_string());
  beast::string_view target = req.target();
  size_t q = target.find('?');
  r.path = std::string(target.substr(0, q));
  if (q != beast::string_view::npos) r.query = std::string(target.substr(q + 1));
  if (auto it = req.find(bhttp::field::content_type); it != req.end()) {
    r.content_type = std::string(it->value());
  }
  if (auto it = req.find("X-Request-Id"); it != req.end() && it->value().size() <= 128) {
    r.request_id = std::string(it->value());
  }
  if (auto it = req.find(bhttp::field::authorization); it != req.end()) {
    r.authorization = std::string(it->value());
  }
  if (auto it = req.find("Last-Event-ID"); it != req.end()) {
    r.last_event_id = std::string(it->value());
  }
  r.body = std::move(req.body());
  return r;
}

std::optional<HttpResponse> ReadErrorResponse(beast::error_code ec) {
  if (ec == bhttp::error::body_limit) return JsonError(413, "request body too large");
  if (ec == bhttp::error::header_limit) return JsonError(431, "request headers too large");
  if (ec.category() == beast::error_code(bhttp::error::bad_method).category() &&
      ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
    return JsonError(400, absl::StrCat("malformed HTTP request: ", ec.message()));
  }
  return std::nullopt;
}

ParsedRequest ParseHttpRequest(absl::string_view bytes, uint64_t body_limit,
                               uint32_t header_limit) {
  ParsedRequest out;
  bhttp::request_parser<bhttp::string_body> parser;
  parser.body_limit(body_limit);
  parser.header_limit(header_limit);
  parser.eager(true);
  beast::error_code ec;
  size_t used = 0;
  // put() takes what it can of the bytes each time (a header first, then body pieces).
  while (!parser.is_done() && used < bytes.size()) {
    size_t n = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    if (ec == bhttp::error::need_more) return out;
    if (ec) {
      out.error = ReadErrorResponse(ec);
      return out;
    }
    if (n == 0) return out;
    used += n;
  }
  if (!parser.is_done()) return out;
  out.consumed = used;
  BeastRequest req = parser.release();
  out.keep_alive = req.keep_alive();
  absl::StatusOr<HttpRequest> r = ToHttpRequest(req);
  if (r.ok()) {
    out.request = *std::move(r);
  } else {
    out.error = JsonError(400, std::string(r.status().message()));
  }
  return out;
}

}  // namespace hosting::http
