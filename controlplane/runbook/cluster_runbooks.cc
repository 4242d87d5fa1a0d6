#include "controlplane/runbook/cluster_runbooks.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace hosting::controlplane {
namespace {

std::string NodeLabel(const hosting::v1::Node& n) {
  return n.hostname().empty() ? n.id()
                              : absl::StrCat(n.hostname(), " (", n.id().substr(0, 12), ")");
}

// Hosted tasks per node hostname, "host=N" joined.
std::string Spread(const std::vector<HostedTask>& tasks,
                   const std::vector<hosting::v1::Node>& nodes) {
  std::map<std::string, int> per_node;
  for (const hosting::v1::Node& n : nodes)
    per_node[n.hostname().empty() ? n.id() : n.hostname()] = 0;
  for (const HostedTask& t : tasks) {
    std::string name = t.node_id;
    for (const hosting::v1::Node& n : nodes) {
      if (n.id() == t.node_id && !n.hostname().empty()) name = n.hostname();
    }
    ++per_node[name];
  }
  std::vector<std::string> parts;
  for (const auto& [node, count] : per_node) parts.push_back(absl::StrCat(node, "=", count));
  return absl::StrJoin(parts, " ");
}

}  // namespace

hosting::v1::Runbook NodeMaintenanceRunbook::Describe() const {
  hosting::v1::Runbook r;
  r.set_name("node-maintenance");
  r.set_description(
      "Takes a Swarm node out of service for maintenance without a failed request: its tasks "
      "leave HAProxy and move to other nodes, the run waits for the operator's approval (or a "
      "set time), then the node takes tasks again.");
  r.set_target_parameter("node");
  AddRunbookParameter(r, "node", hosting::v1::PARAMETER_TYPE_NODE, "the node: its hostname or ID",
                      true);
  AddRunbookParameter(r, "wait", hosting::v1::PARAMETER_TYPE_DURATION,
                      "continue this long after the tasks moved instead of waiting for approval",
                      false);
  AddRunbookParameter(
      r, "approval_timeout", hosting::v1::PARAMETER_TYPE_DURATION,
      "how long the run waits for approval before it fails (the node stays drained)", false, "4h");
  AddRunbookParameter(r, "move_timeout", hosting::v1::PARAMETER_TYPE_DURATION,
                      "how long the tasks may take to run elsewhere", false, "5m");
  AddRunbookParameter(r, "rebalance", hosting::v1::PARAMETER_TYPE_BOOL,
                      "after the activation, restart (by rolling release) each service short "
                      "of its fair share of tasks on the node",
                      false, "true");
  for (const char* step :
       {"drain", "wait-moved", "maintenance", "activate", "rebalance", "spread"}) {
    r.add_steps(step);
  }
  return r;
}

