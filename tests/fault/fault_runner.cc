#include "tests/fault/fault_runner.h"

#include <poll.h>

#include <algorithm>
#include <deque>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <sstream>

#include "common/clock.h"
#include "common/parse.h"
#include "tests/fault/record_ledger.h"
#include "xenstore-schema/schema.h"

namespace vnvram::testing {

std::string_view FaultKindName(FaultKind k) {
  switch (k) {
    case FaultKind::kKillPrimary: return "kill-primary";
    case FaultKind::kKillReplica: return "kill-replica";
    case FaultKind::kKillFrontend: return "kill-frontend";
    case FaultKind::kKillXenstored: return "kill-xenstored";
    case FaultKind::kRestartBackend: return "restart-backend";
    case FaultKind::kPartition: return "partition";
    case FaultKind::kSlowReplica: return "slow-replica";
    case FaultKind::kFlapStandby: return "flap-standby";
  }
  return "?";
}

namespace {

using std::chrono::milliseconds;
namespace mp = schema::mp;

constexpr size_t kMaxProblems = 20;
constexpr uint64_t kMaxWriterErrors = 50;

double Ms(Nanos d) {
  return static_cast<double>(d.count()) / 1e6;
}

class Runner {
 public:
  Runner(FaultCluster& c, const FaultRunOptions& o)
      : c_(c), o_(o), ledger_(c.volume_size()), rng_(o.seed) {}

  FaultReport Run() {
    Status s = Setup();
    for (int i = 0; s.ok() && i < o_.faults; ++i) {
      if (o_.stop_requested && o_.stop_requested()) {
        Problem("stopped early after " + std::to_string(i) + " faults");
        break;
      }
      s = OneFault(i);
    }
    if (s.ok()) s = Checkpoint();
    if (!s.ok()) {
      rep_.aborted = s;
      Problem("aborted: " + s.ToString() + "\n" + WriterTail() + c_.Logs());
    }
    if (writer_) {
      (void)writer_->Kill();
      writer_.reset();
    }
    rep_.acknowledged = ledger_.total_acked();
    rep_.passes = ledger_.pass();
    rep_.epochs = primaries_.size();
    for (const auto& [epoch, ids] : primaries_) {
      if (ids.size() > 1) {
        ++rep_.split_brain;
        std::string who;
        for (const std::string& id : ids) who += " " + id;
        Problem("epoch " + std::to_string(epoch) + " had primaries" + who);
      }
    }
    return std::move(rep_);
  }

 private:
  const Clock& clock_ = SystemClock::Instance();

  void Problem(const std::string& what) {
    if (rep_.problems.size() < kMaxProblems) rep_.problems.push_back(what);
  }
  void Progress(const std::string& what) {
    if (o_.progress) o_.progress(what);
  }
  std::string WriterTail() const {
    std::string s = "---- writer (last lines) ----\n";
    for (const std::string& l : writer_lines_) s += l + "\n";
    return s;
  }

  Status Setup() {
    if (Status s = c_.StartAll(); !s.ok()) return s;
    if (Status s = WaitUntil("a0 primary with every member in sync",
                             [&] { return !c_.HealthyPrimary().empty(); });
        !s.ok()) {
      return s;
    }
    if (Status s = c_.AttachPaths(); !s.ok()) return s;
    writing_ = true;
    return StartWriter();
  }

  Status StartWriter() {
    if (ledger_.pass_complete()) {
      if (Status s = ledger_.StartPass(); !s.ok()) return s;
    }
    const uint64_t from = ledger_.next();
    auto w = c_.SpawnWriter(from, ledger_.capacity() - from, ledger_.tag(), o_.pause_every);
    if (!w.ok()) return w.status();
    writer_ = std::move(w).value();
    if (!writer_log_.is_open()) writer_log_.open(c_.scratch() + "/writer.log", std::ios::app);
    writer_log_ << "==== harness: writer from record " << from << " (pid " << writer_->pid()
                << ") ====" << std::endl;
    paused_ = false;
    expect_exit_ = false;
    return Status::Ok();
  }

