# vnvram — top-level entry point. CMake and ctest do the work underneath.
#
#   make            build everything into build/ (binaries in build/bin/)
#   make test       build, then run every test tier; ends with ctest's summary
#   make demo       the whole story on the sim platform (tools/demo.sh)
#   make tour       a guided tour of nvram-tool on the sim platform (tools/tour.sh)
#   make deps       install the Debian packages the project needs
#   make install    install into $(DESTDIR)$(PREFIX)
#   make deb        Debian packages with dpkg-buildpackage, in $(BUILD)/deb/
#   make deb-test   build them and install them into a fresh Debian 12 root
#   make format     clang-format the tree;  make lint: clang-format + clang-tidy checks
#   make lab        the Xen lab: real Xen under qemu (docs/lab.md)
#   make lab-demo   the demo's story on real Xen under qemu, narrated
#   make lab-bench  persist latency ratios on real Xen under qemu (docs/lab.md)
#   make fuzz       every libFuzzer target for FUZZ_SECONDS each (clang, build-fuzz/)
#   make test-asan  the test suite (Xen lab aside) under ASan + UBSan (build-asan/)
#   make test-tsan  the test suite (Xen lab aside) under TSan (build-tsan/)
#   make soak       the fault harness: SOAK_FAULTS (1000) faults, then the figures
#   make clean      remove build/

BUILD     ?= build
PREFIX    ?= /usr/local
DESTDIR   ?=
BUILD_TYPE ?= RelWithDebInfo
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?=

SOURCES = $(shell git ls-files '*.cc' '*.h' 2>/dev/null | grep -v '^include/xen/')

.PHONY: all build deps deps-if-missing configure test install clean format lint

all: build

deps:
	tools/install-deps.sh

deps-if-missing:
	@tools/install-deps.sh --check || tools/install-deps.sh

$(BUILD)/CMakeCache.txt: | deps-if-missing
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCMAKE_INSTALL_PREFIX=$(PREFIX)

configure: deps-if-missing $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j$(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

# Reconfigures with PREFIX first: the units and the default config name
# installed paths (ExecStart=, the vault directory) fixed at configure time.
install: configure
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	cmake --build $(BUILD) -j$(JOBS)
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)

format:
	clang-format -i $(SOURCES)

lint: configure
	clang-format --dry-run --Werror $(SOURCES)
	run-clang-tidy -quiet -p $(BUILD) -extra-arg=-Wno-unknown-warning-option $(filter %.cc,$(SOURCES))

clean:
	rm -rf $(BUILD)

# Debian packages (docs/packaging.md): the tracked tree exported into
# $(BUILD)/deb/src, dpkg-buildpackage -b there, the .debs in $(BUILD)/deb/.
.PHONY: deb deb-test
deb: deps-if-missing
	dist/make-deb.sh $(BUILD)/deb $(JOBS)

# Installs the packages into a fresh debootstrap root and runs them there
# (exit 77: cannot run here, e.g. not root or no network).
deb-test: deb
	dist/deb-install-test.sh --deb-dir $(BUILD)/deb --cache $(BUILD)/deb-root-cache

# The fault harness (docs/failure-model.md "The fault harness"): a sim
# cluster of real processes, SOAK_FAULTS faults at random moments, every
# acknowledged persist checked; prints the figures, fails on any loss,
# divergence, split brain, late failover or persist error. SOAK_SEED=N
# repeats a run's choices; SOAK_ARGS: more vnvram-fault-soak options.
SOAK_FAULTS ?= 1000
SOAK_SEED ?=
SOAK_ARGS ?=
.PHONY: soak
soak: configure
	cmake --build $(BUILD) -j$(JOBS) --target vnvram-fault-soak
	$(BUILD)/tests/vnvram-fault-soak --faults $(SOAK_FAULTS) $(if $(SOAK_SEED),--seed $(SOAK_SEED)) $(SOAK_ARGS)

.PHONY: demo
demo: configure
	cmake --build $(BUILD) -j$(JOBS) --target vnvram-xenstored vnvramd nvram-tool vnvram-guest-demo vnvram-journal
	tools/demo.sh $(BUILD)/bin

# A guided tour of nvram-tool on the sim platform (tools/tour.sh), as the
# shell transcript the README shows: create, attach, list, status,
# cluster status, monitor, failover, inspect, detach.
.PHONY: tour
tour: configure
	cmake --build $(BUILD) -j$(JOBS) --target vnvram-xenstored vnvramd nvram-tool vnvram-guest-demo
	tools/tour.sh $(BUILD)/bin

# The Xen lab: boots real Xen + a PV dom0 under qemu (TCG) and runs the
# product's scenarios there (tests/lab/, docs/lab.md). Exit 77: cannot run here.
.PHONY: lab
lab: build
	tests/lab/run-lab.sh --build-dir $(BUILD)

