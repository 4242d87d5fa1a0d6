#pragma once

#include <initializer_list>
#include <string>
#include "absl/strings/string_view.h"
#include <utility>

namespace hosting {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

using LogField = std::pair<absl::string_view, std::string>;

// Writes one JSON object per line to stderr: {"ts":...,"level":...,"msg":...,<fields>}.
// Thread-safe; lines never interleave.
void Log(LogLevel level, absl::string_view msg, std::initializer_list<LogField> fields = {});

inline void LogInfo(absl::string_view msg, std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kInfo, msg, fields);
}
inline void LogWarning(absl::string_view msg, std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kWarning, msg, fields);
}
inline void LogError(absl::string_view msg, std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kError, msg, fields);
}

// Messages below this level are dropped. Default kInfo.
void SetMinLogLevel(LogLevel level);

}  // namespace hosting