  // One line of the writer's output.
  Status OnLine(const std::string& line) {
    if (!writer_log_.is_open()) writer_log_.open(c_.scratch() + "/writer.log", std::ios::app);
    writer_log_ << line << "\n";
    writer_lines_.push_back(line);
    if (writer_lines_.size() > 40) writer_lines_.pop_front();
    if (line.rfind("persisted ", 0) == 0) {
      const size_t end = line.find(' ', 10);
      auto seq = ParseU64(line.substr(10, end - 10));
      if (!seq.ok()) return Status::Internal("writer said: " + line);
      if (Status s = ledger_.Acked(*seq); !s.ok()) return s;
      ++acks_seen_;
      // " us=<latency> ... t_us=<wall clock at the return>": the first
      // persist that began after the fault times the failover.
      const uint64_t us = Field(line, " us="), ret = Field(line, " t_us=");
      if (fault_wall_us_ != 0 && ret >= us && ret - us >= fault_wall_us_ && !first_after_fault_) {
        first_after_fault_ = ret - fault_wall_us_;
      }
      return Status::Ok();
    }
    if (line.rfind("paused ", 0) == 0) {
      if (hold_) {
        paused_ = true;
        return Status::Ok();
      }
      // A writer that exited meanwhile (a kill, say) cannot take it; its
      // end of output is where Pump judges the exit.
      (void)writer_->WriteStdin("go\n");
      return Status::Ok();
    }
    if (line.rfind("error ", 0) == 0 && !expect_exit_) {
      ++rep_.writer_errors;
      Problem("the guest's writer failed: " + line + "\n" + c_.Logs());
    }
    return Status::Ok();
  }

  // Reads the writer's output for up to `wait`; restarts it when it has
  // exited (the end of a pass, a kill, an error).
  Status Pump(milliseconds wait) {
    if (!writing_) {
      const int ignored = ::poll(nullptr, 0, static_cast<int>(wait.count()));
      (void)ignored;
      return Status::Ok();
    }
    if (!writer_) return StartWriter();
    milliseconds next = wait;
    for (;;) {
      auto line = writer_->NextLine(next);
      if (line.ok()) {
        if (Status s = OnLine(*line); !s.ok()) return s;
        next = milliseconds(0);
        continue;
      }
      if (line.status().code() == Code::kTimeout) return Status::Ok();
      // EOF: the writer exited.
      auto rc = writer_->Wait(milliseconds(10000));
      const bool clean = rc.ok() && *rc == 0 && ledger_.pass_complete();
      if (!clean && !expect_exit_) {
        ++rep_.writer_errors;
        Problem("the guest's writer exited (" +
                (rc.ok() ? std::to_string(*rc) : rc.status().ToString()) + ")\n" + WriterTail() +
                c_.Logs());
      }
      writer_.reset();
      // A writer that keeps failing (every backend gone, say) is not
      // restarted forever.
      if (rep_.writer_errors > kMaxWriterErrors) {
        return Status::Unavailable("the guest's writer failed " +
                                   std::to_string(rep_.writer_errors) + " times");
      }
      if (o_.stop_requested && o_.stop_requested()) {
        writing_ = false;
        return Status::Aborted("stopped");
      }
      return StartWriter();
    }
  }

  static uint64_t Field(const std::string& line, std::string_view key) {
    const size_t at = line.find(key);
    if (at == std::string::npos) return 0;
    const size_t from = at + key.size();
    auto v = ParseU64(line.substr(from, line.find(' ', from) - from));
    return v.ok() ? *v : 0;
  }

  static uint64_t WallUs() {
    return static_cast<uint64_t>(SystemClock::Instance().WallNow().count() / 1000);
  }

  // Every member that says it is primary, by epoch (sampled).
  void Observe() {
    const Nanos now = clock_.Now();
    if (now - last_observe_ < milliseconds(20)) return;
    last_observe_ = now;
    for (const auto& [id, epoch] : c_.Primaries()) primaries_[epoch].insert(id);
  }

  Status WaitUntil(const std::string& what, const std::function<bool()>& pred,
                   milliseconds deadline = milliseconds(0)) {
    const Deadline d(clock_, deadline.count() == 0 ? o_.recovery_deadline : deadline);
    for (;;) {
      Observe();
      if (pred()) return Status::Ok();
      if (d.Expired()) return Status::Timeout("waiting for " + what);
      if (Status s = Pump(milliseconds(20)); !s.ok()) return s;
    }
  }

  Status WaitAcks(uint64_t n, const std::string& what, milliseconds deadline = milliseconds(0)) {
    const uint64_t target = acks_seen_ + n;
    return WaitUntil(
        what, [&] { return acks_seen_ >= target; }, deadline);
  }

  std::string RandomOf(const std::vector<std::string>& ids) {
    return ids[std::uniform_int_distribution<size_t>(0, ids.size() - 1)(rng_)];
  }
  std::vector<std::string> Others(const std::string& id) {
    std::vector<std::string> v;
    for (const std::string& m : c_.ids()) {
      if (m != id) v.push_back(m);
    }
    return v;
  }