absl::StatusOr<std::vector<StepPlan>> NodeMaintenanceRunbook::Plan(const Parameters& params) {
  ASSIGN_OR_RETURN(hosting::v1::Node node, cluster_.GetNode(params.String("node")));
  ASSIGN_OR_RETURN(std::vector<hosting::v1::Node> nodes, cluster_.ListNodes());
  int others_active = 0;
  for (const hosting::v1::Node& n : nodes) {
    if (n.id() != node.id() && n.availability() == hosting::v1::NODE_AVAILABILITY_ACTIVE &&
        n.state() == "ready") {
      ++others_active;
    }
  }
  if (others_active == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("node ", NodeLabel(node),
                     " is the only active, ready node: its tasks would have "
                     "nowhere to go (hostctl node list)"));
  }
  ASSIGN_OR_RETURN(std::vector<HostedTask> tasks, cluster_.Tasks());
  const int on_node = static_cast<int>(std::count_if(
      tasks.begin(), tasks.end(), [&](const HostedTask& t) { return t.node_id == node.id(); }));
  const std::map<std::string, std::string> args = {{"node_id", node.id()},
                                                   {"hostname", node.hostname()}};
  const absl::Duration move = params.Duration("move_timeout");

  StepPlan drain;
  drain.name = "drain";
  drain.detail = absl::StrCat("drain node ", NodeLabel(node), ": ", on_node,
                              " hosted tasks leave HAProxy, then move");
  drain.arguments = args;
  drain.timeout = absl::Minutes(2);
  drain.max_attempts = 3;
  drain.resumable = true;

  StepPlan moved;
  moved.name = "wait-moved";
  moved.detail = absl::StrCat("wait until no hosted task runs on ", NodeLabel(node),
                              " and every service has its replicas (at most ",
                              absl::FormatDuration(move), ")");
  moved.arguments = args;
  moved.timeout = move + absl::Seconds(30);
  moved.resumable = true;
  moved.max_attempts = 2;

  StepPlan window;
  window.name = "maintenance";
  window.arguments = args;
  window.resumable = true;
  window.max_attempts = 2;
  if (params.Has("wait")) {
    window.detail = absl::StrCat("keep ", NodeLabel(node), " drained for ",
                                 absl::FormatDuration(params.Duration("wait")));
    window.arguments["wait"] = params.String("wait");
    window.timeout = params.Duration("wait") + absl::Minutes(1);
  } else {
    window.detail = absl::StrCat("keep ", NodeLabel(node),
                                 " drained until the operator approves (hostctl runbook approve)");
    window.requires_approval = true;
    window.approval_timeout = params.Duration("approval_timeout");
    window.timeout = absl::Minutes(1);
  }

  StepPlan activate;
  activate.name = "activate";
  activate.detail = absl::StrCat("make ", NodeLabel(node), " active again");
  activate.arguments = args;
  activate.timeout = absl::Minutes(1);
  activate.max_attempts = 3;
  activate.resumable = true;

  std::vector<StepPlan> steps = {drain, moved, window, activate};
  if (params.Bool("rebalance")) {
    StepPlan rebalance;
    rebalance.name = "rebalance";
    rebalance.detail = absl::StrCat("rolling restart of each service short of its share of tasks on ",
                                    NodeLabel(node));
    rebalance.arguments = args;
    rebalance.timeout = absl::Minutes(30);
    // Not resumable: a restarted hostd must not start a second release of a service.
    steps.push_back(rebalance);
  }
  StepPlan spread;
  spread.name = "spread";
  spread.detail = "hosted tasks per node after the activation";
  spread.timeout = absl::Minutes(1);
  spread.resumable = true;
  spread.max_attempts = 2;
  steps.push_back(spread);
  return steps;
}

absl::StatusOr<std::string> NodeMaintenanceRunbook::Execute(StepContext& ctx) {
  const std::string& step = ctx.step().name();
  const std::string node_id = ctx.Argument("node_id");
  const std::string name = ctx.Argument("hostname").empty() ? node_id : ctx.Argument("hostname");
  if (step == "drain") {
    ASSIGN_OR_RETURN(hosting::v1::Node n, cluster_.SetAvailability(node_id, "drain"));
    return absl::StrCat("node ", name, " drained (availability ",
                        n.availability() == hosting::v1::NODE_AVAILABILITY_DRAIN ? "drain" : "?",
                        ")");
  }
  if (step == "wait-moved") {
    std::string last;
    RETURN_IF_ERROR(ctx.WaitUntil(
        [&]() -> absl::StatusOr<bool> {
          ASSIGN_OR_RETURN(std::vector<HostedTask> tasks, cluster_.Tasks());
          int left = 0;
          for (const HostedTask& t : tasks) left += t.node_id == node_id ? 1 : 0;
          ASSIGN_OR_RETURN(std::vector<std::string> short_services, cluster_.ServicesShort());
          last = absl::StrCat(left, " hosted tasks still on ", name,
                              short_services.empty()
                                  ? std::string()
                                  : absl::StrCat("; short: ", absl::StrJoin(short_services, ", ")));
          return left == 0 && short_services.empty();
        },
        FromDuration(ctx.step().timeout()) - absl::Seconds(30), absl::Seconds(1),
        absl::StrCat("the tasks to leave ", name)));
    return absl::StrCat("no hosted task runs on ", name, "; every service has its replicas");
  }
  if (step == "maintenance") {
    if (!ctx.Argument("wait").empty()) {
      absl::Duration wait;
      if (!absl::ParseDuration(ctx.Argument("wait"), &wait)) wait = absl::ZeroDuration();
      if (!ctx.Sleep(wait)) return absl::CancelledError("cancelled during the maintenance window");
      return absl::StrCat("kept ", name, " drained for ", absl::FormatDuration(wait));
    }
    return absl::StrCat("maintenance of ", name, " approved by ", ctx.step().approved_by());
  }
  if (step == "activate") {
    ASSIGN_OR_RETURN(hosting::v1::Node n, cluster_.SetAvailability(node_id, "active"));
    (void)n;
    return absl::StrCat("node ", name, " active");
  }
  if (step == "rebalance") {
    ASSIGN_OR_RETURN(std::vector<hosting::v1::Node> nodes, cluster_.ListNodes());
    int active = 0;
    for (const hosting::v1::Node& n : nodes) {
      if (n.availability() == hosting::v1::NODE_AVAILABILITY_ACTIVE && n.state() == "ready") {
        ++active;
      }
    }
    ASSIGN_OR_RETURN(std::vector<HostedTask> tasks, cluster_.Tasks());
    std::map<std::string, std::pair<int, int>> per_service;  // tasks, tasks on the node
    for (const HostedTask& t : tasks) {
      auto& [all, here] = per_service[t.service];
      ++all;
      if (t.node_id == node_id) ++here;
    }
    std::vector<std::string> done;
    for (const auto& [service, counts] : per_service) {
      const int share = active > 0 ? counts.first / active : 0;
      if (counts.second >= share) continue;
      ASSIGN_OR_RETURN(
          hosting::v1::Release release,
          RollingRestart(ctx, cluster_, service,
                         absl::StrCat("runbook ", ctx.run().id(), ": rebalance onto ", name)));
      done.push_back(absl::StrCat(service, " (", counts.second, " of ", counts.first,
                                  " tasks on ", name, "; release ", release.id(), ")"));
    }
    return done.empty() ? absl::StrCat("every service has its share of tasks on ", name)
                        : absl::StrCat("restarted ", absl::StrJoin(done, ", "));
  }
  if (step == "spread") {
    ASSIGN_OR_RETURN(std::vector<HostedTask> tasks, cluster_.Tasks());
    ASSIGN_OR_RETURN(std::vector<hosting::v1::Node> nodes, cluster_.ListNodes());
    const std::string spread = Spread(tasks, nodes);
    ctx.SetOutput("spread", spread);
    return absl::StrCat("hosted tasks per node: ", spread,
                        " (Swarm places new and replaced tasks on ", name,
                        " again; running ones stay where they are)");
  }
  return absl::InvalidArgumentError(absl::StrCat("node-maintenance has no step '", step, "'"));
}

