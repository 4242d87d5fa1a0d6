#include "common/http/http_server.h"

#include "common/http/http_request.h"

#include <array>
#include <deque>

#include <random>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "boost/asio.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "common/log.h"

namespace hosting::http {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

std::chrono::milliseconds Chrono(absl::Duration d) {
  return std::chrono::milliseconds(absl::ToInt64Milliseconds(d));
}

std::string NewRequestId() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return absl::StrFormat("%016x", rng());
}

}  // namespace

class Session;

struct HttpServer::Shard {
  net::io_context ioc{1};
  std::unique_ptr<tcp::acceptor> acceptor;
  // Sessions of this shard; touched only on the shard's thread.
  std::unordered_set<Session*> sessions;
  std::unique_ptr<net::executor_work_guard<net::io_context::executor_type>> guard;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer& server, HttpServer::Shard& shard)
      : stream_(std::move(socket)), server_(server), shard_(shard) {
    ++server_.connections_;
  }
  ~Session() { --server_.connections_; }

  void Start() {
    shard_.sessions.insert(this);
    beast::error_code ec;
    tcp::endpoint remote = stream_.socket().remote_endpoint(ec);
    if (!ec) peer_ = absl::StrCat(remote.address().to_string(), ":", remote.port());
    DoRead();
  }

  // --- A streamed response's body (HttpStream), on the shard's thread. ---

  void StreamWrite(std::string data, std::function<void(bool)> done) {
    if (closed_ || stream_ended_) {
      if (done) done(false);
      return;
    }
    stream_queue_.push_back({std::move(data), std::move(done)});
    if (!stream_writing_) StreamNext();
  }

  void StreamEnd() {
    if (closed_ || stream_ended_) return;
    stream_ended_ = true;
    // Ended by its owner: a close from here on is not news to it.
    stream_closed_ = nullptr;
    if (!stream_writing_) StreamNext();
  }

  void StreamOnClosed(std::function<void()> closed) { stream_closed_ = std::move(closed); }

  // On the shard's thread: closes the connection unless a request is being served.
  void CloseIfIdle() {
    if (!busy_ || streaming_) Close();
  }
  void ForceClose() { Close(); }

 private:
  void DoRead() {
    busy_ = false;
    if (server_.closing_.load()) {
      Close();
      return;
    }
    parser_.emplace();
    parser_->body_limit(static_cast<uint64_t>(server_.options_.body_limit));
    parser_->header_limit(static_cast<uint32_t>(server_.options_.header_limit));
    // Waiting for the next request is bounded by the idle timeout; once its header is in, the
    // body must follow within the read timeout.
    stream_.expires_after(Chrono(server_.options_.idle_timeout));
    bhttp::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, size_t) {
    if (ec) {
      OnError(ec);
      return;
    }
    stream_.expires_after(Chrono(server_.options_.read_timeout));
    bhttp::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  void OnError(beast::error_code ec) {
    if (std::optional<HttpResponse> answer = ReadErrorResponse(ec)) {
      SendError(std::move(*answer));
    } else {
      Close();  // end of stream, timeout, reset, or shutdown
    }
  }

  void OnRead(beast::error_code ec, size_t) {
    if (ec) {
      OnError(ec);
      return;
    }
    bhttp::request<bhttp::string_body>& req = parser_->get();
    absl::StatusOr<HttpRequest> parsed = ToHttpRequest(req);
    if (!parsed.ok()) {
      SendError(JsonError(400, std::string(parsed.status().message())));
      return;
    }
    HttpRequest r = *std::move(parsed);
    r.peer = peer_;
    busy_ = true;
    ++server_.active_;
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    if (r.request_id.empty()) r.request_id = NewRequestId();
    request_id_ = r.request_id;
    head_ = req.method() == bhttp::verb::head;
    server_.handler_(std::move(r), [self = shared_from_this()](HttpResponse resp) {
      net::post(self->stream_.get_executor(),
                [self, resp = std::move(resp)]() mutable { self->Write(std::move(resp), false); });
    });
  }

  void SendError(HttpResponse answer) {
    busy_ = true;
    ++server_.active_;
    version_ = 11;
    keep_alive_ = false;
    linger_ = true;
    request_id_ = NewRequestId();
    Write(std::move(answer), true);
  }

  void Write(HttpResponse resp, bool close_after) {
    res_ = {};
    res_.version(version_);
    res_.result(static_cast<unsigned>(resp.status));
    if (!resp.content_type.empty()) res_.set(bhttp::field::content_type, resp.content_type);
    res_.set("X-Request-Id", request_id_);
    for (auto& [k, v] : resp.headers) res_.set(k, v);
    const bool keep = keep_alive_ && !close_after && !server_.closing_.load();
    res_.keep_alive(keep);
    if (resp.stream && !head_) {
      StartStream(std::move(resp.stream));
      return;
    }
    if (head_) {
      res_.content_length(resp.body.size());
    } else {
      res_.body() = std::move(resp.body);
      res_.prepare_payload();
    }
    stream_.expires_after(std::chrono::seconds(30));
    if (head_) {
      auto sr = std::make_shared<bhttp::response_serializer<bhttp::string_body>>(res_);
      bhttp::async_write_header(stream_, *sr, [self = shared_from_this(), sr](beast::error_code ec, size_t n) {
        self->OnWrite(ec, n);
      });
      return;
    }
    bhttp::async_write(stream_, res_, beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
  }

  void OnWrite(beast::error_code ec, size_t) {
    --server_.active_;
    busy_ = false;
    head_ = false;
    if (ec || !res_.keep_alive()) {
      if (!ec && linger_) {
        LingerClose();
      } else {
        Close();
      }
      return;
    }
    DoRead();
  }

  // Sends the head of a streamed response (chunked on HTTP/1.1; on 1.0 the body runs to the
  // connection's close), then hands the body's stream to `start`. The connection closes when
  // the stream ends. A read stays pending meanwhile: it is how a client leaving is noticed.
  void StartStream(std::function<void(std::shared_ptr<HttpStream>)> start) {
    streaming_ = true;
    res_.keep_alive(false);
    chunked_ = version_ >= 11;
    if (chunked_) res_.chunked(true);
    auto sr = std::make_shared<bhttp::response_serializer<bhttp::string_body>>(res_);
    stream_.expires_after(std::chrono::seconds(30));
    bhttp::async_write_header(
        stream_, *sr,
        [self = shared_from_this(), sr, start = std::move(start)](beast::error_code ec, size_t) {
          if (ec) {
            self->OnWrite(ec, 0);
            return;
          }
          self->stream_.expires_never();
          self->WatchForClose();
          start(std::make_shared<StreamHandle>(self));
        });
  }

  // A pending read while streaming: what the client sends is discarded; its end (or the
  // connection's) closes the stream.
  void WatchForClose() {
    auto buf = std::make_shared<std::array<char, 512>>();
    stream_.async_read_some(boost::asio::buffer(*buf),
                            [self = shared_from_this(), buf](beast::error_code ec, size_t) {
                              if (ec) {
                                self->Close();
                                return;
                              }
                              self->WatchForClose();
                            });
  }

  void StreamNext() {
    if (closed_) return;
    if (stream_queue_.empty()) {
      if (!stream_ended_) return;
      // Done: the last chunk, then close.
      stream_writing_ = true;
      stream_.expires_after(std::chrono::seconds(30));
      auto finish = [self = shared_from_this()](beast::error_code, size_t) {
        self->stream_writing_ = false;
        --self->server_.active_;
        self->busy_ = false;
        self->stream_closed_ = nullptr;
        self->Close();
      };
      if (chunked_) {
        boost::asio::async_write(stream_, bhttp::make_chunk_last(), std::move(finish));
      } else {
        finish(beast::error_code(), 0);
      }
      return;
    }
    stream_writing_ = true;
    // A client that takes no data for 30 s is cut (its stream ends; it can resume).
    stream_.expires_after(std::chrono::seconds(30));
    auto written = [self = shared_from_this()](beast::error_code ec, size_t) {
      self->stream_writing_ = false;
      StreamPiece piece = std::move(self->stream_queue_.front());
      self->stream_queue_.pop_front();
      if (ec || self->closed_) {
        if (piece.done) piece.done(false);
        self->Close();
        return;
      }
      self->stream_.expires_never();
      if (piece.done) piece.done(true);
      self->StreamNext();
    };
    const std::string& data = stream_queue_.front().data;
    if (chunked_) {
      boost::asio::async_write(stream_, bhttp::make_chunk(boost::asio::buffer(data)),
                               std::move(written));
    } else {
      boost::asio::async_write(stream_, boost::asio::buffer(data), std::move(written));
    }
  }

  class StreamHandle final : public HttpStream {
   public:
    explicit StreamHandle(std::shared_ptr<Session> session) : session_(std::move(session)) {}
    void Write(std::string data, std::function<void(bool)> done) override {
      net::post(session_->stream_.get_executor(),
                [s = session_, data = std::move(data), done = std::move(done)]() mutable {
                  s->StreamWrite(std::move(data), std::move(done));
                });
    }
    void End() override {
      net::post(session_->stream_.get_executor(), [s = session_] { s->StreamEnd(); });
    }
    void OnClosed(std::function<void()> closed) override {
      net::post(session_->stream_.get_executor(),
                [s = session_, closed = std::move(closed)]() mutable {
                  if (s->closed_) {
                    closed();
                  } else {
                    s->StreamOnClosed(std::move(closed));
                  }
                });
    }

   private:
    std::shared_ptr<Session> session_;
  };

  // After an error response to input we did not read in full: closing at once, with unread
  // bytes in the socket, would make the kernel send a reset that can overtake the response.
  // Stop sending, discard what the client still sends for a moment, then close.
  void LingerClose() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(2));
    Discard();
  }

  void Discard() {
    auto buf = std::make_shared<std::array<char, 4096>>();
    stream_.async_read_some(boost::asio::buffer(*buf),
                            [self = shared_from_this(), buf](beast::error_code ec, size_t) {
                              if (ec) {
                                self->Close();
                                return;
                              }
                              self->Discard();
                            });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    shard_.sessions.erase(this);
    if (streaming_) {
      // A stream cut short: its owner hears it once, then its writes fail.
      if (std::function<void()> closed = std::move(stream_closed_); closed) closed();
      stream_closed_ = nullptr;
      // The piece being written stays until its write returns (it holds the bytes).
      std::deque<StreamPiece> pending;
      while (stream_queue_.size() > (stream_writing_ ? 1u : 0u)) {
        pending.push_back(std::move(stream_queue_.back()));
        stream_queue_.pop_back();
      }
      for (auto it = pending.rbegin(); it != pending.rend(); ++it) {
        if (it->done) it->done(false);
      }
      if (busy_) {
        busy_ = false;
        --server_.active_;
      }
    }
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> res_;
  HttpServer& server_;
  HttpServer::Shard& shard_;
  std::string request_id_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool busy_ = false;
  bool head_ = false;
  bool closed_ = false;
  bool linger_ = false;
  std::string peer_;
  // A streamed response.
  struct StreamPiece {
    std::string data;
    std::function<void(bool)> done;
  };
  bool streaming_ = false;
  bool chunked_ = false;
  bool stream_writing_ = false;
  bool stream_ended_ = false;
  std::deque<StreamPiece> stream_queue_;
  std::function<void()> stream_closed_;
};

