#pragma once

// Leaf header: every command file may include it without reaching up to hostctl.h.
namespace hosting::hostctl {

// Exit codes scripts and CI can rely on (documented in docs/hostctl.md).
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,             // anything not listed below
  kExitUsage = 2,             // bad command line or spec file
  kExitInvalid = 3,           // hostd rejected the request (INVALID_ARGUMENT)
  kExitNotFound = 4,          // no such service / node
  kExitConflict = 5,          // ALREADY_EXISTS, FAILED_PRECONDITION, ABORTED
  kExitUnavailable = 6,       // hostd or the Docker engine cannot be reached
  kExitTimeout = 7,           // --wait or the call deadline ran out
  kExitUnimplemented = 8,     // this hostd does not serve the call yet
  kExitUnauthenticated = 9,   // no token, or an unknown, expired or revoked one
  // How a release waited for (release start --wait, rollback --wait, release watch) ended.
  kExitRolledBack = 10,       // the release failed its checks and rolled back by itself
  kExitReleaseFailed = 11,    // the release (or its rollback) failed
  kExitAborted = 12,          // aborted by an operator
  kExitReleaseTimedOut = 13,  // the release made no progress within its deadline; rolled back
  kExitPermissionDenied = 14,  // the token's role (or its services) does not allow the call
  // How a runbook run waited for (runbook run --wait, runbook watch) ended.
  kExitRunFailed = 15,        // a step failed (or its approval was not given in time)
  kExitRunCancelled = 16,     // cancelled by an operator
};

}  // namespace hosting::hostctl