hosting::v1::Runbook LogAnalysisRunbook::Describe() const {
  hosting::v1::Runbook r;
  r.set_name("log-analysis");
  r.set_description(
      "Reads a service's task logs over a window through the agents and reports the errors: "
      "counted by pattern, the most frequent messages and when each first appeared.");
  r.set_target_parameter("service");
  AddRunbookParameter(r, "service", hosting::v1::PARAMETER_TYPE_SERVICE, "the hosted service",
                      true);
  AddRunbookParameter(r, "since", hosting::v1::PARAMETER_TYPE_DURATION,
                      "the window: lines stamped earlier are left out", false, "1h");
  AddRunbookParameter(r, "lines", hosting::v1::PARAMETER_TYPE_INT,
                      "lines read from the end of each task's log (at most 10000)", false, "2000");
  AddRunbookParameter(r, "top", hosting::v1::PARAMETER_TYPE_INT, "how many messages to list", false,
                      "5");
  r.add_steps("analyze");
  return r;
}

absl::StatusOr<std::vector<StepPlan>> LogAnalysisRunbook::Plan(const Parameters& params) {
  const std::string& service = params.String("service");
  ASSIGN_OR_RETURN(std::vector<HostedTask> tasks, cluster_.Tasks());
  std::vector<std::string> ids, containers;
  for (const HostedTask& t : tasks) {
    if (t.service != service) continue;
    ids.push_back(t.id);
    if (!t.container_id.empty()) containers.push_back(absl::StrCat(t.container_id, "=", t.id));
  }
  if (ids.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "service '", service, "' has no task that Swarm runs (hostctl get ", service, ")"));
  }
  if (params.Int("lines") < 1 || params.Int("lines") > 10000) {
    return absl::InvalidArgumentError("parameters.lines: want 1 to 10000");
  }
  StepPlan analyze;
  analyze.name = "analyze";
  analyze.detail =
      absl::StrCat(ids.size(), " tasks of ", service, ", the last ", params.String("since"));
  analyze.arguments = {{"tasks", absl::StrJoin(ids, ",")},
                       {"containers", absl::StrJoin(containers, ",")}};
  if (logs_ != nullptr) absl::StrAppend(&analyze.detail, ", from Loki");
  analyze.timeout = absl::Minutes(2);
  // Read-only, so safe to retry: after a hostd restart the agents take a second or two to
  // reconnect (2 s, 4 s, 8 s between attempts).
  analyze.max_attempts = 4;
  analyze.backoff = absl::Seconds(2);
  analyze.resumable = true;
  return std::vector<StepPlan>{analyze};
}