namespace {

void Accept(HttpServer& server, HttpServer::Shard& shard) {
  shard.acceptor->async_accept(shard.ioc, [&server, &shard](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || !shard.acceptor->is_open()) return;
      LogWarning("accept failed", {{"error", ec.message()}});
    } else {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<Session>(std::move(socket), server, shard)->Start();
    }
    if (shard.acceptor->is_open()) Accept(server, shard);
  });
}

}  // namespace

HttpServer::HttpServer(Options options, Handler handler)
    : options_(std::move(options)), handler_(std::move(handler)) {}

HttpServer::~HttpServer() {
  if (!stopped_ && !shards_.empty()) Shutdown(absl::ZeroDuration());
}

absl::Status HttpServer::Start() {
  const int n = std::max(1, options_.threads);
  beast::error_code ec;
  net::ip::address addr = net::ip::make_address(options_.address, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("bad bind address '", options_.address, "'"));
  int port = options_.port;
  for (int i = 0; i < n; ++i) {
    auto shard = std::make_unique<Shard>();
    shard->acceptor = std::make_unique<tcp::acceptor>(shard->ioc);
    tcp::endpoint ep(addr, static_cast<unsigned short>(port));
    shard->acceptor->open(ep.protocol(), ec);
    if (!ec) shard->acceptor->set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) {
      int one = 1;
      setsockopt(shard->acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
      shard->acceptor->bind(ep, ec);
    }
    if (!ec) shard->acceptor->listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", options_.address, ":", port, ": ", ec.message()));
    }
    // Every acceptor shares the first one's port (it matters when the port was 0).
    port = shard->acceptor->local_endpoint().port();
    shard->guard = std::make_unique<net::executor_work_guard<net::io_context::executor_type>>(
        shard->ioc.get_executor());
    shards_.push_back(std::move(shard));
  }
  port_ = port;
  for (auto& shard : shards_) {
    Accept(*this, *shard);
    threads_.emplace_back([s = shard.get()] { s->ioc.run(); });
  }
  return absl::OkStatus();
}

