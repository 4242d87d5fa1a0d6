#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/http/http_types.h"

namespace hosting::http {

// HTTP/1.1 server on Boost.Beast: one io_context and one SO_REUSEPORT acceptor per thread (the
// kernel spreads connections; no locks between threads), keep-alive, body and header limits,
// idle and read timeouts. Malformed requests get 400, oversized bodies 413, oversized headers
// 431, and the connection is closed; nothing a client sends can crash the server.
//
// The handler may answer at once or later from any thread (the response is posted back to the
// connection's thread).
class HttpServer {
 public:
  using Respond = std::function<void(HttpResponse)>;
  using Handler = std::function<void(HttpRequest request, Respond respond)>;

  struct Options {
    std::string address = "0.0.0.0";
    int port = 3000;  // 0: any free port
    int threads = 1;
    int64_t body_limit = 1 << 20;
    int header_limit = 16 * 1024;
    absl::Duration idle_timeout = absl::Seconds(60);
    absl::Duration read_timeout = absl::Seconds(10);
  };

  HttpServer(Options options, Handler handler);
  ~HttpServer();

  absl::Status Start();
  int port() const { return port_; }

  // Closes the listening sockets: new connections are refused from now on.
  void StopAccepting();
  // Idle keep-alive connections close now; busy ones close after their response (sent with
  // "Connection: close"). Returns true when every connection closed within `grace`; the rest
  // are cut. Then stops the threads.
  bool Shutdown(absl::Duration grace);

  int active_requests() const { return active_.load(); }
  int open_connections() const { return connections_.load(); }

  struct Shard;

 private:
  Options options_;
  Handler handler_;
  int port_ = 0;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::thread> threads_;
  std::atomic<int> active_{0};
  std::atomic<int> connections_{0};
  std::atomic<bool> closing_{false};
  bool stopped_ = false;

  friend class Session;
};

}  // namespace hosting::http
