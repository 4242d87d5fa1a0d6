#include "controlplane/runbook/backup_checksums.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "nlohmann/json.hpp"

namespace hosting::controlplane {
namespace fs = std::filesystem;

namespace {

int64_t Nanos(const struct timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

void Identify(const struct stat& st, FileSum& sum) {
  sum.size = static_cast<uint64_t>(st.st_size);
  sum.inode = static_cast<uint64_t>(st.st_ino);
  sum.mtime_ns = Nanos(st.st_mtim);
  sum.ctime_ns = Nanos(st.st_ctim);
}

bool SameFile(const FileSum& a, const FileSum& b) {
  return a.size == b.size && a.inode == b.inode && a.mtime_ns == b.mtime_ns &&
         a.ctime_ns == b.ctime_ns;
}

std::string Join(const std::string& relative, const char* name) {
  return relative.empty() ? std::string(name) : absl::StrCat(relative, "/", name);
}

}  // namespace

absl::StatusOr<FileSum> SumFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", strerror(errno)));
  FileSum sum;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return absl::InternalError(absl::StrCat("cannot stat ", path, ": ", strerror(errno)));
  }
  Identify(st, sum);
  // read() and not mmap: as fast here, and a file truncated meanwhile is an error, not SIGBUS.
  constexpr size_t kBuffer = 256 << 10;
  static thread_local std::unique_ptr<char[]> buf(new char[kBuffer]);
  uint32_t crc = 0;
  for (;;) {
    const ssize_t n = read(fd, buf.get(), kBuffer);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      close(fd);
      return absl::InternalError(absl::StrCat("cannot read ", path, ": ", strerror(err)));
    }
    crc = Crc32c(crc, absl::string_view(buf.get(), static_cast<size_t>(n)));
  }
  close(fd);
  sum.crc32c = crc;
  return sum;
}

std::string ManifestCrc32cHex(uint32_t crc) {
  return absl::StrFormat("%02x%02x%02x%02x", crc & 0xFF, (crc >> 8) & 0xFF, (crc >> 16) & 0xFF,
                         crc >> 24);
}

absl::StatusOr<std::unique_ptr<ChecksumsWhileWriting>> ChecksumsWhileWriting::Start(
    const std::string& dir, std::vector<std::string> skip) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot make ", dir, ": ", ec.message()));
    fs::permissions(dir, fs::perms::owner_all, ec);
  }
  const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    return absl::ResourceExhaustedError(absl::StrCat("inotify: ", strerror(errno)));
  }
  std::unique_ptr<ChecksumsWhileWriting> w(new ChecksumsWhileWriting(
      dir, fd, absl::flat_hash_set<std::string>(skip.begin(), skip.end())));
  w->Watch("");
  if (w->watched_.empty()) return absl::InternalError(absl::StrCat("cannot watch ", dir));
  w->thread_ = std::thread([p = w.get()] { p->Loop(); });
  return w;
}

ChecksumsWhileWriting::ChecksumsWhileWriting(std::string dir, int fd,
                                             absl::flat_hash_set<std::string> skip)
    : dir_(std::move(dir)), fd_(fd), skip_(std::move(skip)) {}

ChecksumsWhileWriting::~ChecksumsWhileWriting() {
  Stop();
  close(fd_);
}

void ChecksumsWhileWriting::Stop() {
  writer_done_ = true;
  if (thread_.joinable()) thread_.join();
}

FileSums ChecksumsWhileWriting::Finish() {
  Stop();
  return std::move(sums_);
}

void ChecksumsWhileWriting::Watch(const std::string& relative) {
  const std::string path = relative.empty() ? dir_ : absl::StrCat(dir_, "/", relative);
  const int wd = inotify_add_watch(fd_, path.c_str(), IN_CLOSE_WRITE | IN_CREATE | IN_ONLYDIR);
  if (wd < 0) {
    LogWarning("backup checksums: cannot watch a directory (its files are read afterwards)",
               {{"path", path}, {"error", strerror(errno)}});
    return;
  }
  watched_[wd] = relative;
  // Directories made before the watch was in place (their files, if any, are read afterwards).
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(path, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory(ec) && !(relative.empty() && skip_.contains(name))) {
      Watch(Join(relative, name.c_str()));
    }
  }
}