absl::StatusOr<std::string> LogAnalysisRunbook::Execute(StepContext& ctx) {
  absl::Duration since;
  if (!absl::ParseDuration(ctx.Param("since"), &since)) since = absl::Hours(1);
  int lines = 2000, top = 5;
  (void)absl::SimpleAtoi(ctx.Param("lines"), &lines);
  (void)absl::SimpleAtoi(ctx.Param("top"), &top);
  LogAnalyzer analyzer(ctx.clock().Now() - since);
  std::vector<std::string> unread;
  int read = 0;
  std::string source = "agents";
  std::string loki_note;
  if (logs_ != nullptr) {
    std::map<std::string, std::string> task_of;  // container (12 hex digits) -> task
    std::vector<std::string> containers;
    for (absl::string_view pair : absl::StrSplit(ctx.Argument("containers"), ',', absl::SkipEmpty())) {
      std::pair<std::string, std::string> ct = absl::StrSplit(pair, absl::MaxSplits('=', 1));
      containers.push_back(ct.first);
      task_of[ct.first.substr(0, 12)] = ct.second;
    }
    const int task_count = static_cast<int>(std::max<size_t>(containers.size(), 1));
    absl::StatusOr<std::vector<StoredLogLine>> stored =
        logs_->Lines(containers, ctx.clock().Now() - since, ctx.clock().Now(), lines * task_count);
    if (stored.ok()) {
      for (const StoredLogLine& l : *stored) {
        analyzer.Add(task_of[l.container_id.substr(0, 12)], l.text);
      }
      read = static_cast<int>(containers.size());
      source = "loki";
    } else {
      loki_note = absl::StrCat("Loki: ", stored.status().message(), "; read through the agents");
    }
  }
  for (absl::string_view id : absl::StrSplit(ctx.Argument("tasks"), ',', absl::SkipEmpty())) {
    if (source == "loki") break;
    if (ctx.cancelled()) return absl::CancelledError("cancelled while reading logs");
    absl::StatusOr<std::string> text = cluster_.TaskLogs(std::string(id), lines);
    if (!text.ok()) {
      unread.push_back(absl::StrCat(id.substr(0, 12), ": ", text.status().message()));
      continue;
    }
    ++read;
    analyzer.Add(std::string(id), *text);
  }
  if (read == 0) {
    return absl::UnavailableError(
        absl::StrCat("no task's logs could be read: ", absl::StrJoin(unread, "; ")));
  }
  const LogFindings f = analyzer.Findings(static_cast<size_t>(std::max(top, 1)));
  ctx.SetOutput("lines", absl::StrCat(f.lines));
  ctx.SetOutput("source", source);
  ctx.SetOutput("errors", absl::StrCat(f.errors));
  std::string out = absl::StrCat(ctx.Param("service"), ": ", read, " tasks, ", f.lines,
                                 " lines in the last ", absl::FormatDuration(since));
  if (f.untimed > 0) absl::StrAppend(&out, " (", f.untimed, " without a time, counted in)");
  absl::StrAppend(&out, "\nerrors: ", f.errors);
  for (const auto& [pattern, count] : f.by_pattern) {
    ctx.SetOutput(absl::StrCat("pattern.", pattern), absl::StrCat(count));
    absl::StrAppend(&out, "\n  ", pattern, ": ", count);
  }
  if (!f.top.empty()) absl::StrAppend(&out, "\ntop messages:");
  for (size_t i = 0; i < f.top.size(); ++i) {
    const LogFindings::Message& m = f.top[i];
    const std::string first =
        absl::StrCat("first ", m.first_time.empty() ? "(no time)" : m.first_time, " in task ",
                     m.first_task.substr(0, 12));
    ctx.SetOutput(absl::StrCat("top.", i + 1), absl::StrCat(m.count, " x ", m.text));
    absl::StrAppend(&out, "\n  ", m.count, " x ", m.text, "  (", first, ")");
  }
  for (const std::string& u : unread) absl::StrAppend(&out, "\nnot read: ", u);
  absl::StrAppend(&out, "\nsource: ", source == "loki" ? "Loki" : "the agents");
  if (!loki_note.empty()) absl::StrAppend(&out, "\n", loki_note);
  return out;
}

