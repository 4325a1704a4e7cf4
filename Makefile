# Front door: `make demo` and `make test` work on a fresh Debian machine
# as root (they install what they miss).  The build itself is CMake's.
BUILD      ?= build
BENCH_BUILD ?= build-bench
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 15
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
# An extra folder of conformance cases (DIR/cases or DIR) tested beside
# the project's own copy in tests/conformance: make test CONFORMANCE=DIR.
CONFORMANCE ?= $(wildcard ../shared/conformance)
CONFORMANCE_FLAG = -DCONFORMANCE_DIR=$(if $(CONFORMANCE),$(abspath $(CONFORMANCE)),)

.PHONY: all deps build build-quiet test test-unit test-asan test-tsan test-fuzz fuzz fuzz-build conformance demo bench clean

all: build

deps:
	@sh scripts/install-deps.sh

CONFIGURE = cmake -S . -B $(BUILD) -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CONFORMANCE_FLAG) >/dev/null

build: deps
	@$(CONFIGURE)
	@cmake --build $(BUILD) -j $(JOBS)

# The same build for the demo: its output goes to $(BUILD)/build.log and
# is shown only when the build fails, so that the demo's is all one sees.
build-quiet: deps
	@$(CONFIGURE)
	@cmake --build $(BUILD) -j $(JOBS) >$(BUILD)/build.log 2>&1 || { cat $(BUILD)/build.log; exit 1; }

# Everything: unit tests, scenarios and the conformance suite with gcc,
# the same again under ASan+UBSan with clang, and the threads tests (the
# engine's, the client library's) under TSan.
test: test-unit test-asan test-tsan test-fuzz
	@echo "make test: all suites passed"

# the D-Bus tests run a private dbus-broker from BUILD/dbus-broker-root;
# scripts/ctest-strict.sh fails the run when any test or case was skipped
test-unit: build
	@sh scripts/dbus-broker-root.sh $(BUILD) >/dev/null
	sh scripts/ctest-strict.sh $(BUILD) --output-on-failure -j $(JOBS)

test-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_C_COMPILER=clang -DIMP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug $(CONFORMANCE_FLAG) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@sh scripts/dbus-broker-root.sh $(ASAN_BUILD) >/dev/null
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 sh scripts/ctest-strict.sh $(ASAN_BUILD) --output-on-failure -j $(JOBS)

test-tsan: deps
	@cmake -S . -B $(TSAN_BUILD) -DCMAKE_C_COMPILER=clang -DIMP_TSAN=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(TSAN_BUILD) -j $(JOBS) --target test-threads test-propagation test-client importanced
	TSAN_OPTIONS=halt_on_error=1 sh scripts/ctest-strict.sh $(TSAN_BUILD) --output-on-failure -R 'unit-(threads|propagation)|e2e-client'

# Fuzzing.  `make test` runs each target a fixed number of executions
# from a fixed seed (the same inputs every time, so CI is reproducible);
# `make fuzz FUZZ_SECONDS=600` runs each for that long with a fresh seed.
# New inputs go to a scratch folder, never into the repository.
FUZZ_RUNS ?= 30000
fuzz-build: deps
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DIMP_FUZZ=ON -DIMP_SANITIZE=ON -DIMP_TESTS=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz-scenario fuzz-api fuzz-broker fuzz-dbus fuzz-wire fuzz-client
	@rm -rf $(FUZZ_BUILD)/corpus && mkdir -p $(FUZZ_BUILD)/corpus/scenario $(FUZZ_BUILD)/corpus/api $(FUZZ_BUILD)/corpus/broker \
		$(FUZZ_BUILD)/corpus/dbus $(FUZZ_BUILD)/corpus/wire $(FUZZ_BUILD)/corpus/client

FUZZ_SCENARIO_ARGS = $(FUZZ_BUILD)/corpus/scenario fuzz/corpus/scenario \
	tests/conformance/cases -dict=fuzz/scenario.dict -max_len=4096
FUZZ_API_ARGS = $(FUZZ_BUILD)/corpus/api fuzz/corpus/api
FUZZ_BROKER_ARGS = $(FUZZ_BUILD)/corpus/broker fuzz/corpus/broker -max_len=8192
FUZZ_DBUS_ARGS = $(FUZZ_BUILD)/corpus/dbus fuzz/corpus/dbus -max_len=2048
FUZZ_WIRE_ARGS = $(FUZZ_BUILD)/corpus/wire fuzz/corpus/wire -max_len=8192
FUZZ_CLIENT_ARGS = $(FUZZ_BUILD)/corpus/client fuzz/corpus/client -max_len=2048

