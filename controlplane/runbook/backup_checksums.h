#pragma once

// Checksumming a base backup while pg_basebackup writes it: each file's CRC-32C is taken the
// moment its writer closes it (inotify), from the page cache it was just written to, on a
// thread of its own, so that verification afterwards need not read the whole backup again.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"

namespace hosting::controlplane {

// A file's CRC-32C and what identified its contents when it was read: a file whose size, inode,
// mtime and ctime are still these has not been written since.
struct FileSum {
  uint64_t size = 0;
  uint64_t inode = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint32_t crc32c = 0;
};

// By path relative to the backup's directory ("base/1/1259").
using FileSums = absl::flat_hash_map<std::string, FileSum>;

// The CRC-32C of a file and its identity (read before the contents).
absl::StatusOr<FileSum> SumFile(const std::string& path);

// The hex PostgreSQL's backup_manifest writes for a CRC-32C: its four bytes in little-endian
// order (PostgreSQL copies the uint32 out as it lies in memory; x86 and ARM are little-endian).
std::string ManifestCrc32cHex(uint32_t crc);

// Watches a directory while another process fills it, and checksums every regular file the
// moment its writer closes it. Directories the writer makes are watched as they appear (files
// closed in one before its watch was in place are left to whoever checks the sums, which reads
// what it is not given). `skip` names top-level directories not to watch (pg_wal: its segments
// are checked by parsing the WAL).
class ChecksumsWhileWriting {
 public:
  // Makes `dir` (mode 0700) when missing and starts watching it.
  static absl::StatusOr<std::unique_ptr<ChecksumsWhileWriting>> Start(
      const std::string& dir, std::vector<std::string> skip);
  ~ChecksumsWhileWriting();

  ChecksumsWhileWriting(const ChecksumsWhileWriting&) = delete;
  ChecksumsWhileWriting& operator=(const ChecksumsWhileWriting&) = delete;

  // Once the writer has exited: checksums what it closed and the thread has not read yet, stops
  // watching, and returns every checksum taken. Call once.
  FileSums Finish();

 private:
  ChecksumsWhileWriting(std::string dir, int fd, absl::flat_hash_set<std::string> skip);
  void Loop();
  // Handles the events in the inotify buffer; false when there were none to read.
  bool ReadEvents();
  // Watches `relative` (and the directories already in it).
  void Watch(const std::string& relative);
  void Stop();

  const std::string dir_;
  const int fd_;
  const absl::flat_hash_set<std::string> skip_;
  absl::flat_hash_map<int, std::string> watched_;  // inotify watch -> relative directory
  FileSums sums_;
  std::atomic<bool> writer_done_{false};
  std::thread thread_;
};

// Checks every file backup_manifest lists against its CRC-32C: from `known` when the file is
// unchanged since it was summed, read now otherwise. What it checked, DATA_LOSS naming the
// files that differ, or FAILED_PRECONDITION when the manifest is unreadable or uses another
// algorithm for some file (pg_verifybackup then checks them all).
absl::StatusOr<std::string> CheckManifestCrc32c(const std::string& dir, const FileSums& known);

}  // namespace hosting::controlplane