  // After a kill or cut of the primary: the failover time as the guest
  // sees it, from the fault to the return of the first persist the guest
  // began after it (the writer's own clock readings, so lines still in
  // the pipe at the fault do not count).
  Status TimeFailover(FaultKind kind) {
    if (Status s = WaitUntil("the guest's persists after the failover",
                             [&] { return first_after_fault_.has_value(); });
        !s.ok()) {
      return s;
    }
    const double ms = static_cast<double>(*first_after_fault_) / 1000.0;
    rep_.failover_ms[std::string(FaultKindName(kind))].push_back(ms);
    if (ms > static_cast<double>(o_.failover_deadline.count())) {
      ++rep_.over_deadline;
      Problem(std::string(FaultKindName(kind)) + ": the guest waited " + std::to_string(ms) +
              " ms (deadline " + std::to_string(o_.failover_deadline.count()) + " ms)");
    }
    return Status::Ok();
  }

  Status Inject(FaultKind kind, const std::string& primary, std::string* what) {
    const Nanos t0 = clock_.Now();
    fault_wall_us_ = WallUs();
    first_after_fault_.reset();
    switch (kind) {
      case FaultKind::kKillPrimary: {
        *what = "kill -9 " + primary;
        if (Status s = c_.Kill(primary); !s.ok()) return s;
        if (Status s = TimeFailover(kind); !s.ok()) return s;
        return c_.Start(primary);
      }
      case FaultKind::kKillReplica: {
        const std::string v = RandomOf(Others(primary));
        *what = "kill -9 " + v;
        if (Status s = c_.Kill(v); !s.ok()) return s;
        if (Status s = WaitAcks(1 + rng_() % 200, "persists without " + v); !s.ok()) return s;
        return c_.Start(v);
      }
      case FaultKind::kKillFrontend: {
        *what = "kill -9 the guest's writer";
        expect_exit_ = true;
        (void)writer_->Kill();
        // Pump reads what it printed, reaps it and starts the next one
        // from the first record not acknowledged.
        const pid_t old = writer_->pid();
        if (Status s = WaitUntil("a new writer", [&] { return writer_ && writer_->pid() != old; });
            !s.ok()) {
          return s;
        }
        return WaitAcks(2, "the new writer's persists");
      }
      case FaultKind::kKillXenstored: {
        *what = "kill -9 host W's xenstored";
        if (Status s = c_.KillXenstoredW(); !s.ok()) return s;
        // vnvramd w loses its xenstore and exits (its host is gone).
        Status gone = WaitUntil(
            "vnvramd w to exit", [&] { return !c_.Running("w"); }, milliseconds(10000));
        if (!gone.ok()) {
          Problem("vnvramd w did not exit when its xenstored died");
        }
        (void)c_.Kill("w");
        if (Status s = WaitAcks(1 + rng_() % 100, "persists without w"); !s.ok()) return s;
        if (Status s = c_.RestartXenstoredW(); !s.ok()) return s;
        return c_.Start("w");
      }
      case FaultKind::kRestartBackend: {
        const std::string v = RandomOf(c_.ids());
        *what = "restart (SIGTERM) " + v;
        if (Status s = c_.Stop(v); !s.ok()) return s;
        if (v == primary) {
          if (Status s = TimeFailover(kind); !s.ok()) return s;
        }
        return c_.Start(v);
      }
      case FaultKind::kPartition: {
        const std::string v = RandomOf(c_.ids());
        const auto hold = milliseconds(std::uniform_int_distribution<int>(1000, 2500)(rng_));
        *what = "partition " + v + " for " + std::to_string(hold.count()) + " ms";
        c_.Partition(v, true);
        if (v == primary) {
          if (Status s = TimeFailover(kind); !s.ok()) return s;
        }
        (void)WaitUntil(
            "the partition's end", [&] { return clock_.Now() - t0 >= hold; }, hold * 2);
        c_.Partition(v, false);
        return Status::Ok();
      }
      case FaultKind::kSlowReplica: {
        const std::string v = RandomOf(Others(primary));
        const auto delay = milliseconds(std::uniform_int_distribution<int>(5, 40)(rng_));
        *what = "slow " + v + " by " + std::to_string(delay.count()) + " ms";
        c_.Slow(v, delay);
        Status s = WaitAcks(50, "persists past the slow member");
        c_.Slow(v, milliseconds(0));
        return s;
      }
      case FaultKind::kFlapStandby: {
        std::string standby;
        for (const std::string& id : c_.ids()) {
          if (id != primary && c_.member(id).path >= 0) standby = id;
        }
        if (standby.empty()) return Status::FailedPrecondition("no standby path");
        // The primary dies as soon as the restarted standby is back in
        // sync, while its guest path may still be reconnecting. (Killing
        // it earlier, before the resync ends, is a second failure: the
        // restarted member's copy does not vouch, so the volume waits for
        // the old primary; docs/failure-model.md.)
        *what = "kill -9 " + standby + ", restart, kill -9 " + primary + " once in sync";
        if (Status s = c_.Kill(standby); !s.ok()) return s;
        if (Status s = WaitAcks(1 + rng_() % 200, "persists without " + standby); !s.ok()) {
          return s;
        }
        if (Status s = c_.Start(standby); !s.ok()) return s;
        if (Status s = WaitUntil(standby + " back in sync",
                                 [&] { return c_.HealthyPrimary() == primary; });
            !s.ok()) {
          return s;
        }
        fault_wall_us_ = WallUs();
        first_after_fault_.reset();
        if (Status s = c_.Kill(primary); !s.ok()) return s;
        if (Status s = TimeFailover(kind); !s.ok()) return s;
        return c_.Start(primary);
      }
    }
    return Status::Internal("unknown fault");
  }