namespace {

// The patterns a line is counted under, lowercase line in.
std::vector<std::string> ErrorPatterns(const std::string& lower, const std::string& level,
                                       int status) {
  std::vector<std::string> out;
  if (level == "error" || level == "fatal" || level == "critical" || level == "panic") {
    out.push_back("level-error");
  }
  if (absl::StrContains(lower, "panic")) out.push_back("panic");
  if (absl::StrContains(lower, "exception")) out.push_back("exception");
  if (absl::StrContains(lower, "timeout") || absl::StrContains(lower, "timed out") ||
      absl::StrContains(lower, "deadline exceeded")) {
    out.push_back("timeout");
  }
  if (absl::StrContains(lower, "refused")) out.push_back("connection-refused");
  if (absl::StrContains(lower, "out of memory") || absl::StrContains(lower, "oom")) {
    out.push_back("out-of-memory");
  }
  if (status >= 500 && status <= 599) out.push_back("http-5xx");
  return out;
}

}  // namespace

std::string LogAnalyzer::Normalize(const std::string& message) {
  std::string out;
  size_t i = 0;
  while (i < message.size()) {
    const char c = message[i];
    if (absl::ascii_isxdigit(c)) {
      size_t j = i;
      bool digits_only = true;
      while (j < message.size() && absl::ascii_isxdigit(message[j])) {
        digits_only = digits_only && absl::ascii_isdigit(message[j]);
        ++j;
      }
      const bool word_start = i == 0 || !absl::ascii_isalnum(message[i - 1]);
      const bool word_end = j == message.size() || !absl::ascii_isalpha(message[j]);
      if (digits_only && (word_start || !absl::ascii_isalpha(message[i - 1]))) {
        out += 'N';
        i = j;
        continue;
      }
      if (!digits_only && j - i >= 8 && word_start && word_end) {
        out += 'X';
        i = j;
        continue;
      }
      out.append(message, i, j - i);
      i = j;
      continue;
    }
    out += c;
    ++i;
  }
  if (out.size() > 200) out = out.substr(0, 200) + "...";
  return out;
}

void LogAnalyzer::Add(const std::string& task, const std::string& text) {
  for (absl::string_view raw : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    std::string line(absl::StripTrailingAsciiWhitespace(raw));
    std::string message = line, level, time;
    int status = 0;
    if (!line.empty() && line[0] == '{') {
      nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_object()) {
        for (const char* key : {"msg", "message"}) {
          if (j.contains(key) && j[key].is_string()) {
            message = j[key].get<std::string>();
            break;
          }
        }
        if (j.contains("level") && j["level"].is_string()) {
          level = absl::AsciiStrToLower(j["level"].get<std::string>());
        }
        for (const char* key : {"ts", "time", "timestamp"}) {
          if (j.contains(key) && j[key].is_string()) {
            time = j[key].get<std::string>();
            break;
          }
        }
        if (j.contains("status") && j["status"].is_number_integer())
          status = j["status"].get<int>();
      }
    } else {
      // Plain text: an RFC 3339 time may lead the line.
      const size_t space = line.find(' ');
      absl::Time t;
      std::string err;
      if (space != std::string::npos &&
          absl::ParseTime(absl::RFC3339_full, line.substr(0, space), &t, &err)) {
        time = line.substr(0, space);
        message = line.substr(space + 1);
      }
    }
    if (time.empty()) {
      ++findings_.untimed;
    } else {
      absl::Time t;
      std::string err;
      if (!absl::ParseTime(absl::RFC3339_full, time, &t, &err)) {
        ++findings_.untimed;
      } else if (t < since_) {
        continue;
      }
    }
    ++findings_.lines;
    if (level.empty()) {
      const std::string lower_msg = absl::AsciiStrToLower(message);
      if (absl::StartsWith(lower_msg, "error") || absl::StrContains(lower_msg, " error:")) {
        level = "error";
      }
    }
    const std::vector<std::string> patterns =
        ErrorPatterns(absl::AsciiStrToLower(line), level, status);
    if (patterns.empty()) continue;
    ++findings_.errors;
    for (const std::string& p : patterns) ++findings_.by_pattern[p];
    const std::string key = Normalize(message);
    LogFindings::Message& m = messages_[key];
    if (m.count == 0) {
      m.text = key;
      m.first_time = time;
      m.first_task = task;
    } else if (!time.empty() && (m.first_time.empty() || time < m.first_time)) {
      m.first_time = time;
      m.first_task = task;
    }
    ++m.count;
  }
}

LogFindings LogAnalyzer::Findings(size_t top) const {
  LogFindings out = findings_;
  std::vector<LogFindings::Message> all;
  for (const auto& [key, m] : messages_) all.push_back(m);
  std::stable_sort(all.begin(), all.end(),
                   [](const LogFindings::Message& a, const LogFindings::Message& b) {
                     return a.count > b.count;
                   });
  if (all.size() > top) all.resize(top);
  out.top = std::move(all);
  return out;
}

}  // namespace hosting::controlplane
