#include "tests/lab/fsync_workload.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>

#include "common/file_io.h"
#include "common/unique_fd.h"

namespace vnvram::lab {
namespace {

constexpr size_t kMinSize = 200;
constexpr size_t kSizeSpan = 3800;  // sizes 200 .. 3999
constexpr size_t kMaxSize = kMinSize + kSizeSpan - 1;

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string Numbered(const char* format, uint32_t n) {
  char buf[16];
  std::snprintf(buf, sizeof buf, format, n);
  return buf;
}

Status FsyncFd(int fd, const std::string& what, uint64_t& fsyncs) {
  if (::fsync(fd) != 0) return Status::FromErrno(errno, "fsync " + what);
  ++fsyncs;
  return Status::Ok();
}

// Opens (creating when missing) directory `path`; when it was created, its
// parent `parent` is fsynced so that the new entry is durable.
Result<int> OpenOrCreateDir(const std::string& path, const std::string& parent, uint64_t& fsyncs) {
  if (::mkdir(path.c_str(), 0755) == 0) {
    VNVRAM_RETURN_IF_ERROR(FsyncDirectory(parent));
    ++fsyncs;
  } else if (errno != EEXIST) {
    return Status::FromErrno(errno, "mkdir " + path);
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open directory " + path);
  return fd;
}

Status WriteOne(const std::string& dir_path, int dir_fd, const std::string& final_path,
                uint32_t index, WorkloadStats& stats) {
  const std::string tmp = dir_path + Numbered("/.f%06u.tmp", index);
  const std::vector<std::byte> content = FileContent(index);
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0) return Status::FromErrno(errno, "create " + tmp);
    std::span<const std::byte> rest(content);
    while (!rest.empty()) {
      const size_t n = std::min(rest.size(), kWriteChunk);
      VNVRAM_RETURN_IF_ERROR(WriteAll(fd.get(), rest.first(n), tmp));
      rest = rest.subspan(n);
    }
    VNVRAM_RETURN_IF_ERROR(FsyncFd(fd.get(), tmp, stats.fsyncs));
    if (::close(fd.release()) != 0) return Status::FromErrno(errno, "close " + tmp);
  }
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    return Status::FromErrno(errno, "rename " + tmp + " to " + final_path);
  }
  VNVRAM_RETURN_IF_ERROR(FsyncFd(dir_fd, "directory " + dir_path, stats.fsyncs));
  stats.bytes += content.size();
  return Status::Ok();
}

Nanos Percentile(std::vector<Nanos> v, size_t pct) {
  if (v.empty()) return Nanos{0};
  std::sort(v.begin(), v.end());
  const size_t rank = (pct * v.size() + 99) / 100;  // nearest rank, 1-based
  return v[std::max<size_t>(rank, 1) - 1];
}

}  // namespace

std::string SubdirPath(const std::string& dir, uint32_t index) {
  return dir + Numbered("/d%03u", index / kFilesPerDir);
}

std::string FilePath(const std::string& dir, uint32_t index) {
  return SubdirPath(dir, index) + Numbered("/f%06u", index);
}

std::vector<std::byte> FileContent(uint32_t index) {
  uint64_t state = 0x766e7672616d6c62ULL ^ (static_cast<uint64_t>(index) << 20);
  const size_t size = kMinSize + static_cast<size_t>(SplitMix64(state) % kSizeSpan);
  char header[64];
  const int h =
      std::snprintf(header, sizeof header, "vnvram-lab-fsload index %u size %zu\n", index, size);
  std::vector<std::byte> out(size);
  std::memcpy(out.data(), header, static_cast<size_t>(h));
  for (size_t i = static_cast<size_t>(h); i < size; i += 8) {
    const uint64_t r = SplitMix64(state);
    std::memcpy(out.data() + i, &r, std::min<size_t>(8, size - i));
  }
  return out;
}

Result<WorkloadStats> RunFsyncWorkload(const WorkloadOptions& options, const Clock& clock,
                                       const SyncedFn& synced) {
  if (options.dir.empty()) return Status::InvalidArgument("workload directory is empty");
  if (options.count == 0 || options.first > kMaxIndex ||
      options.count - 1 > kMaxIndex - options.first) {
    return Status::OutOfRange("files " + std::to_string(options.first) + " + " +
                              std::to_string(options.count) + " outside 0.." +
                              std::to_string(kMaxIndex) + " (or none)");
  }
  WorkloadStats stats;
  std::vector<Nanos> per_file;
  per_file.reserve(options.count);
  const Nanos start = clock.Now();
  // The parent of the workload directory, fsynced when the directory is new.
  const size_t slash = options.dir.find_last_of('/');
  const std::string parent = slash == std::string::npos ? "."
                             : slash == 0               ? "/"
                                                        : options.dir.substr(0, slash);
  auto top = OpenOrCreateDir(options.dir, parent, stats.fsyncs);
  if (!top.ok()) return top.status();
  UniqueFd top_fd(*top);
  std::unique_ptr<UniqueFd> sub_fd;  // the current subdirectory
  uint32_t sub_number = 0;
  for (uint32_t k = 0; k < options.count; ++k) {
    const uint32_t index = options.first + k;
    const Nanos t0 = clock.Now();
    const std::string sub = SubdirPath(options.dir, index);
    if (!sub_fd || index / kFilesPerDir != sub_number) {
      sub_fd.reset();
      auto fd = OpenOrCreateDir(sub, options.dir, stats.fsyncs);
      if (!fd.ok()) return fd.status();
      sub_fd = std::make_unique<UniqueFd>(*fd);
      sub_number = index / kFilesPerDir;
    }
    VNVRAM_RETURN_IF_ERROR(
        WriteOne(sub, sub_fd->get(), FilePath(options.dir, index), index, stats));
    per_file.push_back(clock.Now() - t0);
    stats.files = k + 1;
    if (synced) VNVRAM_RETURN_IF_ERROR(synced(index, stats.files));
  }
  stats.elapsed = clock.Now() - start;
  stats.file_p50 = Percentile(per_file, 50);
  stats.file_p99 = Percentile(std::move(per_file), 99);
  return stats;
}