  Status OneFault(int i) {
    // A random moment: after 1..300 more acknowledgements.
    if (Status s = WaitAcks(1 + rng_() % 300, "the writer's progress"); !s.ok()) return s;
    if (order_.empty()) {
      for (int k = 0; k < kFaultKinds; ++k) order_.push_back(static_cast<FaultKind>(k));
      std::shuffle(order_.begin(), order_.end(), rng_);
    }
    const FaultKind kind = order_.back();
    order_.pop_back();
    const std::string primary = c_.HealthyPrimary();
    if (primary.empty()) return Status::Unavailable("no healthy primary before the fault");
    std::string what;
    const Nanos t0 = clock_.Now();
    writer_log_ << "==== harness: fault " << (i + 1) << " (" << FaultKindName(kind) << ") at wall "
                << WallUs() << " us, primary " << primary << " ====" << std::endl;
    if (Status s = Inject(kind, primary, &what); !s.ok()) {
      return s.WithContext(std::string(FaultKindName(kind)) + " (" + what + ")");
    }
    ++rep_.faults[std::string(FaultKindName(kind))];
    if (Status s = Recover(); !s.ok()) return s.WithContext("after " + what);
    const Nanos recovered = clock_.Now();
    if (Status s = Checkpoint(); !s.ok()) return s.WithContext("after " + what);
    std::ostringstream line;
    line << "fault " << (i + 1) << "/" << o_.faults << ": " << what << "; recovered in "
         << static_cast<int64_t>(Ms(recovered - t0)) << " ms, primary " << c_.HealthyPrimary()
         << ", " << ledger_.total_acked() << " acknowledged, lost " << rep_.lost;
    Progress(line.str());
    return Status::Ok();
  }

  // Recovery: every member running, a primary with all in sync, the guest
  // with both paths (optimal) and persisting.
  Status Recover() {
    if (Status s = WaitUntil("every member back in sync with both guest paths ready",
                             [&] {
                               for (const std::string& id : c_.ids()) {
                                 if (!c_.Running(id)) return false;
                               }
                               return !c_.HealthyPrimary().empty() &&
                                      c_.Mp(mp::kStatus) == mp::kStatusOptimal;
                             });
        !s.ok()) {
      return s;
    }
    return WaitAcks(1, "the guest's persists after recovery");
  }

  // At a quiescent point (the writer paused after a persist, nothing
  // stored since) every member's copy holds every acknowledged record and
  // all copies are the same bytes at the same (epoch, sequence).
  Status Checkpoint() {
    hold_ = true;
    Status s = WaitUntil("the writer's next quiescent point", [&] { return paused_; });
    if (s.ok())
      s = WaitUntil("a primary with every member in sync",
                    [&] { return !c_.HealthyPrimary().empty(); });
    if (s.ok()) s = CheckCopies();
    hold_ = false;
    paused_ = false;
    if (writer_) (void)writer_->WriteStdin("go\n");
    ++rep_.checkpoints;
    return s;
  }

