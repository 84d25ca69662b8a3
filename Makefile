# vnvram — top-level entry point. CMake and ctest do the work underneath.
#
#   make            build everything into build/ (binaries in build/bin/)
#   make test       build, then run every test tier; ends with ctest's summary
#   make deps       install the Debian packages the project needs
#   make install    install into $(DESTDIR)$(PREFIX)
#   make deb        Debian packages with dpkg-buildpackage, in $(BUILD)/deb/
#   make deb-test   build them and install them into a fresh Debian 12 root
#   make format     clang-format the tree;  make lint: clang-format + clang-tidy checks
#   make lab        the Xen lab: real Xen under qemu (docs/lab.md)
#   make lab-bench  persist latency ratios on real Xen under qemu (docs/lab.md)
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

.PHONY: demo
demo: configure
	cmake --build $(BUILD) -j$(JOBS) --target vnvram-xenstored vnvramd nvram-tool vnvram-guest-demo vnvram-journal
	tools/demo.sh $(BUILD)/bin

# The Xen lab: boots real Xen + a PV dom0 under qemu (TCG) and runs the
# product's scenarios there (tests/lab/, docs/lab.md). Exit 77: cannot run here.
.PHONY: lab
lab: build
	tests/lab/run-lab.sh --build-dir $(BUILD)

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
