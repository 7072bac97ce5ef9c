# A thin layer over CMake. `make run` and `make test` install missing Debian
# packages first, so both work on a fresh machine as root.

BUILD ?= build
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 20

.PHONY: all deps build test run bench bench-kv bench-raft bench-sim fuzz fuzz-build clean

all: build

deps:
	./scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

run: build
	./scripts/default-job.sh $(BUILD)

bench: build
	./bench/linearizability.sh $(BUILD)

bench-sim: build
	./scripts/install-deps.sh --bench
	./bench/raft-sim/run.sh $(BUILD)

# Needs redis-server and redis-benchmark, which only this target installs.
bench-kv: build
	./scripts/install-deps.sh --bench
	./bench/kv/run.sh $(BUILD)

# Needs etcd and redis-benchmark, which only this target installs.
bench-raft: build
	./scripts/install-deps.sh --bench
	./bench/raft/run.sh $(BUILD)

# libFuzzer builds need clang; they live in their own build folder.
fuzz-build: deps
	CC=clang cmake -S . -B build-fuzz -DFL_FUZZ=ON
	cmake --build build-fuzz -j $(JOBS) --target fuzz_history fuzz_resp fuzz_wal \
	  fuzz_frame

fuzz: fuzz-build
	./tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

clean:
	rm -rf build build-ci build-fuzz
