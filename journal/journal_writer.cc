// vnvram::JournalWriter (include/vnvram/journal_writer.hpp): a queue of
// waiting callers whose front is the leader. Lock order: queue_mu_ is never
// held while journal_mu_ is taken; the leader drops queue_mu_, does the
// journal work under journal_mu_, then takes queue_mu_ to hand results out.
#include "vnvram/journal_writer.hpp"

#include <algorithm>
#include <vector>

namespace vnvram {

JournalWriter::JournalWriter(Journal& journal, size_t max_group)
    : journal_(journal), max_group_(std::max<size_t>(max_group, 1)) {}

JournalWriter::~JournalWriter() = default;

Result<uint64_t> JournalWriter::write(std::span<const std::byte> payload) {
  const std::span<const std::byte> one[1] = {payload};
  return write_batch(one);
}

Result<uint64_t> JournalWriter::write_batch(std::span<const std::span<const std::byte>> payloads) {
  if (payloads.empty()) return Status::InvalidArgument("journal writer: an empty batch");
  Waiter self;
  self.payloads = payloads;
  std::unique_lock lock(queue_mu_);
  queue_.push_back(&self);
  self.cv.wait(lock, [&] { return self.done || queue_.front() == &self; });
  if (self.done) return std::move(self.result);

  // The leader: carry everyone queued so far (up to max_group_).
  const size_t n = std::min(queue_.size(), max_group_);
  std::vector<Waiter*> group(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(n));
  lock.unlock();
  {
    std::lock_guard journal_lock(journal_mu_);
    WriteGroup(group);
  }
  lock.lock();
  for (size_t i = 0; i < n; ++i) {
    Waiter* w = queue_.front();
    queue_.pop_front();
    if (w != &self) {
      w->done = true;
      w->cv.notify_one();
    }
  }
  if (!queue_.empty()) queue_.front()->cv.notify_one();  // the next leader
  return std::move(self.result);
}

void JournalWriter::WriteGroup(const std::vector<Waiter*>& group) {
  bool appended = false;
  for (Waiter* w : group) {
    w->result = journal_.append_batch(w->payloads);
    if (w->result.ok()) {
      appended = true;
      stats_.records += w->payloads.size();
    }
  }
  if (!appended) return;
  const Status committed = journal_.commit();
  ++stats_.commits;
  stats_.largest_group = std::max<uint64_t>(stats_.largest_group, group.size());
  if (committed.ok()) return;
  for (Waiter* w : group) {
    if (w->result.ok()) w->result = committed;
  }
}

Status JournalWriter::trim(uint64_t sequence) {
  std::lock_guard lock(journal_mu_);
  return journal_.trim(sequence);
}

Status JournalWriter::with_journal(const std::function<Status(Journal&)>& fn) {
  std::lock_guard lock(journal_mu_);
  return fn(journal_);
}

JournalWriter::Stats JournalWriter::stats() const {
  std::lock_guard lock(journal_mu_);
  return stats_;
}

}  // namespace vnvram
