#pragma once

#include "hosting/v1/agent.pb.h"

namespace hosting::agent {

// Where the agent's parts send what they observe: the stream to hostd (ControllerStream), or a
// recorder in unit tests. Send never blocks on hostd; while the stream is down messages are
// dropped, and the whole state goes out again as a snapshot on (re)connect.
class MessageSink {
 public:
  virtual ~MessageSink() = default;
  virtual void Send(const hosting::v1::AgentMessage& msg) = 0;
};

}  // namespace hosting::agent
