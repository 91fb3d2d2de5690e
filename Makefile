# mycontainer build and test entry points. `make demo` and `make test` are the
# README's two commands; both install what they need first.
SHELL := /bin/bash
NODE_TEST_FLAGS ?= --test-concurrency=2 --test-timeout=600000

.PHONY: setup build native demo test unit bench clean

setup:
	./scripts/setup.sh

build:
	npx tsc -p .
	node scripts/bundle.js

native:
	$(MAKE) -s -C native

# Builds a busybox rootfs from Debian's busybox-static and runs a container in it.
demo: setup
	./scripts/demo.sh

# Every test: unit tests (pure, no root) and integration tests (real kernel).
test: setup
	node --test $(NODE_TEST_FLAGS) $$(find dist/test -name '*.test.js' | sort); \
	  status=$$?; node dist/test/helpers/cleanup.js; exit $$status

unit: build
	node --test $(NODE_TEST_FLAGS) $$(find dist/test/unit -name '*.test.js' | sort)

bench: setup
	node dist/bench/run.js

clean:
	rm -rf dist native/build
