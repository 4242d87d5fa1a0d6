// Measures the control API's read and no-op write rates against a real hostd on the real
// Docker engine: closed-loop callers on the generated stubs (not a timed test: a benchmark that
// prints figures for docs/performance.md).
//
//   build/tests/bench/api_bench [callers=16] [seconds=5] [services=5] [auth-compare [rounds=3]]
//   build/tests/bench/api_bench [callers=16] [seconds=5] [services=5] http-compare [rounds=3]
//
// With "auth-compare" it measures the cost of authorization instead: the unary reads with
// hostd checking every call's token, and with the same hostd (same store, same address)
// restarted with --insecure-no-auth, `rounds` times, the order of the two swapped every round
// (so drift on the machine falls on both alike), the client sending the token either way; it
// prints each round and the ratio of the medians.
//
// With "http-compare" it measures the HTTP/JSON gateway against gRPC: GetService over gRPC and
// over HTTP (POST /v1/ServiceManager/GetService, keep-alive connections, one libcurl handle per
// caller thread) on the same hostd, `rounds` times, the order swapped every round; it prints
// each round and the ratios of the medians (calls/s, p99, hostd CPU per call).
//
// It starts hostd, applies `services` services (1 task each of hosting/sample:v1) and releases
// one of them to v2, then for each call runs `callers` threads, each sending its next call as
// soon as the last returns, for `seconds` after a one-second warm-up. Every call's latency is
// kept; errors are counted and printed, never folded into the latencies.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "curl/curl.h"
#include "common/bearer_token.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "hosting/v1/releases.grpc.pb.h"
#include "hosting/v1/service.grpc.pb.h"
#include "tests/integration/harness.h"

namespace {

using hosting::testing::HostdProcess;

struct Result {
  int64_t calls = 0;
  int64_t errors = 0;
  std::string first_error;
  std::vector<double> latencies_us;
  // The server's CPU time (user + system) over the measured window; 0 when not measured.
  double server_cpu_us = 0;
};

// A process's CPU time so far (user + system), in microseconds; 0 when it cannot be read.
double ProcessCpuUs(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start past the last ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> f = absl::StrSplit(stat.substr(close + 2), ' ');
  // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
  if (f.size() < 13) return 0;
  return (std::stod(f[11]) + std::stod(f[12])) * 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// An asynchronous call: starts one call and runs `done` with its status when it ends.
using AsyncCall = std::function<void(std::function<void(grpc::Status)> done)>;

// One closed loop per caller on gRPC's callback API (the next call starts from the last one's
// completion), so that the client's threads cost little of the machine the server runs on.
Result Run(int callers, absl::Duration warmup, absl::Duration duration,
           const std::function<AsyncCall(int caller)>& make_call, pid_t server = 0) {
  struct Caller {
    AsyncCall call;
    Result result;
    absl::Time started;
  };
  std::vector<Caller> per(callers);
  std::atomic<bool> measuring{false}, done{false};
  absl::Mutex mu;
  int running = callers;
  std::function<void(int)> issue = [&](int i) {
    Caller& c = per[i];
    c.started = absl::Now();
    c.call([&, i](grpc::Status st) {
      Caller& c = per[i];
      const double us = absl::ToDoubleMicroseconds(absl::Now() - c.started);
      if (measuring.load(std::memory_order_relaxed)) {
        ++c.result.calls;
        if (!st.ok()) {
          if (c.result.errors++ == 0) c.result.first_error = st.error_message();
        } else {
          c.result.latencies_us.push_back(us);
        }
      }
      if (done.load(std::memory_order_relaxed)) {
        absl::MutexLock lock(&mu);
        --running;
        return;
      }
      issue(i);
    });
  };
  for (int i = 0; i < callers; ++i) {
    per[i].call = make_call(i);
    per[i].result.latencies_us.reserve(200000);
  }
  for (int i = 0; i < callers; ++i) issue(i);
  absl::SleepFor(warmup);
  const double cpu_before = server > 0 ? ProcessCpuUs(server) : 0;
  measuring = true;
  absl::SleepFor(duration);
  measuring = false;
  const double cpu_after = server > 0 ? ProcessCpuUs(server) : 0;
  done = true;
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(+[](int* n) { return *n == 0; }, &running));
  }
  Result all;
  for (auto& c : per) {
    all.calls += c.result.calls;
    all.errors += c.result.errors;
    if (all.first_error.empty()) all.first_error = c.result.first_error;
    all.latencies_us.insert(all.latencies_us.end(), c.result.latencies_us.begin(),
                            c.result.latencies_us.end());
  }
  std::sort(all.latencies_us.begin(), all.latencies_us.end());
  all.server_cpu_us = cpu_after - cpu_before;
  return all;
}

