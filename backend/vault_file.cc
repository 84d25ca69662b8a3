#include "backend/vault_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/endian.h"
#include "common/file_io.h"
#include "common/unique_fd.h"

namespace vnvram::backend {

namespace {

constexpr size_t kHeaderChecksumOffset = 56;

// Reads exactly n bytes at `offset`; kCorruption on a short file.
Status ReadAllAt(int fd, std::byte* p, size_t n, uint64_t offset, const std::string& what) {
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read " + what);
    }
    if (r == 0) return Status::Corruption(what + ": file is truncated");
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return Status::Ok();
}

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

uint64_t VaultChecksum(std::span<const std::byte> bytes, uint64_t seed) {
  uint64_t h = seed;
  for (std::byte b : bytes) {
    h ^= static_cast<uint8_t>(b);
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string VaultPath(const std::string& dir, const Uuid& volume) {
  return dir + "/" + volume.ToString() + ".vault";
}

std::vector<std::byte> EncodeVaultHeader(const VaultHeader& h) {
  std::vector<std::byte> out(kVaultHeaderSize);
  ByteWriter w(out);
  w.PutBytes(std::as_bytes(std::span(kVaultMagic)));
  w.PutLE<uint32_t>(kVaultVersion);
  w.PutLE<uint32_t>(kVaultHeaderSize);
  w.PutBytes(std::as_bytes(std::span(h.volume.bytes)));
  w.PutLE<uint64_t>(h.region_size);
  w.PutLE<uint64_t>(h.durable_seq);
  w.PutLE<uint64_t>(h.data_checksum);
  const uint64_t hc = VaultChecksum(std::span(out).first(kHeaderChecksumOffset));
  w.PutLE<uint64_t>(hc);
  return out;
}

Result<VaultHeader> DecodeVaultHeader(std::span<const std::byte> bytes) {
  if (bytes.size() < kVaultHeaderSize) return Status::Corruption("vault header is truncated");
  ByteReader r(bytes.first(kVaultHeaderSize));
  std::span<const std::byte> magic;
  r.GetBytes(sizeof(kVaultMagic), &magic);
  if (std::memcmp(magic.data(), kVaultMagic, sizeof(kVaultMagic)) != 0) {
    return Status::Corruption("bad magic (not a vnvram vault file)");
  }
  uint32_t version = 0, header_size = 0;
  r.GetLE(&version);
  r.GetLE(&header_size);
  if (version != kVaultVersion) {
    return Status::Corruption("unsupported vault version " + std::to_string(version));
  }
  if (header_size != kVaultHeaderSize) {
    return Status::Corruption("bad header size " + std::to_string(header_size));
  }
  VaultHeader h;
  std::span<const std::byte> uuid;
  r.GetBytes(16, &uuid);
  std::memcpy(h.volume.bytes.data(), uuid.data(), 16);
  r.GetLE(&h.region_size);
  r.GetLE(&h.durable_seq);
  r.GetLE(&h.data_checksum);
  uint64_t hc = 0;
  r.GetLE(&hc);
  if (r.failed()) return Status::Corruption("vault header is truncated");
  if (hc != VaultChecksum(bytes.first(kHeaderChecksumOffset))) {
    return Status::Corruption("header checksum mismatch");
  }
  return h;
}

Status WriteVault(const std::string& dir, const Uuid& volume, uint64_t durable_seq,
                  std::span<const std::byte> region) {
  const std::string path = VaultPath(dir, volume);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  VaultHeader h;
  h.volume = volume;
  h.region_size = region.size();
  h.durable_seq = durable_seq;
  // The guest may store into the region while we copy; the checksum covers
  // the bytes as they are written, so copy first, then checksum the copy.
  // Done in 1 MiB chunks to bound the extra memory.
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (fd.get() < 0) return Status::FromErrno(errno, "open " + tmp);
  auto fail = [&](Status s) {
    ::unlink(tmp.c_str());
    return s;
  };
  // Reserve the header; written last, once the checksum is known.
  std::vector<std::byte> zero(kVaultHeaderSize);
  if (Status s = WriteAll(fd.get(), std::span(zero.data(), zero.size()), tmp); !s.ok())
    return fail(s);
  std::vector<std::byte> chunk(std::min<size_t>(region.size(), 1u << 20));
  uint64_t sum = 0xcbf29ce484222325ull;
  for (size_t off = 0; off < region.size(); off += chunk.size()) {
    const size_t n = std::min(chunk.size(), region.size() - off);
    std::memcpy(chunk.data(), region.data() + off, n);
    sum = VaultChecksum(std::span(chunk).first(n), sum);
    if (Status s = WriteAll(fd.get(), std::span(chunk.data(), n), tmp); !s.ok()) return fail(s);
  }
  h.data_checksum = sum;
  const std::vector<std::byte> header = EncodeVaultHeader(h);
  if (::pwrite(fd.get(), header.data(), header.size(), 0) != static_cast<ssize_t>(header.size())) {
    return fail(Status::FromErrno(errno, "write header " + tmp));
  }
  if (::fsync(fd.get()) != 0) return fail(Status::FromErrno(errno, "fsync " + tmp));
  if (::close(fd.release()) != 0) return fail(Status::FromErrno(errno, "close " + tmp));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return fail(Status::FromErrno(errno, "rename " + tmp + " to " + path));
  }
  return FsyncDirectory(DirOf(path));
}

Result<VaultHeader> ReadVaultHeader(const std::string& dir, const Uuid& volume,
                                    uint64_t max_region_size) {
  const std::string path = VaultPath(dir, volume);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Status::NotFound("no vault file " + path);
    return Status::FromErrno(errno, "open " + path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
  std::vector<std::byte> buf(kVaultHeaderSize);
  if (static_cast<uint64_t>(st.st_size) < kVaultHeaderSize) {
    return Status::Corruption(path + ": shorter than the vault header");
  }
  VNVRAM_RETURN_IF_ERROR(ReadAllAt(fd.get(), buf.data(), buf.size(), 0, path));
  auto h = DecodeVaultHeader(buf);
  if (!h.ok()) return h.status().WithContext(path);
  if (h->volume != volume) {
    return Status::Corruption(path + ": holds volume " + h->volume.ToString());
  }
  if (h->region_size == 0 || h->region_size % 4096 != 0 || h->region_size > max_region_size) {
    return Status::Corruption(path + ": bad region size " + std::to_string(h->region_size));
  }
  if (static_cast<uint64_t>(st.st_size) != kVaultHeaderSize + h->region_size) {
    return Status::Corruption(path + ": file length " + std::to_string(st.st_size) +
                              " does not match header + region size " +
                              std::to_string(kVaultHeaderSize + h->region_size));
  }
  return h;
}

Status ReadVaultData(const std::string& dir, const VaultHeader& header, std::span<std::byte> out) {
  const std::string path = VaultPath(dir, header.volume);
  if (out.size() != header.region_size) {
    return Status::InvalidArgument(path + ": output is not the region size");
  }
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Status::FromErrno(errno, "open " + path);
  VNVRAM_RETURN_IF_ERROR(ReadAllAt(fd.get(), out.data(), out.size(), kVaultHeaderSize, path));
  if (VaultChecksum(out) != header.data_checksum) {
    return Status::Corruption(path + ": data checksum mismatch");
  }
  return Status::Ok();
}

}  // namespace vnvram::backend
