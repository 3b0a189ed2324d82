# Thin wrapper over CMake. `make` builds build/strata; see README for the rest.
JOBS ?= 2
.PHONY: all strata asan test bench demo fuzz clean

all: strata
strata:
	@scripts/build.sh release
asan:
	@scripts/build.sh asan
test:
	@scripts/test.sh
bench:
	@scripts/bench.sh
demo:
	@scripts/demo.sh
fuzz:
	@scripts/build.sh fuzz
clean:
	rm -rf build build-asan build-fuzz