Result<std::pair<WorkloadStats, WorkloadStats>> RunInterleaved(const InterleavedOptions& options,
                                                               const Clock& clock) {
  if (options.rounds == 0 || options.count == 0 || options.count % options.rounds != 0) {
    return Status::InvalidArgument(std::to_string(options.count) + " files in " +
                                   std::to_string(options.rounds) +
                                   " rounds: not a positive multiple");
  }
  if (options.dir_a.empty() || options.dir_b.empty() || options.dir_a == options.dir_b) {
    return Status::InvalidArgument("two distinct directories are needed");
  }
  const std::string* dirs[2] = {&options.dir_a, &options.dir_b};
  if (options.warmup > 0) {
    for (const std::string* d : dirs) {
      WorkloadOptions w;
      w.dir = *d + ".warmup";
      w.count = options.warmup;
      auto st = RunFsyncWorkload(w, clock, nullptr);
      if (!st.ok()) return st.status().WithContext("warm-up in " + w.dir);
    }
  }
  WorkloadStats total[2];
  const uint32_t per_round = options.count / options.rounds;
  for (uint32_t r = 0; r < options.rounds; ++r) {
    for (int k = 0; k < 2; ++k) {
      const int which = (r % 2 == 0) ? k : 1 - k;
      WorkloadOptions w;
      w.dir = *dirs[which];
      w.first = r * per_round;
      w.count = per_round;
      auto st = RunFsyncWorkload(w, clock, nullptr);
      if (!st.ok()) return st.status().WithContext("round " + std::to_string(r) + " in " + w.dir);
      WorkloadStats& t = total[which];
      t.files += st->files;
      t.fsyncs += st->fsyncs;
      t.bytes += st->bytes;
      t.elapsed += st->elapsed;
    }
  }
  return std::make_pair(total[0], total[1]);
}

namespace {

// Status of file `index`: OK when intact (adds its size to *bytes).
Status CheckOne(const std::string& dir, uint32_t index, uint64_t* bytes) {
  const std::string path = FilePath(dir, index);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    return Status(errno == ENOENT ? Code::kNotFound : Code::kIoError,
                  "file " + std::to_string(index) + " (" + path + "): " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "fstat " + path);
  const std::vector<std::byte> want = FileContent(index);
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) != want.size()) {
    return Status::Corruption("file " + std::to_string(index) + " (" + path + "): size " +
                              std::to_string(st.st_size) + ", expected " +
                              std::to_string(want.size()));
  }
  std::vector<std::byte> got(kMaxSize + 1);
  size_t have = 0;
  while (have < got.size()) {
    const ssize_t r = ::read(fd.get(), got.data() + have, got.size() - have);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read " + path);
    }
    if (r == 0) break;
    have += static_cast<size_t>(r);
  }
  if (have != want.size()) {
    return Status::Corruption("file " + std::to_string(index) + " (" + path + "): read " +
                              std::to_string(have) + " bytes, expected " +
                              std::to_string(want.size()));
  }
  const auto diff = std::mismatch(want.begin(), want.end(), got.begin());
  if (diff.first != want.end()) {
    return Status::Corruption("file " + std::to_string(index) + " (" + path +
                              "): differs at byte " + std::to_string(diff.first - want.begin()));
  }
  *bytes += want.size();
  return Status::Ok();
}

}  // namespace

Result<VerifyStats> VerifyFsyncWorkload(const std::string& dir, uint32_t first, uint32_t count) {
  if (first > kMaxIndex || (count > 0 && count - 1 > kMaxIndex - first)) {
    return Status::OutOfRange("files " + std::to_string(first) + " + " + std::to_string(count) +
                              " outside 0.." + std::to_string(kMaxIndex));
  }
  VerifyStats stats;
  for (uint32_t k = 0; k < count; ++k) {
    VNVRAM_RETURN_IF_ERROR(CheckOne(dir, first + k, &stats.bytes));
    stats.verified = k + 1;
  }
  // What was durable beyond the reported count (written, not yet reported).
  uint64_t ignored = 0;
  for (uint64_t index = static_cast<uint64_t>(first) + count; index <= kMaxIndex; ++index) {
    if (!CheckOne(dir, static_cast<uint32_t>(index), &ignored).ok()) break;
    ++stats.beyond;
  }
  return stats;
}

}  // namespace vnvram::lab