double Pct(const std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The rounds of a comparison: each run's rate, p99 and server CPU per call under its call and
// side ("GetService http"), printed as a table row as it comes.
struct Rounds {
  std::map<std::string, std::vector<double>> rate, p99, cpu;
  int failed = 0;

  void Add(int round, const std::string& side, const std::string& call, const Result& r,
           double seconds) {
    const std::string key = absl::StrCat(call, " ", side);
    rate[key].push_back(static_cast<double>(r.calls - r.errors) / seconds);
    p99[key].push_back(Pct(r.latencies_us, 0.99) / 1e3);
    cpu[key].push_back(r.calls > 0 ? r.server_cpu_us / static_cast<double>(r.calls) : 0);
    std::printf("| %d | %s | %s | %.0f | %.3f | %.3f | %.1f | %lld |\n", round, side.c_str(),
                call.c_str(), rate[key].back(), Pct(r.latencies_us, 0.5) / 1e3, p99[key].back(),
                cpu[key].back(), static_cast<long long>(r.errors));
    if (r.errors > 0) {
      std::fprintf(stderr, "%s: first error: %s\n", key.c_str(), r.first_error.c_str());
      ++failed;
    }
  }
  // "| call | rate a/b | p99 a/b | cpu a/b |" from the medians of sides a and b.
  void PrintRatio(const std::string& call, const std::string& side_a, const std::string& side_b) {
    const std::string a = absl::StrCat(call, " ", side_a), b = absl::StrCat(call, " ", side_b);
    std::printf("| %s | %.3f | %.3f | %.3f |\n", call.c_str(),
                Median(rate[a]) / Median(rate[b]), Median(p99[a]) / Median(p99[b]),
                Median(cpu[a]) / Median(cpu[b]));
  }
};

// Deletes the bench's services through hostd, then waits until Swarm has removed them.
void RemoveServices(hosting::v1::ServiceManager::Stub& stub, int services) {
  for (int i = 0; i < services; ++i) {
    hosting::v1::DeleteServiceRequest del;
    del.set_name(absl::StrCat("apibench-", i));
    hosting::v1::DeleteServiceResponse out;
    grpc::ClientContext ctx;
    (void)stub.DeleteService(&ctx, del, &out);
  }
  for (int i = 0; i < services; ++i) {
    if (absl::Status s = hosting::testing::RemoveSwarmServicesOf(absl::StrCat("apibench-", i));
        !s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
    }
  }
}

size_t KeepBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// Closed-loop callers over HTTP: one thread and one keep-alive libcurl handle each, POSTing
// `body` to `url`; a call is an error unless it answers 200 with `expect` in the body.
Result RunHttp(int callers, absl::Duration warmup, absl::Duration duration,
               const std::function<std::string(int caller)>& url,
               const std::function<std::string(int caller)>& body, const std::string& token,
               const std::string& expect, pid_t server) {
  std::vector<Result> per(callers);
  std::atomic<bool> measuring{false}, done{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < callers; ++i) {
    threads.emplace_back([&, i] {
      CURL* curl = curl_easy_init();
      const std::string u = url(i), b = body(i);
      curl_slist* headers = curl_slist_append(nullptr, ("Authorization: Bearer " + token).c_str());
      headers = curl_slist_append(headers, "Content-Type: application/json");
      curl_easy_setopt(curl, CURLOPT_URL, u.c_str());
      curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, b.c_str());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(b.size()));
      curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
      curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
      std::string answer;
      curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, KeepBody);
      curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
      Result& r = per[i];
      r.latencies_us.reserve(200000);
      while (!done.load(std::memory_order_relaxed)) {
        answer.clear();
        const absl::Time start = absl::Now();
        CURLcode code = curl_easy_perform(curl);
        long status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        const double us = absl::ToDoubleMicroseconds(absl::Now() - start);
        if (!measuring.load(std::memory_order_relaxed)) continue;
        ++r.calls;
        if (code != CURLE_OK || status != 200 || answer.find(expect) == std::string::npos) {
          if (r.errors++ == 0) {
            r.first_error = absl::StrCat(curl_easy_strerror(code), " ", status, " ",
                                         answer.substr(0, 200));
          }
        } else {
          r.latencies_us.push_back(us);
        }
      }
      curl_slist_free_all(headers);
      curl_easy_cleanup(curl);
    });
  }
  absl::SleepFor(warmup);
  const double cpu_before = ProcessCpuUs(server);
  measuring = true;
  absl::SleepFor(duration);
  measuring = false;
  const double cpu_after = ProcessCpuUs(server);
  done = true;
  for (std::thread& t : threads) t.join();
  Result all;
  for (auto& r : per) {
    all.calls += r.calls;
    all.errors += r.errors;
    if (all.first_error.empty()) all.first_error = r.first_error;
    all.latencies_us.insert(all.latencies_us.end(), r.latencies_us.begin(),
                            r.latencies_us.end());
  }
  std::sort(all.latencies_us.begin(), all.latencies_us.end());
  all.server_cpu_us = cpu_after - cpu_before;
  return all;
}

}  // namespace

