#include "common/clock.h"

namespace hosting {

Clock& Clock::Real() {
  static RealClock* clock = new RealClock();
  return *clock;
}

}  // namespace hosting