test-fuzz: fuzz-build
	sh fuzz/run.sh $(FUZZ_BUILD)/fuzz-scenario $(FUZZ_SCENARIO_ARGS) -seed=1 -runs=$(FUZZ_RUNS)
	sh fuzz/run.sh $(FUZZ_BUILD)/fuzz-api $(FUZZ_API_ARGS) -seed=1 -runs=$(FUZZ_RUNS)
	sh fuzz/run.sh $(FUZZ_BUILD)/fuzz-broker $(FUZZ_BROKER_ARGS) -seed=1 -runs=$(FUZZ_RUNS)
	sh fuzz/run.sh $(FUZZ_BUILD)/fuzz-dbus $(FUZZ_DBUS_ARGS) -seed=1 -runs=$(FUZZ_RUNS)
	sh fuzz/run.sh $(FUZZ_BUILD)/fuzz-wire $(FUZZ_WIRE_ARGS) -seed=1 -runs=$(FUZZ_RUNS)
	sh fuzz/run.sh $(FUZZ_BUILD)/fuzz-client $(FUZZ_CLIENT_ARGS) -seed=1 -runs=$(FUZZ_RUNS)

fuzz: fuzz-build
	sh fuzz/run.sh $(FUZZ_BUILD)/fuzz-scenario $(FUZZ_SCENARIO_ARGS) -max_total_time=$(FUZZ_SECONDS)
	sh fuzz/run.sh $(FUZZ_BUILD)/fuzz-api $(FUZZ_API_ARGS) -max_total_time=$(FUZZ_SECONDS)
	sh fuzz/run.sh $(FUZZ_BUILD)/fuzz-broker $(FUZZ_BROKER_ARGS) -max_total_time=$(FUZZ_SECONDS)
	sh fuzz/run.sh $(FUZZ_BUILD)/fuzz-dbus $(FUZZ_DBUS_ARGS) -max_total_time=$(FUZZ_SECONDS)
	sh fuzz/run.sh $(FUZZ_BUILD)/fuzz-wire $(FUZZ_WIRE_ARGS) -max_total_time=$(FUZZ_SECONDS)
	sh fuzz/run.sh $(FUZZ_BUILD)/fuzz-client $(FUZZ_CLIENT_ARGS) -max_total_time=$(FUZZ_SECONDS)

# Benchmarks from an optimized (-O3 -flto) build; writes docs/bench.md
# (SECTIONS="broker dbus" runs only those: scripts/bench.sh).
bench: deps
	@sh scripts/install-deps.sh gnuplot-nox dbus-daemon valgrind time
	@cmake -S . -B $(BENCH_BUILD) -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_INTERPROCEDURAL_OPTIMIZATION=ON >/dev/null
	@cmake --build $(BENCH_BUILD) -j $(JOBS) --target bench-engine bench-broker bench-inversion bench-dbus bench-unix bench-scenario importanced imp gen-scenario
	sh scripts/bench.sh $(BENCH_BUILD) $(SECTIONS)

conformance: build
	sh tests/run-scenarios.sh $(BUILD)/imp tests/conformance/cases
	$(if $(CONFORMANCE),sh tests/run-scenarios.sh $(BUILD)/imp $(if $(wildcard $(CONFORMANCE)/cases),$(CONFORMANCE)/cases,$(CONFORMANCE)))

# The main job: importanced boosting a niced background server while a
# foreground client's requests wait for it (scripts/demo.sh), then the
# simulator on a commented scenario with its donation graph drawn.
demo: build-quiet
	@sh scripts/demo.sh $(BUILD)
	@mkdir -p docs/demo
	@echo "== imp run examples/foreground-chain.imp"
	@$(BUILD)/imp run examples/foreground-chain.imp
	@for line in 18 31 38; do \
		$(BUILD)/imp graph --until $$line examples/foreground-chain.imp > docs/demo/chain-$$line.dot; \
		dot -Tpng docs/demo/chain-$$line.dot -o docs/demo/chain-$$line.png; \
	done
	@echo "== graphs: docs/demo/chain-18.png (daemon boosted), chain-31.png (chain boosted), chain-38.png (all dropped)"

# Debian packages (debian/): libimportance0, libimportance-client0,
# libimportance-dev and importanced, built with dpkg-buildpackage from a
# copy of the sources and written to $(DEB_BUILD); lintian must find no
# error and no warning (scripts/build-deb.sh).
DEB_BUILD ?= $(BUILD)/deb
.PHONY: deb
deb: deps
	JOBS=$(JOBS) sh scripts/build-deb.sh $(DEB_BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD) $(BENCH_BUILD) docs/demo
