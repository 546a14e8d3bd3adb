#!/usr/bin/env bash
# Run both benchmarks and keep their output under bench/results/ (not in git).
#
#   bench/run_all.sh            # full runs (about 8 minutes)
#   bench/run_all.sh --quick    # short runs, to check that everything works
#
# On a shared machine, serialise with other heavy jobs by naming a lock file:
#   LIVE_BENCH_LOCK=/tmp/live-heavy.lock bench/run_all.sh
set -euo pipefail
cd "$(dirname "$0")/.."

python=.venv/bin/python
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/results

quick=()
runs=(--runs 3)
if [[ "${1:-}" == "--quick" ]]; then
    quick=(--quick)
    runs=()
fi

run() {
    if [[ -n "${LIVE_BENCH_LOCK:-}" ]]; then
        flock "$LIVE_BENCH_LOCK" "$@"
    else
        "$@"
    fi
}

run "$python" bench/frame_to_part.py "${runs[@]}" "${quick[@]}" \
    | tee "bench/results/$stamp-frame_to_part.txt"
run "$python" bench/cpu_vs_nginx.py --sizes 1,8,16 "${quick[@]}" \
    | tee "bench/results/$stamp-cpu_vs_nginx.txt"