# The demo's story on real Xen (tools/lab-demo.sh): the whole lab (single
# VM, then two Xen hosts) told as it happens, with progress while it boots
# and a summary table. LAB_ARGS as for lab-bench, e.g. --cache DIR.
.PHONY: lab-demo
lab-demo: build
	tools/lab-demo.sh $(BUILD) $(LAB_ARGS)

# The lab's benchmark (issue 7, docs/lab.md "lab-bench"): in the same
# single-VM lab, QD1 persist in a PV guest against the event-channel round
# trip (and a replicated persist against ZeroMQ), as ratios. Table on
# stdout, JSON in $(BUILD)/bench-results/lab-bench.json. Fails only when it
# could not measure; exit 77: the lab cannot run here. LAB_ARGS: more
# run-lab.sh options, e.g. LAB_ARGS="--cache DIR" to share the Debian pieces.
LAB_ARGS ?=
.PHONY: lab-bench
lab-bench: build
	tests/lab/run-lab.sh --build-dir $(BUILD) --part bench $(LAB_ARGS)

# Benchmarks (bench/): figures beside their baselines, measured in one run.
#   make bench            vnvram-bench: every BRIEF §4 figure (with the
#                         failover benchmark, 20 trials), table + JSON + PNGs
#   make bench QUICK=1    the same with short runs and 5 failover trials
#   make bench-failover   the failover benchmark alone (TRIALS=N: N trials)
#   make bench-repl       vnvram-repl-bench: the engine alone, no ring
# Results: the table on stdout; JSON and plots in $(BUILD)/bench-results/.
BENCH_BINS = vnvram-xenstored vnvramd nvram-tool vnvram-guest-demo
FAILOVER_BENCH_ARGS = $(if $(filter-out 0,$(QUICK)),--quick) $(if $(TRIALS),--trials $(TRIALS))
VNVRAM_BENCH_ARGS = $(if $(filter-out 0,$(QUICK)),--quick) $(if $(TRIALS),--failover-trials $(TRIALS))
.PHONY: bench bench-failover bench-repl
bench: configure
	cmake --build $(BUILD) -j$(JOBS) --target vnvram-bench $(BENCH_BINS)
	$(BUILD)/bin/vnvram-bench --failover-script bench/failover-bench.sh $(VNVRAM_BENCH_ARGS)

bench-repl: configure
	cmake --build $(BUILD) -j$(JOBS) --target vnvram-repl-bench
	$(BUILD)/bin/vnvram-repl-bench

bench-failover: configure
	cmake --build $(BUILD) -j$(JOBS) --target $(BENCH_BINS)
	bench/failover-bench.sh $(BUILD)/bin $(FAILOVER_BENCH_ARGS)

# Fuzzing and sanitizers (issue 10, docs/fuzzing.md).
#   make fuzz                 configures a clang build in $(FUZZ_BUILD) with
#                             VNVRAM_FUZZ=ON, builds every fuzz target and runs
#                             each for FUZZ_SECONDS (default 60) over a copy
#                             of its seed corpus (tools/run-fuzz.sh): one line
#                             per target, fails when any target found a crash,
#                             leak, sanitizer report or violated invariant
#                             (the input is kept under $(FUZZ_BUILD)/fuzz-work/).
#   make test-asan            the whole tree with ASan + UBSan in $(ASAN_BUILD),
#                             then ctest without the Xen lab (label lab); any
#                             report fails its test.
#   make test-tsan            the same with TSan in $(TSAN_BUILD); third-party
#                             false positives only are suppressed, each with
#                             its reason, in tools/sanitizers/tsan.supp.
# CTEST_ARGS applies to both test targets (e.g. CTEST_ARGS="-R journal").
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_TARGETS = request_validator_fuzz ring_server_fuzz frontend_transport_fuzz \
               replication_message_fuzz cluster_config_fuzz backend_geometry_fuzz \
               journal_replay_fuzz xl_config_fuzz nbd_protocol_fuzz
SAN_CTEST = ctest --output-on-failure -j$(JOBS) -LE '^lab$$' -E '^(xen_lab|deb_install_test)$$' $(CTEST_ARGS)
export ASAN_OPTIONS ?= halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_init_order=1
export UBSAN_OPTIONS ?= halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS ?= halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tools/sanitizers/tsan.supp

.PHONY: fuzz test-asan test-tsan
fuzz: deps-if-missing
	@tools/install-deps.sh --check --fuzz || tools/install-deps.sh --fuzz
	CC=clang-14 CXX=clang++-14 cmake -S . -B $(FUZZ_BUILD) -DVNVRAM_FUZZ=ON \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(FUZZ_BUILD) -j$(JOBS) --target $(FUZZ_TARGETS)
	tools/run-fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

test-asan: deps-if-missing
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVNVRAM_SANITIZE=address
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && $(SAN_CTEST)

test-tsan: deps-if-missing
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVNVRAM_SANITIZE=thread
	cmake --build $(TSAN_BUILD) -j$(JOBS)
	cd $(TSAN_BUILD) && $(SAN_CTEST)
