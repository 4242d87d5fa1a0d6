#include "controlplane/api/audit.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "controlplane/api/unary.h"
#include "controlplane/auth/auth_gate.h"
#include "controlplane/auth/permissions.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"

namespace hosting::controlplane {
namespace {

constexpr int kDefaultLimit = 100;
constexpr int kMaxLimit = 1000;

bool LooksSecret(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  for (const char* word :
       {"password", "passwd", "secret", "token", "key", "credential", "auth", "private"}) {
    if (absl::StrContains(lower, word)) return true;
  }
  return false;
}

void Redact(nlohmann::json& j) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (LooksSecret(it.key()) && !it.value().is_object() && !it.value().is_array()) {
        it.value() = "[redacted]";
      } else {
        Redact(it.value());
      }
    }
  } else if (j.is_array()) {
    for (auto& v : j) Redact(v);
  }
}

std::string StringField(const google::protobuf::Message& m, const char* name) {
  const google::protobuf::FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(name);
  if (f == nullptr || f->is_repeated()) return "";
  if (f->type() == google::protobuf::FieldDescriptor::TYPE_STRING) {
    return m.GetReflection()->GetString(m, f);
  }
  return "";
}

const google::protobuf::Message* MessageField(const google::protobuf::Message& m,
                                              const char* name) {
  const google::protobuf::FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(name);
  if (f == nullptr || f->is_repeated() ||
      f->type() != google::protobuf::FieldDescriptor::TYPE_MESSAGE ||
      !m.GetReflection()->HasField(m, f)) {
    return nullptr;
  }
  return &m.GetReflection()->GetMessage(m, f);
}

class AuditInterceptor final : public grpc::experimental::Interceptor {
 public:
  AuditInterceptor(grpc::experimental::ServerRpcInfo* info, AuditLog& log)
      : info_(info), log_(log) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      if (const void* raw = methods->GetRecvMessage(); raw != nullptr && request_.empty()) {
        const auto* message = static_cast<const google::protobuf::Message*>(raw);
        request_ = RedactedJson(*message);
        service_ = ServiceNamedIn(*message);
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status status = methods->GetSendStatus();
      hosting::v1::AuditEntry entry;
      grpc::ServerContextBase* ctx = info_->server_context();
      entry.set_principal(CallerOf(*ctx).principal);
      entry.set_peer(ctx->peer());
      entry.set_method(info_->method());
      entry.set_service(service_);
      entry.set_request(request_);
      entry.set_code(GrpcCodeName(status.error_code()));
      entry.set_message(status.error_message());
      log_.Record(std::move(entry));
    }
    methods->Proceed();
  }

 private:
  grpc::experimental::ServerRpcInfo* info_;
  AuditLog& log_;
  std::string request_;
  std::string service_;
};

class AuditInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit AuditInterceptorFactory(AuditLog& log) : log_(log) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    const MethodRule* rule = FindMethodRule(info->method());
    if (rule == nullptr || !rule->mutates) return nullptr;
    return new AuditInterceptor(info, log_);
  }

 private:
  AuditLog& log_;
};

}  // namespace

std::string RedactedJson(const google::protobuf::Message& request) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(request, &out, options).ok()) return "";
  nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded()) return "";
  Redact(j);
  return j.dump();
}

std::string ServiceNamedIn(const google::protobuf::Message& request) {
  if (const auto* spec = MessageField(request, "spec"); spec != nullptr) {
    if (std::string name = StringField(*spec, "name"); !name.empty()) return name;
  }
  if (const auto* policy = MessageField(request, "policy"); policy != nullptr) {
    if (std::string name = StringField(*policy, "service"); !name.empty()) return name;
  }
  for (const char* field : {"service", "name"}) {
    if (std::string name = StringField(request, field); !name.empty()) return name;
  }
  if (std::string id = StringField(request, "id"); !id.empty()) {
    return std::string(ServiceOfRelease(id));
  }
  return "";
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeAuditInterceptorFactory(AuditLog& log) {
  return std::make_unique<AuditInterceptorFactory>(log);
}

AuditLog::AuditLog(Store& store, Clock& clock, size_t max_queued)
    : store_(store), clock_(clock), max_queued_(max_queued), writer_([this] { Run(); }) {}

AuditLog::~AuditLog() { Stop(); }

void AuditLog::Record(hosting::v1::AuditEntry entry) {
  *entry.mutable_time() = ToTimestamp(clock_.Now());
  LogInfo("audit", {{"principal", entry.principal()},
                    {"peer", entry.peer()},
                    {"method", entry.method()},
                    {"service", entry.service()},
                    {"code", entry.code()},
                    {"error", entry.message()},
                    {"request", entry.request()}});
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_ || queue_.size() >= max_queued_) {
    ++dropped_;
    return;
  }
  queue_.push_back(std::move(entry));
  cv_.notify_all();
}

void AuditLog::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;
    hosting::v1::AuditEntry entry = queue_.front();
    writing_ = true;
    lock.unlock();
    absl::Status st = store_.AppendAudit(entry).status();
    lock.lock();
    writing_ = false;
    if (st.ok() || stopping_) {
      if (!st.ok()) ++dropped_;
      queue_.pop_front();
      cv_.notify_all();
      continue;
    }
    // The store is out of reach: keep the entry, try again in a second.
    LogWarning("audit entry not stored yet, retrying", {{"error", st.ToString()}});
    cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; });
  }
}

void AuditLog::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return (queue_.empty() && !writing_) || stopping_; });
}

void AuditLog::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !writer_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

int64_t AuditLog::dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

absl::StatusOr<std::vector<hosting::v1::AuditEntry>> AuditLog::List(
    const hosting::v1::ListAuditRequest& request) {
  if (request.limit() < 0 || request.limit() > kMaxLimit) {
    return absl::InvalidArgumentError(absl::StrCat("limit: between 0 (", kDefaultLimit,
                                                   ") and ", kMaxLimit));
  }
  absl::Time since = absl::InfinitePast();
  if (request.has_since()) {
    since = FromTimestamp(request.since());
  }
  return store_.ListAudit(since, request.service(),
                          request.limit() == 0 ? kDefaultLimit : request.limit());
}

}  // namespace hosting::controlplane
