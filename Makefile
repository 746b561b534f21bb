# daemoneye — top-level driver around CMake.  See README.md.
#
#   make deps     install the Debian packages the project needs (as root)
#   make          build everything into build/
#   make run      deps + build + run the agent on its embedded defaults
#   make test     deps + build + every test, then again under ASan+UBSan
#   make bench    the benchmarks (ratios against their anchors)
#   make install  install under $(PREFIX) (DESTDIR honoured)

PREFIX ?= /usr/local
DESTDIR ?=
JOBS ?= 2
BUILD ?= build
ASAN_BUILD ?= build-asan
CMAKE ?= cmake
CTEST ?= ctest

# Every Debian 12 package the build, the tests and the benchmarks use.
DEPS = cmake make gcc pkg-config \
       libsqlite3-dev sqlite3 libssl-dev libyaml-dev libjansson-dev \
       libcurl4-openssl-dev libcap-ng-dev libseccomp-dev \
       libprotobuf-c-dev protobuf-c-compiler libcmocka-dev zlib1g-dev \
       libsystemd-dev libmicrohttpd-dev prometheus zsh fish logrotate \
       procps valgrind clang libclang-rt-14-dev clang-tidy python3 b3sum openssl \
       rsyslog rsyslog-openssl python3-aiosmtpd libpcre2-dev python3-yaml \
       libbpf-dev bpftool nats-server libnats-dev libcap2-bin

.PHONY: all build deps run test test-normal test-asan valgrind bench install clean format

all: build

deps:
	@scripts/deps.sh $(DEPS)

$(BUILD)/Makefile:
	$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX)

build: $(BUILD)/Makefile
	$(CMAKE) --build $(BUILD) -j $(JOBS)

run: deps build
	$(BUILD)/bin/daemoneye-agent

test: deps
	$(MAKE) build
	$(MAKE) test-normal
	$(MAKE) test-asan

test-normal: build
	$(CTEST) --test-dir $(BUILD) --output-on-failure -j $(JOBS)

$(ASAN_BUILD)/Makefile:
	$(CMAKE) -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DDE_SANITIZE=ON

test-asan: $(ASAN_BUILD)/Makefile
	$(CMAKE) --build $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(CTEST) --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)

# Only the valgrind runs of the unit tests and fuzz replays (part of test-normal too).
valgrind: build
	$(CTEST) --test-dir $(BUILD) -L valgrind --output-on-failure -j $(JOBS)

bench: build
	bench/run.sh $(BUILD)/bin

install: build
	DESTDIR=$(DESTDIR) $(CMAKE) --install $(BUILD) --prefix $(PREFIX)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