bool ChecksumsWhileWriting::ReadEvents() {
  alignas(struct inotify_event) char buf[64 * 1024];
  const ssize_t n = read(fd_, buf, sizeof(buf));
  if (n <= 0) return false;
  for (char* p = buf; p < buf + n;) {
    const auto* e = reinterpret_cast<const struct inotify_event*>(p);
    p += sizeof(struct inotify_event) + e->len;
    auto it = watched_.find(e->wd);
    if (it == watched_.end() || e->len == 0) continue;
    const std::string relative = it->second;
    if (e->mask & IN_ISDIR) {
      if ((e->mask & IN_CREATE) && !(relative.empty() && skip_.contains(e->name))) {
        Watch(Join(relative, e->name));
      }
    } else if (e->mask & IN_CLOSE_WRITE) {
      const std::string file = Join(relative, e->name);
      absl::StatusOr<FileSum> sum = SumFile(absl::StrCat(dir_, "/", file));
      if (sum.ok()) sums_[file] = *sum;
    }
  }
  return true;
}

void ChecksumsWhileWriting::Loop() {
  for (;;) {
    // Once the writer has exited every event it caused is queued: drain them, then stop.
    const bool done = writer_done_;
    struct pollfd p = {fd_, POLLIN, 0};
    if (poll(&p, 1, done ? 0 : 50) > 0) {
      while (ReadEvents()) {
      }
      continue;
    }
    if (done) return;
  }
}

absl::StatusOr<std::string> CheckManifestCrc32c(const std::string& dir, const FileSums& known) {
  std::ifstream in(dir + "/backup_manifest", std::ios::binary);
  if (!in) return absl::FailedPreconditionError(absl::StrCat(dir, " has no backup_manifest"));
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json m = nlohmann::json::parse(text.str(), nullptr, false);
  if (!m.is_object() || !m.contains("Files") || !m["Files"].is_array()) {
    return absl::FailedPreconditionError("backup_manifest has no list of files");
  }
  std::vector<std::string> bad;
  int from_copy = 0, read_now = 0;
  for (const nlohmann::json& f : m["Files"]) {
    if (!f.is_object() || !f.contains("Path") || !f["Path"].is_string() ||
        !f.contains("Checksum-Algorithm") || f["Checksum-Algorithm"] != "CRC32C" ||
        !f.contains("Checksum") || !f["Checksum"].is_string()) {
      return absl::FailedPreconditionError(
          absl::StrCat("backup_manifest lists a file without a CRC32C checksum: ",
                       f.is_object() ? f.dump().substr(0, 120) : "(not an object)"));
    }
    const std::string file = f["Path"].get<std::string>();
    const std::string path = absl::StrCat(dir, "/", file);
    std::optional<uint32_t> crc;
    if (auto it = known.find(file); it != known.end()) {
      struct stat st;
      FileSum now;
      if (stat(path.c_str(), &st) == 0) {
        Identify(st, now);
        if (SameFile(now, it->second)) {
          crc = it->second.crc32c;
          ++from_copy;
        }
      }
    }
    if (!crc.has_value()) {
      absl::StatusOr<FileSum> sum = SumFile(path);
      if (!sum.ok()) {
        bad.push_back(absl::StrCat(file, " is missing"));
        continue;
      }
      crc = sum->crc32c;
      ++read_now;
    }
    if (ManifestCrc32cHex(*crc) != f["Checksum"].get<std::string>()) {
      bad.push_back(absl::StrCat(file, " has CRC-32C ", ManifestCrc32cHex(*crc), ", the manifest ",
                                 f["Checksum"].get<std::string>()));
    }
  }
  if (!bad.empty()) {
    const size_t shown = std::min<size_t>(bad.size(), 10);
    return absl::DataLossError(absl::StrCat(bad.size(), " files do not match backup_manifest: ",
                                            absl::StrJoin(bad.begin(), bad.begin() + shown, "; "),
                                            bad.size() > shown ? "; ..." : ""));
  }
  return absl::StrCat(from_copy + read_now, " files match their CRC-32C in backup_manifest (",
                      from_copy, " summed while copying, ", read_now, " read now)");
}

}  // namespace hosting::controlplane
