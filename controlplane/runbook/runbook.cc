#include "controlplane/runbook/runbook.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "controlplane/spec/validation.h"

namespace hosting::controlplane {
namespace {

using ::hosting::v1::ParameterType;

const std::string& Empty() {
  static const std::string* empty = new std::string();
  return *empty;
}

bool ValidName(absl::string_view v) {
  if (v.empty() || v.size() > 63) return false;
  return std::all_of(v.begin(), v.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.';
  });
}

// Why `value` is not a valid `p`, or "".
std::string TypeProblem(const hosting::v1::RunbookParameter& p, const std::string& value) {
  switch (p.type()) {
    case ParameterType::PARAMETER_TYPE_INT: {
      int64_t n;
      return absl::SimpleAtoi(value, &n) ? "" : "want an integer";
    }
    case ParameterType::PARAMETER_TYPE_BOOL: {
      bool b;
      return absl::SimpleAtob(value, &b) ? "" : "want true or false";
    }
    case ParameterType::PARAMETER_TYPE_DURATION: {
      absl::Duration d;
      if (!absl::ParseDuration(value, &d)) return "want a duration such as 90s, 5m or 1h30m";
      return d < absl::ZeroDuration() ? "want a duration that is not negative" : "";
    }
    case ParameterType::PARAMETER_TYPE_TIMESTAMP: {
      absl::Time t;
      std::string err;
      if (value == "latest" || absl::ParseTime(absl::RFC3339_full, value, &t, &err)) return "";
      return "want an RFC 3339 time (2026-12-07T03:00:00Z) or latest";
    }
    case ParameterType::PARAMETER_TYPE_ENUM:
      if (std::find(p.choices().begin(), p.choices().end(), value) != p.choices().end()) return "";
      return absl::StrCat("want one of: ", absl::StrJoin(p.choices(), ", "));
    case ParameterType::PARAMETER_TYPE_SERVICE:
    case ParameterType::PARAMETER_TYPE_NODE:
      return ValidName(value) ? "" : "want a name (letters, digits, '-', '_', '.'; at most 63)";
    default:
      return "";
  }
}

}  // namespace

hosting::v1::RunbookParameter* AddRunbookParameter(hosting::v1::Runbook& runbook,
                                                   const std::string& name,
                                                   hosting::v1::ParameterType type,
                                                   const std::string& description, bool required,
                                                   const std::string& default_value) {
  hosting::v1::RunbookParameter* p = runbook.add_parameters();
  p->set_name(name);
  p->set_type(type);
  p->set_description(description);
  p->set_required(required);
  p->set_default_value(default_value);
  return p;
}

const std::string& Parameters::String(absl::string_view name) const {
  auto it = values_.find(std::string(name));
  return it == values_.end() ? Empty() : it->second;
}

int64_t Parameters::Int(absl::string_view name) const {
  int64_t n = 0;
  (void)absl::SimpleAtoi(String(name), &n);
  return n;
}

bool Parameters::Bool(absl::string_view name) const {
  bool b = false;
  (void)absl::SimpleAtob(String(name), &b);
  return b;
}

absl::Duration Parameters::Duration(absl::string_view name) const {
  absl::Duration d = absl::ZeroDuration();
  (void)absl::ParseDuration(String(name), &d);
  return d;
}

absl::Time Parameters::Time(absl::string_view name) const {
  const std::string& v = String(name);
  absl::Time t = absl::InfiniteFuture();
  std::string err;
  if (v != "latest") (void)absl::ParseTime(absl::RFC3339_full, v, &t, &err);
  return t;
}

bool Parameters::Has(absl::string_view name) const { return values_.count(std::string(name)) > 0; }

absl::StatusOr<Parameters> ResolveParameters(const hosting::v1::Runbook& runbook,
                                             const std::map<std::string, std::string>& given) {
  std::vector<FieldViolation> violations;
  std::set<std::string> declared;
  std::vector<std::string> names;
  for (const hosting::v1::RunbookParameter& p : runbook.parameters()) {
    declared.insert(p.name());
    names.push_back(p.name());
  }
  for (const auto& [name, value] : given) {
    if (declared.count(name) == 0) {
      violations.push_back(
          {absl::StrCat("parameters.", name),
           absl::StrCat("runbook '", runbook.name(), "' has no such parameter (it takes: ",
                        names.empty() ? "none" : absl::StrJoin(names, ", "), ")")});
    }
  }
  std::map<std::string, std::string> values;
  for (const hosting::v1::RunbookParameter& p : runbook.parameters()) {
    auto it = given.find(p.name());
    std::string value = it != given.end() ? it->second : p.default_value();
    if (value.empty()) {
      if (p.required()) {
        violations.push_back(
            {absl::StrCat("parameters.", p.name()), absl::StrCat("required: ", p.description())});
      }
      continue;
    }
    if (std::string problem = TypeProblem(p, value); !problem.empty()) {
      violations.push_back(
          {absl::StrCat("parameters.", p.name()), absl::StrCat(problem, ", got '", value, "'")});
      continue;
    }
    values[p.name()] = std::move(value);
  }
  if (!violations.empty()) return InvalidArgumentWithViolations(violations);
  return Parameters(std::move(values));
}

std::string StepContext::Param(absl::string_view name) const {
  auto it = run_.parameters().find(std::string(name));
  return it == run_.parameters().end() ? "" : it->second;
}

std::string StepContext::Argument(absl::string_view name) const {
  auto it = step().arguments().find(std::string(name));
  return it == step().arguments().end() ? "" : it->second;
}

std::string StepContext::Output(absl::string_view name) const {
  {
    absl::MutexLock lock(&mu_);
    if (auto it = outputs_.find(std::string(name)); it != outputs_.end()) return it->second;
  }
  auto it = run_.outputs().find(std::string(name));
  return it == run_.outputs().end() ? "" : it->second;
}

bool StepContext::Sleep(absl::Duration d) {
  // In slices, so a cancel is seen within one; on a FakeClock each slice passes at once.
  while (d > absl::ZeroDuration()) {
    if (cancelled()) return false;
    const absl::Duration slice = std::min(d, absl::Milliseconds(100));
    clock_.SleepFor(slice);
    d -= slice;
  }
  return !cancelled();
}

absl::Status StepContext::WaitUntil(const std::function<absl::StatusOr<bool>()>& done,
                                    absl::Duration timeout, absl::Duration interval,
                                    absl::string_view what) {
  const absl::Time end = clock_.Now() + timeout;
  while (true) {
    absl::StatusOr<bool> now = done();
    if (!now.ok()) return now.status();
    if (*now) return absl::OkStatus();
    if (clock_.Now() >= end) {
      return absl::DeadlineExceededError(
          absl::StrCat("gave up after ", absl::FormatDuration(timeout), " waiting for ", what));
    }
    if (!Sleep(interval)) {
      return absl::CancelledError(absl::StrCat("cancelled while waiting for ", what));
    }
  }
}

void StepContext::SetOutput(const std::string& key, std::string value) {
  absl::MutexLock lock(&mu_);
  outputs_[key] = std::move(value);
}

std::map<std::string, std::string> StepContext::outputs() const {
  absl::MutexLock lock(&mu_);
  return outputs_;
}

}  // namespace hosting::controlplane
