// The journal C API (include/vnvram/journal.h) over vnvram::Journal: every
// call but vnvram_journal_write() runs under the JournalWriter's lock
// (with_journal), so calls on one handle may come from any thread; status
// codes become negative errno values as in frontend/c_api.cc.
#include <cerrno>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "frontend/c_api_internal.h"
#include "vnvram/journal.h"
#include "vnvram/journal.hpp"
#include "vnvram/journal_writer.hpp"

struct vnvram_journal {
  std::unique_ptr<vnvram::Journal> journal;
  std::unique_ptr<vnvram::JournalWriter> writer;  // over *journal
};

namespace {

using vnvram::Status;
using vnvram::capi::Guard;
using vnvram::capi::Ret;

int NullJournal() {
  return vnvram::capi::NullHandle("journal");
}

std::span<const std::byte> Bytes(const void* p, size_t n) {
  return {static_cast<const std::byte*>(p), n};
}

}  // namespace

extern "C" {

int vnvram_journal_format(vnvram_dev* dev, uint64_t offset, uint64_t length, const uint8_t* uuid) {
  if (dev == nullptr) return vnvram::capi::NullHandle("device");
  return Guard([&] {
    vnvram::JournalUuid id{};
    if (uuid != nullptr) {
      std::memcpy(id.data(), uuid, id.size());
    } else {
      std::random_device rd;
      for (auto& b : id) b = static_cast<std::byte>(rd());
    }
    return Ret(vnvram::Journal::Format(*dev->device, offset, length, id));
  });
}

vnvram_journal* vnvram_journal_open(vnvram_dev* dev, uint64_t offset, uint64_t length,
                                    vnvram_journal_record_fn on_record, void* ctx) {
  if (dev == nullptr) {
    errno = -vnvram::capi::NullHandle("device");
    return nullptr;
  }
  vnvram_journal* out = nullptr;
  const int rc = Guard([&] {
    vnvram::JournalRecordFn fn;
    if (on_record != nullptr) {
      fn = [on_record, ctx](const vnvram::JournalRecord& r) {
        on_record(ctx, r.sequence, r.timestamp_ns, r.payload.data(), r.payload.size());
      };
    }
    auto j = vnvram::Journal::Open(*dev->device, offset, length, fn);
    if (!j.ok()) return Ret(j.status());
    auto handle = std::make_unique<vnvram_journal>();
    handle->journal = std::move(j).value();
    handle->writer = std::make_unique<vnvram::JournalWriter>(*handle->journal);
    out = handle.release();
    return Ret(Status::Ok());
  });
  if (rc != 0) errno = -rc;
  return out;
}

int vnvram_journal_append(vnvram_journal* j, const void* payload, size_t length,
                          uint64_t* sequence) {
  if (j == nullptr) return NullJournal();
  if (payload == nullptr && length != 0) return Ret(Status::InvalidArgument("NULL payload"));
  return Guard([&] {
    return Ret(j->writer->with_journal([&](vnvram::Journal& journal) {
      auto seq = journal.append(Bytes(payload, length));
      if (!seq.ok()) return seq.status();
      if (sequence != nullptr) *sequence = *seq;
      return Status::Ok();
    }));
  });
}

int vnvram_journal_append_batch(vnvram_journal* j, const void* const* payloads,
                                const size_t* lengths, size_t count, uint64_t* first_sequence) {
  if (j == nullptr) return NullJournal();
  if (count != 0 && (payloads == nullptr || lengths == nullptr)) {
    return Ret(Status::InvalidArgument("NULL payloads or lengths"));
  }
  return Guard([&] {
    std::vector<std::span<const std::byte>> spans(count);
    for (size_t i = 0; i < count; ++i) {
      if (payloads[i] == nullptr && lengths[i] != 0) {
        return Ret(Status::InvalidArgument("NULL payload " + std::to_string(i)));
      }
      spans[i] = Bytes(payloads[i], lengths[i]);
    }
    return Ret(j->writer->with_journal([&](vnvram::Journal& journal) {
      auto seq = journal.append_batch(spans);
      if (!seq.ok()) return seq.status();
      if (first_sequence != nullptr) *first_sequence = *seq;
      return Status::Ok();
    }));
  });
}

int vnvram_journal_commit(vnvram_journal* j) {
  if (j == nullptr) return NullJournal();
  return Guard([&] {
    return Ret(j->writer->with_journal([](vnvram::Journal& journal) { return journal.commit(); }));
  });
}

int vnvram_journal_write(vnvram_journal* j, const void* payload, size_t length,
                         uint64_t* sequence) {
  if (j == nullptr) return NullJournal();
  if (payload == nullptr && length != 0) return Ret(Status::InvalidArgument("NULL payload"));
  return Guard([&] {
    auto seq = j->writer->write(Bytes(payload, length));
    if (!seq.ok()) return Ret(seq.status());
    if (sequence != nullptr) *sequence = *seq;
    return Ret(Status::Ok());
  });
}

int vnvram_journal_trim(vnvram_journal* j, uint64_t sequence) {
  if (j == nullptr) return NullJournal();
  return Guard([&] { return Ret(j->writer->trim(sequence)); });
}

int vnvram_journal_info(vnvram_journal* j, struct vnvram_journal_info* out) {
  if (j == nullptr) return NullJournal();
  if (out == nullptr) return Ret(Status::InvalidArgument("NULL info"));
  return Guard([&] {
    const Status s = j->writer->with_journal([&](vnvram::Journal& journal) {
      out->head_sequence = journal.head_sequence();
      out->next_sequence = journal.next_sequence();
      out->committed_sequence = journal.committed_sequence();
      out->free_bytes = journal.free_bytes();
      out->log_size = journal.log_size();
      return Status::Ok();
    });
    out->commits = j->writer->stats().commits;
    return Ret(s);
  });
}

int vnvram_journal_replay_report(vnvram_journal* j, struct vnvram_journal_replay* out) {
  if (j == nullptr) return NullJournal();
  if (out == nullptr) return Ret(Status::InvalidArgument("NULL replay report"));
  return Guard([&] {
    return Ret(j->writer->with_journal([&](vnvram::Journal& journal) {
      const vnvram::JournalReplayReport r = journal.replay_report();
      out->records = r.records;
      out->uncommitted = r.uncommitted;
      out->damaged = r.damaged ? 1 : 0;
      out->lost_commits = r.lost_commits ? 1 : 0;
      out->valid_superblocks = r.valid_superblocks;
      return Status::Ok();
    }));
  });
}

int vnvram_journal_close(vnvram_journal* j) {
  if (j == nullptr) return 0;
  delete j;  // the writer first (member order), then the journal
  return Ret(Status::Ok());
}

}  // extern "C"
