# parley — top-level convenience wrapper around Meson. See README.md.
#
#   make run     install missing Debian packages, build, start parleyd on 127.0.0.1:$(PORT)
#   make test    install, build, run every test; the integration tests on PostgreSQL; then everything
#                under ASan+UBSan; then a short fuzz run
#   make test-pg the integration tests on PostgreSQL only (a throw-away cluster on loopback)
#   make fuzz    run every libFuzzer harness for $(FUZZ_SECONDS) seconds each
#   make bench   baseline benchmarks (docs/benchmarks.md)
#   make install binaries, man pages, the systemd unit, the sample config (PREFIX=/usr/local,
#                SYSCONFDIR=/etc, DESTDIR= for a staging root); see docs/deploy.md
#   make run STORE=postgres://... BUS=nats://...   one node of a cluster instead of embedded SQLite

PORT         ?= 7600
DATA_DIR     ?= $(CURDIR)/data
PREFIX       ?= /usr/local
# the unit reads $(SYSCONFDIR)/parley/parleyd.conf; systemd's ConfigurationDirectory= is under /etc only
SYSCONFDIR   ?= /etc
# make run: empty = embedded SQLite in $(DATA_DIR), one node; postgres://... and nats://... = a cluster node
STORE        ?=
BUS          ?=
BUILD        ?= build
ASAN_BUILD   ?= build-asan
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 15
JOBS         ?= 2
# crypto_bench repetitions in `make bench`: as many as its run of record in docs/benchmarks.md
CRYPTO_REPS  ?= 5

# Debian 12 packages needed to build and test. Only the missing ones are installed.
DEB_BUILD = gcc make pkg-config meson ninja-build \
            libuv1-dev libhttp-parser-dev libprotobuf-c-dev protobuf-c-compiler \
            libsodium-dev libssl-dev libsqlite3-dev libqrencode-dev libpng-dev \
            libjansson-dev libcurl4-openssl-dev libpq-dev libnats-dev
# the tests start their own PostgreSQL clusters and nats-servers on loopback (tests/tools/); the
# servers are test dependencies only: `make run` (one node on SQLite) needs neither
DEB_TEST  = clang libclang-rt-14-dev openssl curl python3 libolm-dev chromium nats-server \
            postgresql-15 postgresql-contrib
DEB_BENCH = mosquitto nats-server libmosquitto-dev libnats-dev gnuplot-nox \
            postgresql-15 postgresql-contrib postgresql-client-15 iproute2

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps deps-test deps-bench build run test test-pg test-unit test-asan fuzz fuzz-smoke bench install clean distclean

all: build

# apt-get update only when something is missing (a fresh machine has empty package lists).
define apt_install
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi
endef

deps:
	$(call apt_install,$(DEB_BUILD))

deps-test: deps
	$(call apt_install,$(DEB_TEST))
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo "installing Debian packages: nodejs npm"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	@if [ -x tests/interop/setup.sh ]; then tests/interop/setup.sh; fi
	@if [ -x tests/idp/setup.sh ]; then tests/idp/setup.sh; fi
	@if [ -x tests/e2e/setup.sh ]; then tests/e2e/setup.sh; fi

$(BUILD)/build.ninja:
	meson setup $(BUILD) --prefix=$(PREFIX)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD) -j$(JOBS)

run: build
	@mkdir -p $(DATA_DIR)
	@echo "parleyd: http://127.0.0.1:$(PORT)/healthz  ws://127.0.0.1:$(PORT)/v1/websocket  (Ctrl-C stops)"
	exec $(BUILD)/server/parleyd --bind=127.0.0.1 --port=$(PORT) --data_dir=$(DATA_DIR) \
	  $(if $(STORE),'--store=$(STORE)') $(if $(BUS),'--bus=$(BUS)')

test: deps-test build
	@tests/run-all.sh "$(BUILD)" "$(ASAN_BUILD)" "$(FUZZ_BUILD)" "$(FUZZ_SMOKE_SECONDS)" "$(JOBS)"

test-pg: deps-test build
	tests/run-pg.sh "$(BUILD)" "$(JOBS)"

test-unit: build
	meson test -C $(BUILD) --print-errorlogs --num-processes $(JOBS)

test-asan: deps-test
	@[ -f $(ASAN_BUILD)/build.ninja ] || meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
	ninja -C $(ASAN_BUILD) -j$(JOBS)
	meson test -C $(ASAN_BUILD) --print-errorlogs --num-processes $(JOBS)

$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized

fuzz: deps-test $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD) -j$(JOBS) $$(ninja -C $(FUZZ_BUILD) -t targets all | grep -E '^tests/fuzz/fuzz-[^:/]+:' | cut -d: -f1 | sort -u)
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

deps-bench: deps-test
	$(call apt_install,$(DEB_BENCH))

# reconfigure so meson sees the peers' client libraries (libmosquitto, libnats) installed just now
bench: deps-bench build
	meson setup --reconfigure $(BUILD) >/dev/null && ninja -C $(BUILD) -j$(JOBS)
	tests/bench/run-baseline.sh $(BUILD)
	tests/interop/setup.sh
	$(BUILD)/tests/bench/crypto/crypto_bench --reps $(CRYPTO_REPS) --script tests/bench/crypto/libsignal_bench.js
	tests/bench/run-relay.sh $(BUILD)
	tests/bench/run-fanout.sh $(BUILD)
	PARLEYD=$(BUILD)/server/parleyd $(BUILD)/tests/bench/forward/forward_bench 1000 100
	tests/bench/run-auth.sh $(BUILD)
	tests/bench/run-auth-e2e.sh $(BUILD)
	tests/bench/run-scale.sh $(BUILD)

# The prefix and sysconfdir are set on the build directory each time (an earlier setup may have used
# others); the system user is created only when installing for real (no DESTDIR), as root.
install: build
	meson configure $(BUILD) -Dprefix=$(PREFIX) -Dsysconfdir=$(SYSCONFDIR)
	ninja -C $(BUILD) -j$(JOBS)
	$(if $(DESTDIR),,$(SUDO)) meson install -C $(BUILD) --no-rebuild $(if $(DESTDIR),--destdir $(abspath $(DESTDIR)))

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

distclean: clean
	rm -rf $(DATA_DIR) tests/interop/node_modules tests/bench/node_modules tests/idp/node_modules
