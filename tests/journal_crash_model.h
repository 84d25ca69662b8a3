// JournalCrashModel: what a crash test knows about a journal written by
// `vnvram-journal append --ack --auto-trim` processes that get killed: the
// sequence numbers a replay may end at and the heads it may start at,
// learnt from each writer's lines ("replayed ...", "ack S", "trim T",
// "trimmed T"). A writer killed while committing leaves its batch in
// flight either whole or absent; one killed while trimming leaves the old
// head or the new one. Each replay must match the model exactly, and then
// pins it down. Also parses vnvram-journal's "key=value" summary lines.
// Test support; not thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "common/parse.h"

namespace vnvram::testing {

// "word k1=v1 k2=v2 ..." -> {k1: v1, ...}; the leading word under "".
inline std::map<std::string, std::string> ParseSummary(const std::string& line) {
  std::map<std::string, std::string> out;
  std::istringstream in(line);
  std::string token;
  in >> out[""];
  while (in >> token) {
    const size_t eq = token.find('=');
    if (eq != std::string::npos) out[token.substr(0, eq)] = token.substr(eq + 1);
  }
  return out;
}

inline uint64_t SummaryU64(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? UINT64_MAX : ParseU64(it->second).value_or(UINT64_MAX);
}

class JournalCrashModel {
 public:
  // A freshly formatted journal.
  JournalCrashModel() : ends_{0}, heads_{1} {}

  // A new writer that commits `batch` records at a time.
  void WriterStarted(uint64_t batch) {
    batch_ = batch;
    replayed_ = false;
  }

  // One line of the writer (or of a replay): false with *why when it
  // contradicts the model or reports an error. Other lines are ignored.
  bool Line(const std::string& line, std::string* why) {
    if (line.rfind("replayed ", 0) == 0) return Replayed(line, why);
    if (line.rfind("ack ", 0) == 0) {
      auto s = ParseU64(line.substr(4));
      if (!s.ok() || !replayed_ || *s != end_ + batch_) {
        *why = "'" + line + "' does not follow " + std::to_string(end_) + " by a batch of " +
               std::to_string(batch_);
        return false;
      }
      end_ = *s;
      ends_ = {end_};
      ++acks_;
      return true;
    }
    if (line.rfind("trimmed ", 0) == 0 || line.rfind("trim ", 0) == 0) {
      const bool done = line[4] == 'm';
      auto t = ParseU64(line.substr(done ? 8 : 5));
      if (!t.ok() || !replayed_ || *t > end_) {
        *why = "'" + line + "' trims past the committed " + std::to_string(end_);
        return false;
      }
      if (done) {
        heads_ = {*t + 1};
      } else {
        heads_.insert(*t + 1);
      }
      return true;
    }
    if (line.rfind("error", 0) == 0 || line.rfind("mismatch", 0) == 0) {
      *why = "writer failed: " + line;
      return false;
    }
    return true;  // log lines and the like
  }

  // The writer died (SIGKILL): its batch in flight may be whole or absent.
  void WriterKilled() {
    if (replayed_) ends_ = {end_, end_ + batch_};
    replayed_ = false;
  }

  uint64_t acks() const { return acks_; }
  // Writers killed with a batch in flight whose replay had that batch, or
  // not; killed while trimming whose replay had the new head, or not.
  uint64_t in_flight_kept() const { return in_flight_kept_; }
  uint64_t in_flight_lost() const { return in_flight_lost_; }
  uint64_t trims_kept() const { return trims_kept_; }
  uint64_t trims_lost() const { return trims_lost_; }
  uint64_t replays() const { return replays_; }
  // The highest sequence a replay has returned.
  uint64_t max_end() const { return max_end_; }
  std::string Describe() const {
    std::string s = "ends {";
    for (uint64_t e : ends_) s.append(" ").append(std::to_string(e));
    s += " } heads {";
    for (uint64_t h : heads_) s.append(" ").append(std::to_string(h));
    return s + " }";
  }

 private:
  bool Replayed(const std::string& line, std::string* why) {
    const auto m = ParseSummary(line);
    const uint64_t records = SummaryU64(m, "records"), first = SummaryU64(m, "first"),
                   last = SummaryU64(m, "last"), head = SummaryU64(m, "head"),
                   next = SummaryU64(m, "next");
    std::string bad;
    if (m.count("verified") == 0 || m.at("verified") != "yes" || SummaryU64(m, "mismatches") != 0) {
      bad = "payloads not verified";
    } else if (next == UINT64_MAX || head == UINT64_MAX || next < head || records != next - head) {
      bad = "inconsistent counts";
    } else if (records != 0 && (first != head || last != next - 1)) {
      bad = "first/last are not head/next-1";
    } else if (ends_.count(next - 1) == 0) {
      bad = "ends at " + std::to_string(next - 1) + ", not at a possibly committed batch end";
    } else if (heads_.count(head) == 0) {
      bad = "starts at " + std::to_string(head) + ", not at a possible head";
    }
    if (!bad.empty()) {
      *why = "replay '" + line + "': " + bad + " (model: " + Describe() + ")";
      return false;
    }
    if (ends_.size() == 2) ++(next - 1 == *ends_.rbegin() ? in_flight_kept_ : in_flight_lost_);
    if (heads_.size() == 2) ++(head == *heads_.rbegin() ? trims_kept_ : trims_lost_);
    ends_ = {next - 1};
    heads_ = {head};
    end_ = next - 1;
    max_end_ = std::max(max_end_, end_);
    replayed_ = true;
    ++replays_;
    return true;
  }

  std::set<uint64_t> ends_;   // where the next replay may end (its next - 1)
  std::set<uint64_t> heads_;  // where it may start
  uint64_t batch_ = 1;
  uint64_t end_ = 0;       // the running writer's last committed sequence
  bool replayed_ = false;  // the running writer has replayed (and writes)
  uint64_t acks_ = 0;
  uint64_t replays_ = 0;
  uint64_t max_end_ = 0;
  uint64_t in_flight_kept_ = 0;
  uint64_t in_flight_lost_ = 0;
  uint64_t trims_kept_ = 0;
  uint64_t trims_lost_ = 0;
};

}  // namespace vnvram::testing
