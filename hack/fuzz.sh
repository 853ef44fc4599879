#!/usr/bin/env bash
# Runs every Go fuzz target of the module (func FuzzXxx in a _test.go file) for a bounded time
# each: FUZZ_TIME per target (default 200000x executions), FUZZ_PARALLEL workers (default 2, the machine's
# cores). A target that finds a failing input fails the script; Go writes the input under the
# package's testdata/fuzz/<target>/, where `go test` replays it from then on.
#
#   hack/fuzz.sh                     # every target, 200,000 executions each
#   FUZZ_TIME=2000000x hack/fuzz.sh  # longer, by hand
set -euo pipefail
cd "$(dirname "$0")/.."

# A count (Nx), not a duration: with a duration, Go 1.26's fuzz coordinator can report its own
# -fuzztime deadline as a failure ("context deadline exceeded", no input written) when a loaded
# machine delays a worker at the boundary (golang/go#75804, fixed in Go 1.27). The count keeps
# the run bounded in work; -timeout bounds it in time.
fuzz_time="${FUZZ_TIME:-200000x}"
parallel="${FUZZ_PARALLEL:-2}"

# "<package dir> <target>" for each target, found in the sources (listing them with go test
# -list would compile every package's tests first).
targets=$(grep -rEo --include='*_test.go' --exclude-dir=bin --exclude-dir=.dev --exclude-dir=hack \
	'^func Fuzz[A-Za-z0-9_]+' . | sed -E 's#^(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]+)$#\1 \2#' | sort -u)
if [[ -z "${targets}" ]]; then
	echo "hack/fuzz.sh: no fuzz targets found" >&2
	exit 1
fi

count=0
while read -r dir target; do
	echo "== fuzzing ${target} in ${dir} for ${fuzz_time}"
	go test "${dir}" -run '^$' -fuzz "^${target}\$" -fuzztime "${fuzz_time}" -parallel "${parallel}" -timeout 10m
	count=$((count + 1))
done <<<"${targets}"
echo "hack/fuzz.sh: ${count} fuzz targets ran ${fuzz_time} each and found nothing"
