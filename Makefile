# scangw — the two commands a newcomer needs:
#   make demo   the real daemon with simulated scanners and an embedded broker
#   make test   installs what the tests need (Mosquitto), then vet + race tests
#   make package  dist/scangw_<version>_{amd64,arm64,armhf}.deb (systemd/nfpm.yaml)
#
# The demo (embedded broker) and the buffer bench are built in only with
# their tags, demo and bench: bin/scangw, the daemon a site runs, has
# neither.

GO      ?= go
SUDO    := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT  := $(shell git rev-parse --short=12 HEAD 2>/dev/null)$(shell [ -n "$$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && echo -dirty)
COMMIT_TIME := $(shell TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null)
STAMPS  := -X main.buildCommit=$(COMMIT) -X main.buildCommitTime=$(COMMIT_TIME)
LDFLAGS := -s -w -X main.buildVersion=$(VERSION) $(STAMPS)

TOOLS   := demo,bench

.PHONY: all build bench-tool demo test test-arm deps bench fuzz cross package clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/scangw ./cmd/scangw

# scangw with the buffer bench, for measuring a site's disk (README, "Small
# on a small box"); cross-build it like `cross` for a Pi.
bench-tool:
	$(GO) build -trimpath -tags bench -ldflags '$(LDFLAGS)' -o bin/scangw-bench ./cmd/scangw

demo:
	$(GO) run -tags demo ./cmd/scangw demo

# Tests use a real Mosquitto (started by the harness on a free port), real
# ptys, strace, promtool (alert rules), headless Chromium (status page),
# systemd-analyze (the unit) and the arm cross compilers and qemu-user (the
# packages); install them where they are missing.
deps:
	@missing=""; \
	{ command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ]; } || missing="$$missing mosquitto"; \
	command -v mosquitto_pub >/dev/null || missing="$$missing mosquitto-clients"; \
	{ command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ]; } || missing="$$missing nats-server"; \
	{ [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || command -v rabbitmq-server >/dev/null; } || missing="$$missing rabbitmq-server"; \
	command -v strace >/dev/null || missing="$$missing strace"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	command -v qemu-aarch64-static >/dev/null || missing="$$missing qemu-user-static"; \
	command -v aarch64-linux-gnu-gcc >/dev/null || missing="$$missing gcc-aarch64-linux-gnu"; \
	command -v arm-linux-gnueabihf-gcc >/dev/null || missing="$$missing gcc-arm-linux-gnueabihf"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# The package test (systemd/package_test.go) checks the .debs `package`
# built instead of building them again.
test: export SCANGW_PACKAGES = $(abspath $(DIST))
test: deps package
	@echo "packages built:"; ls -l $(DIST)/scangw_*.deb
	systemd-analyze security --offline=yes --no-pager systemd/scangw.service | tail -n 1
	$(GO) vet ./...
	$(GO) vet -tags $(TOOLS) ./...
	CGO_ENABLED=0 $(GO) build ./...
	# The daemon without the tools says how to get them.
	$(GO) test -count=1 -run 'NotBuilt' ./cmd/scangw/
	CGO_ENABLED=0 $(GO) test -count=1 ./device/hidscan/
	# 32-bit: on an amd64 host the buffer runs natively as 386 and catches
	# what would break armv7 (make test-arm runs it on arm under qemu).
	if [ "$$($(GO) env GOHOSTARCH)" = amd64 ]; then GOARCH=386 CGO_ENABLED=0 $(GO) test -count=1 -timeout 20m ./buffer/; fi
	$(GO) test -race -count=1 -timeout 20m -tags $(TOOLS) ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 1x -tags $(TOOLS) ./...

# Short fuzz pass over every target (the checked-in corpus runs in `make test`).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep ^Fuzz); do \
			echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime 15s $$pkg || exit 1; \
		done; \
	done

# Cross builds for Pi-class boards, without cgo: no libusb inside, no HID
# scanners (see README, Licences). A cgo cross build needs a cross CC.
cross:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/scangw-arm64 ./cmd/scangw
	GOOS=linux GOARCH=arm GOARM=7 CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/scangw-armv7 ./cmd/scangw

# The buffer's tests on both Pi targets, under qemu-user (no binfmt_misc
# needed: test binaries, and the children they re-execute, are started
# through the emulator).
ARM_TEST_PKGS ?= ./buffer/
test-arm:
	@command -v qemu-aarch64-static >/dev/null || { \
		$(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user-static; }
	@mkdir -p bin/test
	@set -e; for pkg in $(ARM_TEST_PKGS); do \
		name=$$(basename $$pkg); \
		GOARCH=arm64 CGO_ENABLED=0 $(GO) test -c -o bin/test/$$name-arm64.test $$pkg; \
		GOARCH=arm GOARM=7 CGO_ENABLED=0 $(GO) test -c -o bin/test/$$name-armv7.test $$pkg; \
		echo "== $$pkg arm64"; (cd $$pkg && SCANGW_TEST_EMULATOR=qemu-aarch64-static qemu-aarch64-static $(CURDIR)/bin/test/$$name-arm64.test -test.timeout 30m); \
		echo "== $$pkg armv7"; (cd $$pkg && SCANGW_TEST_EMULATOR=qemu-arm-static qemu-arm-static $(CURDIR)/bin/test/$$name-armv7.test -test.timeout 30m); \
	done

# Debian packages, one per architecture, each with a cgo binary (HID needs
# cgo) cross-built with Debian's gcc-aarch64-linux-gnu and
# gcc-arm-linux-gnueabihf; their version comes from git (systemd/deb/debversion)
# and is the one `scangw version` prints. DIST=dir writes them elsewhere.
# The libc6 dependency is the newest GLIBC_ symbol version the binary uses.
DIST        ?= dist
DEB_VERSION ?= $(shell sh systemd/deb/debversion 2>/dev/null || echo 0.0.0~unknown)
DEB_ARCHES  := amd64 arm64 armhf
NFPM        := $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2

package: deps
	@mkdir -p $(DIST) && rm -f $(DIST)/scangw_*.deb
	@set -e; version='$(DEB_VERSION)'; \
	export SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || date +%s); \
	for arch in $(DEB_ARCHES); do \
		case $$arch in \
		amd64) target="GOARCH=amd64 CC=gcc" ;; \
		arm64) target="GOARCH=arm64 CC=aarch64-linux-gnu-gcc" ;; \
		armhf) target="GOARCH=arm GOARM=7 CC=arm-linux-gnueabihf-gcc" ;; \
		esac; \
		bin=bin/deb/$$arch/scangw; \
		echo "== $$arch: $$target go build"; \
		env $$target GOOS=linux CGO_ENABLED=1 $(GO) build -trimpath \
			-ldflags "-s -w -X main.buildVersion=$$version $(STAMPS)" -o $$bin ./cmd/scangw; \
		glibc=$$(readelf -V --wide $$bin | grep -o 'GLIBC_[0-9][0-9.]*' | cut -c7- | sort -uV | tail -n 1); \
		DEB_ARCH=$$arch DEB_VERSION=$$version SCANGW_BIN=$$bin GLIBC_MIN=$$glibc \
			$(NFPM) package --config systemd/nfpm.yaml --packager deb --target $(DIST)/scangw_$${version}_$$arch.deb; \
	done

clean:
	rm -rf bin dist