void HttpServer::StopAccepting() {
  for (auto& shard : shards_) {
    net::post(shard->ioc, [s = shard.get()] {
      beast::error_code ec;
      s->acceptor->close(ec);
    });
  }
}

bool HttpServer::Shutdown(absl::Duration grace) {
  if (stopped_) return true;
  StopAccepting();
  closing_ = true;
  for (auto& shard : shards_) {
    net::post(shard->ioc, [s = shard.get()] {
      std::vector<Session*> all(s->sessions.begin(), s->sessions.end());
      for (Session* session : all) session->CloseIfIdle();
    });
  }
  absl::Time deadline = absl::Now() + grace;
  while (connections_.load() > 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  const bool clean = connections_.load() == 0;
  for (auto& shard : shards_) {
    net::post(shard->ioc, [s = shard.get()] {
      std::vector<Session*> all(s->sessions.begin(), s->sessions.end());
      for (Session* session : all) session->ForceClose();
    });
    shard->guard.reset();
  }
  // Give force-closed sessions a moment to unwind, then stop the loops.
  absl::Time hard = absl::Now() + absl::Seconds(1);
  while (connections_.load() > 0 && absl::Now() < hard) absl::SleepFor(absl::Milliseconds(5));
  for (auto& shard : shards_) shard->ioc.stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  stopped_ = true;
  return clean;
}

}  // namespace hosting::http