  Status CheckCopies() {
    const std::string primary = c_.HealthyPrimary();
    // In-sync replicas apply before the primary acknowledges; metadata
    // (the sequence a copy reports) may trail by a heartbeat, so a
    // difference must persist for a while to count.
    const Deadline d(clock_, milliseconds(5000));
    std::string why;
    for (;;) {
      auto want = c_.ReadCopy(primary);
      if (!want.ok()) return want.status();
      std::set<uint64_t> bad;
      for (const auto& f : ledger_.Check(want->bytes)) {
        if (bad.insert(f.seq).second && bad.size() <= 3) {
          Problem(primary + " lacks acknowledged record " + std::to_string(f.seq) + ": " + f.why);
        }
      }
      bool same = true;
      for (const std::string& id : c_.ids()) {
        if (id == primary) continue;
        auto got = c_.ReadCopy(id);
        if (!got.ok()) return got.status();
        for (const auto& f : ledger_.Check(got->bytes)) {
          if (bad.insert(f.seq).second && bad.size() <= 3) {
            Problem(id + " lacks acknowledged record " + std::to_string(f.seq) + ": " + f.why);
          }
        }
        if (got->crcs != want->crcs || got->epoch != want->epoch ||
            got->sequence != want->sequence) {
          same = false;
          why = id + " differs from " + primary + " (epoch " + std::to_string(got->epoch) + " vs " +
                std::to_string(want->epoch) + ", sequence " + std::to_string(got->sequence) +
                " vs " + std::to_string(want->sequence) + ")";
        }
      }
      lost_.insert(bad.begin(), bad.end());
      rep_.lost = lost_.size();
      if (!bad.empty()) return Status::Ok();  // counted; the run goes on
      if (same) return Status::Ok();
      if (d.Expired()) {
        ++rep_.divergent;
        Problem("divergent copies at a quiescent point: " + why);
        return Status::Ok();
      }
      if (Status s = Pump(milliseconds(50)); !s.ok()) return s;
    }
  }

  FaultCluster& c_;
  const FaultRunOptions& o_;
  RecordLedger ledger_;
  std::mt19937_64 rng_;
  FaultReport rep_;
  std::unique_ptr<ChildProcess> writer_;
  std::deque<std::string> writer_lines_;
  std::ofstream writer_log_;  // every line of every writer, in the scratch directory
  bool writing_ = false;      // the guest's paths are attached: keep a writer running
  bool hold_ = false;
  bool paused_ = false;
  bool expect_exit_ = false;
  uint64_t acks_seen_ = 0;
  uint64_t fault_wall_us_ = 0;                 // wall clock of the last fault
  std::optional<uint64_t> first_after_fault_;  // us from it to a fresh persist's return
  Nanos last_observe_{0};
  std::vector<FaultKind> order_;
  std::map<uint64_t, std::set<std::string>> primaries_;
  std::set<uint64_t> lost_;
};

std::string Stats(std::vector<double> v) {
  if (v.empty()) return "-";
  std::sort(v.begin(), v.end());
  std::ostringstream s;
  s.precision(1);
  s << std::fixed << "n=" << v.size() << " min=" << v.front() << " p50=" << v[v.size() / 2]
    << " p99=" << v[std::min(v.size() - 1, v.size() * 99 / 100)] << " max=" << v.back() << " ms";
  return s.str();
}

}  // namespace

std::string FaultReport::Summary() const {
  std::ostringstream s;
  int total = 0;
  for (const auto& [k, n] : faults) total += n;
  s << "faults injected: " << total << "\n";
  for (const auto& [k, n] : faults) s << "  " << k << ": " << n << "\n";
  s << "acknowledged persists: " << acknowledged << " (" << passes
    << " complete passes over the region)\n";
  s << "quiescent checks of every copy: " << checkpoints << "\n";
  s << "lost acknowledged persists: " << lost << "\n";
  s << "divergent copies: " << divergent << "\n";
  s << "epochs with a primary: " << epochs << ", with two or more: " << split_brain << "\n";
  s << "persist errors seen by the guest: " << writer_errors << "\n";
  s << "failovers over the deadline: " << over_deadline << "\n";
  for (const auto& [k, v] : failover_ms) s << "failover time (" << k << "): " << Stats(v) << "\n";
  s << "result: " << (clean() ? "CLEAN" : "PROBLEMS") << "\n";
  if (!aborted.ok()) s << "aborted: " << aborted.ToString() << "\n";
  for (const std::string& p : problems) s << "problem: " << p << "\n";
  return s.str();
}

FaultReport RunFaults(FaultCluster& cluster, const FaultRunOptions& options) {
  return Runner(cluster, options).Run();
}

}  // namespace vnvram::testing
