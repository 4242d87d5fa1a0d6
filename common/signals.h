#pragma once

namespace hosting {

// Blocks SIGINT and SIGTERM in the calling thread (call before starting any thread, so every
// thread inherits the mask) and ignores SIGPIPE. The signals are then taken synchronously by
// WaitForStopSignal, never by an arbitrary thread.
void BlockStopSignals();

// Waits for SIGINT or SIGTERM; returns the signal number.
int WaitForStopSignal();

}  // namespace hosting
