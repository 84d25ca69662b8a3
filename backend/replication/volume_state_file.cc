#include "backend/replication/volume_state_file.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <span>

#include "common/crc32c.h"
#include "common/endian.h"
#include "common/file_io.h"
#include "common/unique_fd.h"

namespace vnvram::replication {

namespace {

// Field offsets of the record (docs/backend.md, "Replication state file").
constexpr size_t kVersionOffset = 8;
constexpr size_t kFlagsOffset = 12;
constexpr size_t kChecksumOffset = 56;
static_assert(kChecksumOffset + 4 == kVolumeStateSize);

using Record = std::array<std::byte, kVolumeStateSize>;

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

Record Encode(const Uuid& volume, const VolumeState& s) {
  Record out{};
  ByteWriter w(out);
  w.PutBytes(std::as_bytes(std::span(kVolumeStateMagic)));
  w.PutLE<uint32_t>(kVolumeStateVersion);
  w.PutLE<uint32_t>(s.clean ? kVolumeStateFlagClean : 0);
  w.PutBytes(std::as_bytes(std::span(volume.bytes)));
  w.PutLE<uint64_t>(s.promise);
  w.PutLE<uint64_t>(s.content_epoch);
  w.PutLE<uint64_t>(s.content_seq);
  w.PutLE<uint32_t>(Crc32c(std::span(out).first(kChecksumOffset)));
  return out;
}

// Checks in an order where each check only reads bytes whose meaning the
// earlier ones established: magic, version (which fixes the length),
// length, checksum, then the fields.
Result<VolumeState> Decode(const std::string& path, std::span<const std::byte> b,
                           const Uuid& volume) {
  auto truncated = [&] {
    return Status::Corruption(path + ": truncated: " + std::to_string(b.size()) +
                              " bytes, a state record is " + std::to_string(kVolumeStateSize));
  };
  if (b.size() < sizeof(kVolumeStateMagic)) return truncated();
  if (std::memcmp(b.data(), kVolumeStateMagic, sizeof(kVolumeStateMagic)) != 0) {
    return Status::Corruption(path + ": bad magic (not a vnvram replication state file)");
  }
  if (b.size() < kVersionOffset + 4) return truncated();
  const auto version = LoadLE<uint32_t>(b.data() + kVersionOffset);
  if (version != kVolumeStateVersion) {
    return Status::Corruption(path + ": unsupported version " + std::to_string(version));
  }
  if (b.size() < kVolumeStateSize) return truncated();
  if (b.size() > kVolumeStateSize) {
    return Status::Corruption(path + ": trailing bytes after the " +
                              std::to_string(kVolumeStateSize) + "-byte state record");
  }
  const auto stored = LoadLE<uint32_t>(b.data() + kChecksumOffset);
  const uint32_t computed = Crc32c(b.first(kChecksumOffset));
  if (stored != computed) {
    return Status::Corruption(path + ": checksum mismatch (stored " + Hex(stored) + ", computed " +
                              Hex(computed) + ")");
  }
  ByteReader r(b.subspan(kFlagsOffset));
  uint32_t flags = 0;
  r.GetLE(&flags);
  if ((flags & ~kVolumeStateFlagClean) != 0) {
    return Status::Corruption(path + ": unknown flags " + Hex(flags));
  }
  Uuid stored_volume;
  std::span<const std::byte> uuid;
  r.GetBytes(stored_volume.bytes.size(), &uuid);
  std::memcpy(stored_volume.bytes.data(), uuid.data(), uuid.size());
  if (stored_volume != volume) {
    return Status::Corruption(path + ": uuid " + stored_volume.ToString() + " is not volume " +
                              volume.ToString());
  }
  VolumeState s;
  s.clean = (flags & kVolumeStateFlagClean) != 0;
  r.GetLE(&s.promise);
  r.GetLE(&s.content_epoch);
  r.GetLE(&s.content_seq);
  if (r.failed()) return Status::Internal(path + ": state record layout");  // a bug, not the file
  return s;
}

}  // namespace

std::string VolumeStatePath(const std::string& dir, const Uuid& volume) {
  return dir + "/" + volume.ToString() + ".state";
}

Status WriteVolumeState(const std::string& dir, const Uuid& volume, const VolumeState& state) {
  const std::string path = VolumeStatePath(dir, volume);
  // A unique temp name: two writers never share (and truncate) one temp file.
  std::string tmp = path + ".tmp.XXXXXX";
  UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
  if (fd.get() < 0) return Status::FromErrno(errno, "create temp file for " + path);
  auto fail = [&](Status s) {
    ::unlink(tmp.c_str());
    return s;
  };
  const Record record = Encode(volume, state);
  if (Status s = WriteAll(fd.get(), record, tmp); !s.ok()) return fail(s);
  if (::fsync(fd.get()) != 0) return fail(Status::FromErrno(errno, "fsync " + tmp));
  if (::close(fd.release()) != 0) return fail(Status::FromErrno(errno, "close " + tmp));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return fail(Status::FromErrno(errno, "rename " + tmp + " to " + path));
  }
  return FsyncDirectory(dir);
}

Result<std::optional<VolumeState>> ReadVolumeState(const std::string& dir, const Uuid& volume) {
  const std::string path = VolumeStatePath(dir, volume);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::optional<VolumeState>();
    return Status::FromErrno(errno, "open " + path);
  }
  // One byte more than a record, to tell a longer file without reading it.
  std::array<std::byte, kVolumeStateSize + 1> buf{};
  size_t n = 0;
  while (n < buf.size()) {
    const ssize_t r = ::read(fd.get(), buf.data() + n, buf.size() - n);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read " + path);
    }
    if (r == 0) break;
    n += static_cast<size_t>(r);
  }
  auto state = Decode(path, std::span(buf).first(n), volume);
  if (!state.ok()) return state.status();
  return std::optional<VolumeState>(*state);
}

}  // namespace vnvram::replication
