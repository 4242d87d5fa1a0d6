#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"

namespace hosting {

// CRC-32C (Castagnoli, iSCSI's and PostgreSQL's backup manifests' checksum). `crc` is the value
// of the bytes before `data` (0 for none): Crc32c(Crc32c(0, a), b) == Crc32c(0, a + b).
// SSE4.2's crc32 instruction where the CPU has it, a table otherwise.
uint32_t Crc32c(uint32_t crc, absl::string_view data);

// The table version alone (tests compare the two).
uint32_t Crc32cPortable(uint32_t crc, absl::string_view data);

}  // namespace hosting
