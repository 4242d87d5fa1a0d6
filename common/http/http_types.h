#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace hosting::http {

// The parts of an HTTP request the application looks at; independent of the server library so
// the API is testable without sockets.
struct HttpRequest {
  std::string method;  // "GET"
  std::string path;    // "/api/users/7", without the query
  std::string query;   // "limit=10&cursor=5", without '?'
  std::string content_type;
  std::string body;
  std::string request_id;
  std::string authorization;  // the Authorization header
  std::string last_event_id;  // Last-Event-ID: where a Server-Sent Events client resumes
  std::string peer;           // the client's address, "127.0.0.1:50312"
};

// The body of a streamed response (Server-Sent Events), written a piece at a time. Usable from
// any thread; the callbacks run on the connection's thread.
class HttpStream {
 public:
  virtual ~HttpStream() = default;
  // Queues `data`; `done(true)` once it is written, `done(false)` when the connection ended
  // first (the client left, a write timed out, the server shut down).
  virtual void Write(std::string data, std::function<void(bool ok)> done) = 0;
  // Ends the response once what is queued is written; the connection then closes.
  virtual void End() = 0;
  // `closed` runs once if the connection ends before End (the client left, a write timed out,
  // the server shut down). Set it before the first Write.
  virtual void OnClosed(std::function<void()> closed) = 0;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  // Set: the response is streamed. The head goes out (no length, body chunked) and then
  // `stream` receives the stream to write the body through; `body` is ignored.
  std::function<void(std::shared_ptr<HttpStream>)> stream;
};

// {"error": message} with a status.
HttpResponse JsonError(int status, const std::string& message);
// {"error": message, "field": field}.
HttpResponse FieldError(const std::string& field, const std::string& message);

// The value of `key` in a URL query string ("" and false when absent); %-decoding applied.
bool QueryParam(const std::string& query, const std::string& key, std::string* value);

}  // namespace hosting::http
