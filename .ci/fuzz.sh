#!/usr/bin/env bash
# Runs every fuzz target of the parsers of outside input for a short fixed
# time each, one after another (go test -fuzz takes one target of one
# package at a time). Their seed corpora also run as plain tests with
# `go test`; this is the part that looks for new inputs.
#
#   FUZZTIME          time per target (go test -fuzztime), default 10s
#   FUZZMINIMIZETIME  time to minimize each new input, default 2s: go's
#                     default of 60s would spend a short run minimizing the
#                     first interesting input of a large seed (a config)
#   GATEHOUSE_BUILD_LOCK  if set, a file every go command is run under
#                     flock(1) on, for machines whose builds take turns
#
# A crasher is written to <package>/testdata/fuzz/<Target>/ by go itself:
# fix the bug and commit that file, which keeps it as a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local

FUZZTIME="${FUZZTIME:-10s}"
FUZZMINIMIZETIME="${FUZZMINIMIZETIME:-2s}"

# The packages that parse what comes from outside: plans, cost estimates,
# the configuration, ITSM callbacks, the payloads posted to /codec, and the
# gateway's request bodies, Slack payloads and GitHub deliveries. Never
# ./tests/ (it links a Temporal server).
packages=(./plan/ ./cost/ ./config/ ./activities/itsm/ ./gateway/ ./compression/)

gocmd() {
	if [ -n "${GATEHOUSE_BUILD_LOCK:-}" ]; then
		flock "$GATEHOUSE_BUILD_LOCK" go "$@"
	else
		go "$@"
	fi
}

# fuzz runs one target. Go's fuzzer sometimes ends a run that found
# nothing with "context deadline exceeded" (a worker that did not answer
# the coordinator as the time ran out); that run wrote no failing input,
# so it is run once more. A real crasher always says "Failing input
# written" and fails at once.
fuzz() {
	local out
	out=$(mktemp)
	for attempt in 1 2; do
		if gocmd test -run '^$' -fuzz "^${2}\$" -fuzztime "$FUZZTIME" \
			-fuzzminimizetime "$FUZZMINIMIZETIME" "$1" 2>&1 | tee "$out"; then
			rm -f "$out"
			return 0
		fi
		if grep -q 'Failing input written' "$out" || ! grep -q 'context deadline exceeded' "$out" || [ "$attempt" = 2 ]; then
			rm -f "$out"
			return 1
		fi
		echo "fuzz.sh: $2 ended with the fuzzer's own deadline error and no failing input: once more"
	done
}

failed=()
ran=0
for pkg in "${packages[@]}"; do
	# -list prints the matching names, then "ok <package>".
	targets=$(gocmd test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
	if [ -z "$targets" ]; then
		echo "fuzz.sh: no fuzz targets in $pkg" >&2
		exit 1
	fi
	for target in $targets; do
		echo "=== $pkg $target ($FUZZTIME)"
		ran=$((ran + 1))
		if ! fuzz "$pkg" "$target"; then
			failed+=("$pkg $target")
		fi
	done
done

echo "fuzz.sh: $ran targets, ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
	printf '  FAIL %s\n' "${failed[@]}"
	exit 1
fi
