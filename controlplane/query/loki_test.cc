#include "controlplane/query/loki.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

using ::testing::HasSubstr;

constexpr char kAnswer[] = R"({"status":"success","data":{"resultType":"streams","result":[
 {"stream":{"job":"docker","container_id":"aaaaaaaaaaaa","stream":"stdout"},
  "values":[["1700000002000000000","{\"log\":\"{\\\"level\\\":\\\"error\\\",\\\"msg\\\":\\\"db timeout\\\"}\\n\",\"stream\":\"stdout\",\"time\":\"2023-11-14T22:13:22Z\"}"]]},
 {"stream":{"job":"docker","container_id":"bbbbbbbbbbbb","stream":"stderr"},
  "values":[["1700000001000000000","plain line\n"]]}]}})";

TEST(LokiTest, TheSelectorNamesEachContainerOnce) {
  absl::StatusOr<std::string> s = LokiLogStore::Selector(
      {"bbbbbbbbbbbb0123", "aaaaaaaaaaaa", "bbbbbbbbbbbbffff"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s, R"({job="docker", container_id=~"aaaaaaaaaaaa|bbbbbbbbbbbb"})");
  EXPECT_TRUE(absl::IsInvalidArgument(LokiLogStore::Selector({"x\"|.*"}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(LokiLogStore::Selector({}).status()));
}

TEST(LokiTest, StreamsParseOldestFirstWithDockersLogText) {
  absl::StatusOr<std::vector<StoredLogLine>> lines = LokiLogStore::ParseStreams(kAnswer);
  ASSERT_TRUE(lines.ok()) << lines.status();
  ASSERT_EQ(lines->size(), 2u);
  EXPECT_EQ((*lines)[0].container_id, "bbbbbbbbbbbb");
  EXPECT_EQ((*lines)[0].text, "plain line");
  EXPECT_EQ((*lines)[1].text, R"({"level":"error","msg":"db timeout"})");
  EXPECT_EQ((*lines)[1].time, absl::FromUnixSeconds(1700000002));
  absl::Status bad = LokiLogStore::ParseStreams(R"({"status":"error","error":"parse error"})").status();
  EXPECT_THAT(std::string(bad.message()), HasSubstr("parse error"));
  EXPECT_FALSE(LokiLogStore::ParseStreams("<html>").ok());
}

// One HTTP answer on a loopback port; keeps the request line it got.
class OneAnswerServer {
 public:
  OneAnswerServer(int status, std::string body) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(fd_, 1);
    thread_ = std::thread([this, status, body = std::move(body)] {
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[8192];
      const ssize_t n = read(c, buf, sizeof(buf));
      if (n > 0) request_.assign(buf, static_cast<size_t>(n));
      const std::string answer =
          absl::StrCat("HTTP/1.1 ", status, " X\r\nContent-Type: application/json\r\n",
                       "Content-Length: ", body.size(), "\r\nConnection: close\r\n\r\n", body);
      (void)!write(c, answer.data(), answer.size());
      close(c);
    });
  }
  ~OneAnswerServer() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_); }
  std::string request() {
    thread_.join();
    thread_ = std::thread([] {});
    return request_;
  }

 private:
  int fd_;
  int port_ = 0;
  std::thread thread_;
  std::string request_;
};

TEST(LokiTest, LinesAsksForTheWindowAndSaysWhatLokiRefused) {
  OneAnswerServer ok(200, kAnswer);
  LokiLogStore loki(ok.url());
  absl::StatusOr<std::vector<StoredLogLine>> lines = loki.Lines(
      {"aaaaaaaaaaaa"}, absl::FromUnixSeconds(1700000000), absl::FromUnixSeconds(1700000100), 500);
  ASSERT_TRUE(lines.ok()) << lines.status();
  EXPECT_EQ(lines->size(), 2u);
  const std::string request = ok.request();
  EXPECT_THAT(request, HasSubstr("GET /loki/api/v1/query_range?direction=forward&limit=500"
                                 "&start=1700000000000000000&end=1700000100000000000&query="));
  EXPECT_THAT(request, HasSubstr("container_id%3D~%22aaaaaaaaaaaa%22"));

  OneAnswerServer refused(400, "parse error at line 1, col 5\n");
  absl::Status st = LokiLogStore(refused.url())
                        .Lines({"aaaaaaaaaaaa"}, absl::UnixEpoch(), absl::Now(), 10)
                        .status();
  EXPECT_THAT(std::string(st.message()), HasSubstr("answered HTTP 400: parse error at line 1"));

  absl::Status down =
      LokiLogStore("http://127.0.0.1:1").Lines({"aaaaaaaaaaaa"}, absl::UnixEpoch(), absl::Now(), 10).status();
  EXPECT_TRUE(absl::IsUnavailable(down)) << down;
}

}  // namespace
}  // namespace hosting::controlplane