int main(int argc, char** argv) {
  const int callers = argc > 1 ? std::atoi(argv[1]) : 16;
  const double seconds = argc > 2 ? std::atof(argv[2]) : 5;
  const int services = argc > 3 ? std::atoi(argv[3]) : 5;
  if (absl::Status s = hosting::testing::CheckDockerSwarm(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  const bool auth_compare = argc > 4 && std::string(argv[4]) == "auth-compare";
  const bool http_compare = argc > 4 && std::string(argv[4]) == "http-compare";
  const int auth_rounds = argc > 5 ? std::max(1, std::atoi(argv[5])) : 3;
  const std::string data_dir = hosting::testing::MakeTempDir("hosting-apibench-");
  auto hostd_holder = std::make_unique<HostdProcess>(data_dir);
  HostdProcess& hostd = *hostd_holder;
  if (absl::Status s = hostd.Start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  auto setup = hosting::v1::ServiceManager::NewStub(hostd.channel());
  std::vector<hosting::v1::ApplyServiceRequest> applies;
  for (int i = 0; i < services; ++i) {
    const std::string name = absl::StrCat("apibench-", i);
    (void)hosting::testing::RemoveSwarmServicesOf(name);
    hosting::v1::ApplyServiceRequest req;
    req.mutable_spec()->set_name(name);
    req.mutable_spec()->set_image("hosting/sample:v1");
    req.mutable_spec()->set_replicas(1);
    req.mutable_spec()->mutable_stop_grace_period()->set_seconds(1);
    hosting::v1::ApplyServiceResponse resp;
    grpc::ClientContext ctx;
    if (grpc::Status st = setup->ApplyService(&ctx, req, &resp); !st.ok()) {
      std::fprintf(stderr, "apply %s: %s\n", name.c_str(), st.error_message().c_str());
      return 1;
    }
    applies.push_back(req);
  }
  // One release (rolling to v2) for GetRelease, waited for.
  auto releases_setup = hosting::v1::Releases::NewStub(hostd.channel());
  hosting::v1::StartReleaseRequest start;
  start.set_service("apibench-0");
  start.set_image("hosting/sample:v2");
  hosting::v1::Release release;
  {
    grpc::ClientContext ctx;
    if (grpc::Status st = releases_setup->StartRelease(&ctx, start, &release); !st.ok()) {
      std::fprintf(stderr, "release: %s\n", st.error_message().c_str());
      return 1;
    }
  }
  const absl::Time limit = absl::Now() + absl::Minutes(3);
  for (hosting::v1::Release r;; absl::SleepFor(absl::Milliseconds(200))) {
    grpc::ClientContext ctx;
    hosting::v1::GetReleaseRequest get;
    get.set_id(release.id());
    if (releases_setup->GetRelease(&ctx, get, &r).ok() &&
        r.state() == hosting::v1::RELEASE_STATE_SUCCEEDED) {
      break;
    }
    if (absl::Now() > limit) {
      std::fprintf(stderr, "release %s did not succeed: %s\n", release.id().c_str(),
                   r.message().c_str());
      return 1;
    }
  }
  applies[0].mutable_spec()->set_image("hosting/sample:v2");  // what it runs now

  // Several connections, as several clients would have.
  constexpr int kChannels = 4;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < kChannels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    channels.push_back(hosting::CreateChannelWithToken(
        hostd.address(), grpc::InsecureChannelCredentials(), args, hosting::testing::TestToken()));
  }

  struct Case {
    std::string name;
    std::function<AsyncCall(int)> make;
  };
  // Each call owns its context and response until its callback has run. `start` begins the
  // call with the callback API; `check` turns a wrong answer into an error.
  auto unary = [](auto start, auto check) -> AsyncCall {
    return [start, check](std::function<void(grpc::Status)> done) {
      using Response = std::remove_cvref_t<
          typename decltype(std::function(check))::argument_type>;
      struct Call {
        grpc::ClientContext ctx;
        Response response;
      };
      auto call = std::make_shared<Call>();
      start(&call->ctx, &call->response, [call, check, done](grpc::Status st) {
        if (st.ok()) st = check(call->response);
        done(st);
      });
    };
  };
  using SM = hosting::v1::ServiceManager;
  using RS = hosting::v1::Releases;
  using Callback = std::function<void(grpc::Status)>;
  std::vector<Case> cases = {
      {"GetService", [&](int i) {
         std::shared_ptr<SM::Stub> stub = SM::NewStub(channels[i % kChannels]);
         auto req = std::make_shared<hosting::v1::GetServiceRequest>();
         req->set_name(absl::StrCat("apibench-", i % services));
         return unary(
             [stub, req](grpc::ClientContext* ctx, hosting::v1::Service* out, Callback cb) {
               stub->async()->GetService(ctx, req.get(), out, std::move(cb));
             },
             [](const hosting::v1::Service& s) {
               return s.status().revisions().empty()
                          ? grpc::Status(grpc::StatusCode::INTERNAL, "no observed status")
                          : grpc::Status::OK;
             });
       }},
      {"ListServices", [&](int i) {
         std::shared_ptr<SM::Stub> stub = SM::NewStub(channels[i % kChannels]);
         auto req = std::make_shared<hosting::v1::ListServicesRequest>();
         return unary(
             [stub, req](grpc::ClientContext* ctx, hosting::v1::ListServicesResponse* out,
                         Callback cb) {
               stub->async()->ListServices(ctx, req.get(), out, std::move(cb));
             },
             [services](const hosting::v1::ListServicesResponse& r) {
               return r.services_size() == services
                          ? grpc::Status::OK
                          : grpc::Status(grpc::StatusCode::INTERNAL, "short list");
             });
       }},
      {"GetRelease", [&](int i) {
         std::shared_ptr<RS::Stub> stub = RS::NewStub(channels[i % kChannels]);
         auto req = std::make_shared<hosting::v1::GetReleaseRequest>();
         req->set_id(release.id());
         return unary(
             [stub, req](grpc::ClientContext* ctx, hosting::v1::Release* out, Callback cb) {
               stub->async()->GetRelease(ctx, req.get(), out, std::move(cb));
             },
             [](const hosting::v1::Release& r) {
               return r.state() == hosting::v1::RELEASE_STATE_SUCCEEDED
                          ? grpc::Status::OK
                          : grpc::Status(grpc::StatusCode::INTERNAL, "wrong release");
             });
       }},
      {"ApplyService (unchanged)", [&](int i) {
         std::shared_ptr<SM::Stub> stub = SM::NewStub(channels[i % kChannels]);
         auto req = std::make_shared<hosting::v1::ApplyServiceRequest>(applies[i % services]);
         return unary(
             [stub, req](grpc::ClientContext* ctx, hosting::v1::ApplyServiceResponse* out,
                         Callback cb) {
               stub->async()->ApplyService(ctx, req.get(), out, std::move(cb));
             },
             [](const hosting::v1::ApplyServiceResponse& r) {
               return r.changed() ? grpc::Status(grpc::StatusCode::INTERNAL,
                                                 "an unchanged apply changed")
                                  : grpc::Status::OK;
             });
       }},
  };

  // The floor under every figure above: gRPC's own health check on the same hostd (no hostd
  // code runs), through the generic stub. Reads cannot go faster than this on the machine.
  cases.push_back({"grpc.health.v1.Health/Check (gRPC alone)", [&](int i) -> AsyncCall {
    auto stub = std::make_shared<grpc::GenericStub>(channels[i % kChannels]);
    return [stub](std::function<void(grpc::Status)> done) {
      struct Call {
        grpc::ClientContext ctx;
        grpc::ByteBuffer request, response;
      };
      auto call = std::make_shared<Call>();
      grpc::Slice empty;
      call->request = grpc::ByteBuffer(&empty, 1);
      stub->UnaryCall(&call->ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                      &call->request, &call->response, [call, done](grpc::Status st) {
                        // HealthCheckResponse{status: SERVING} is the two bytes 08 01.
                        if (st.ok() && call->response.Length() != 2) {
                          st = grpc::Status(grpc::StatusCode::INTERNAL, "not SERVING");
                        }
                        done(st);
                      });
    };
  }});

  if (http_compare) {
    std::printf("api_bench http-compare: %d callers, %.0f s per call and round\n\n", callers,
                seconds);
    std::printf("| round | via | call | calls/s | p50 ms | p99 ms | hostd CPU us/call | errors |\n");
    std::printf("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
    const Case* grpc_get = nullptr;
    for (const Case& c : cases) {
      if (c.name == "GetService") grpc_get = &c;
    }
    Rounds rounds;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (int round = 1; round <= auth_rounds; ++round) {
      for (bool http : round % 2 == 1 ? std::vector<bool>{false, true}
                                      : std::vector<bool>{true, false}) {
        Result r =
            http ? RunHttp(
                       callers, absl::Seconds(2), absl::Seconds(seconds),
                       [&](int) {
                         return absl::StrCat("http://", hostd.http_address(),
                                             "/v1/ServiceManager/GetService");
                       },
                       [&](int i) {
                         return absl::StrCat(R"({"name": "apibench-)", i % services, R"("})");
                       },
                       hosting::testing::TestToken(), "\"revisions\"", hostd.pid())
                 : Run(callers, absl::Seconds(2), absl::Seconds(seconds), grpc_get->make,
                       hostd.pid());
        rounds.Add(round, http ? "http" : "grpc", "GetService", r, seconds);
      }
    }
    std::printf("\n| call | calls/s http/grpc | p99 http/grpc | hostd CPU per call http/grpc |\n"
                "| --- | ---: | ---: | ---: |\n");
    rounds.PrintRatio("GetService", "http", "grpc");
    RemoveServices(*setup, services);
    return rounds.failed == 0 ? 0 : 1;
  }

  if (auth_compare) {
    // The same hostd restarted on the same store and address, auth on and off, each round in
    // the other order.
    const std::string address = hostd.address();
    std::printf("api_bench auth-compare: %d callers, %.0f s per call and round\n\n", callers,
                seconds);
    std::printf("| round | auth | call | calls/s | p50 ms | p99 ms | hostd CPU us/call | errors |\n");
    std::printf("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
    Rounds rounds;
    for (int round = 1; round <= auth_rounds; ++round) {
      for (bool auth : round % 2 == 1 ? std::vector<bool>{true, false}
                                      : std::vector<bool>{false, true}) {
        hostd_holder->Stop();
        hostd_holder = std::make_unique<HostdProcess>(
            data_dir, auth ? std::vector<std::string>{} : std::vector<std::string>{"--insecure-no-auth"},
            address);
        if (absl::Status st = hostd_holder->Start(); !st.ok()) {
          std::fprintf(stderr, "restart: %s\n", st.ToString().c_str());
          return 1;
        }
        for (const Case& c : cases) {
          if (c.name != "GetService" && c.name != "ListServices") continue;
          Result r = Run(callers, absl::Seconds(2), absl::Seconds(seconds), c.make,
                         hostd_holder->pid());
          rounds.Add(round, auth ? "on" : "off", c.name, r, seconds);
        }
      }
    }
    std::printf("\n| call | calls/s on/off | p99 on/off | hostd CPU per call on/off |\n"
                "| --- | ---: | ---: | ---: |\n");
    for (const char* call : {"GetService", "ListServices"}) rounds.PrintRatio(call, "on", "off");
    RemoveServices(*hosting::v1::ServiceManager::NewStub(hostd_holder->channel()), services);
    return rounds.failed == 0 ? 0 : 1;
  }

  std::printf("api_bench: %d callers, %.0f s per call, %d services, hostd %s\n\n", callers,
              seconds, services, hostd.address().c_str());
  std::printf("| call | calls/s | p50 ms | p99 ms | max ms | errors |\n");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: |\n");
  int failed = 0;
  for (const Case& c : cases) {
    Result r = Run(callers, absl::Seconds(1), absl::Seconds(seconds), c.make);
    std::printf("| %s | %.0f | %.3f | %.3f | %.3f | %lld |\n", c.name.c_str(),
                static_cast<double>(r.calls - r.errors) / seconds, Pct(r.latencies_us, 0.5) / 1e3,
                Pct(r.latencies_us, 0.99) / 1e3,
                r.latencies_us.empty() ? 0 : r.latencies_us.back() / 1e3,
                static_cast<long long>(r.errors));
    if (r.errors > 0) {
      std::fprintf(stderr, "%s: first error: %s\n", c.name.c_str(), r.first_error.c_str());
      ++failed;
    }
  }
  RemoveServices(*setup, services);
  return failed == 0 ? 0 : 1;
}
