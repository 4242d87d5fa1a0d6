#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/http/http_types.h"
#include "boost/beast/core/error.hpp"
#include "boost/beast/http/message.hpp"
#include "boost/beast/http/string_body.hpp"

namespace hosting::http {

using BeastRequest = boost::beast::http::request<boost::beast::http::string_body>;

// What the server makes of a request Beast has read: the HttpRequest the handler sees, or
// INVALID_ARGUMENT (answered 400) for a request HTTP forbids (HTTP/1.1 without Host). The
// request id is the client's X-Request-Id when it has one of at most 128 bytes, else empty (the
// server makes one). The body is moved out of `request`.
absl::StatusOr<HttpRequest> ToHttpRequest(BeastRequest& request);

// The answer to a read that failed: 400 for a malformed request, 413 for a body over the limit,
// 431 for headers over theirs; nullopt when the failure is the connection's (end of stream,
// timeout, reset), which ends it without an answer.
std::optional<HttpResponse> ReadErrorResponse(boost::beast::error_code ec);

// One request read from `bytes` at once, with the server's parser and limits: the synchronous
// form of the server's incremental read (for the fuzz target and tests). Exactly one of
// `request` and `error` is set when the bytes hold a whole request (or a fault); neither when
// they end before the request does. `consumed`: the bytes the request took (a pipelined next
// one starts there).
struct ParsedRequest {
  std::optional<HttpRequest> request;
  std::optional<HttpResponse> error;
  bool keep_alive = false;
  size_t consumed = 0;
};
ParsedRequest ParseHttpRequest(absl::string_view bytes, uint64_t body_limit,
                               uint32_t header_limit);

}  // namespace hosting::http
