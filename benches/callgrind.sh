#!/usr/bin/env bash
# Instructions per task, submit to completion, on one runtime thread (new_current_thread), under
# callgrind: no contention and no timer noise, only the work each task costs.
#
#   bash benches/callgrind.sh                      # N = 2000 and 12000, every variant
#   SMALL=1000 LARGE=5000 VARIANTS="worker tracker" bash benches/callgrind.sh
#
# Each variant runs at two sizes in src/bin/instructions.rs; only its `measured_region` (the
# run from the first submit until every task finished) is counted (`--toggle-collect`), and the
# difference between the two counts divided by the difference in N cancels what does not grow
# with N (the runtime, Worker::new, the first allocations). Prints a markdown table; exits
# non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

SMALL=${SMALL:-2000}
LARGE=${LARGE:-12000}
VARIANTS=${VARIANTS:-worker worker_context tracker spawn join_set}

if ! [[ $SMALL =~ ^[0-9]+$ && $LARGE =~ ^[0-9]+$ ]] || ((SMALL < 1 || LARGE <= SMALL)); then
    echo "callgrind.sh: need 0 < SMALL < LARGE (got SMALL=$SMALL LARGE=$LARGE)" >&2
    exit 2
fi
if ! command -v valgrind >/dev/null; then
    echo "callgrind.sh: valgrind not found (apt-get install valgrind)" >&2
    exit 1
fi

# The bench profile: optimised like a release build, with debug info (set in ../Cargo.toml), and
# without tokio's test-util (the bench package does not enable it).
cargo build --quiet --profile bench -p background-worker-benches --bin instructions
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin="$target_dir/release/instructions"
if [[ ! -x $bin ]]; then
    echo "callgrind.sh: $bin was not built" >&2
    exit 1
fi

log=$(mktemp)
err=$(mktemp)
trap 'rm -f "$log" "$err"' EXIT

# Instructions counted in measured_region for one variant at one size.
count() {
    local variant=$1 n=$2
    if ! valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect='*measured_region*' \
        --log-file="$log" "$bin" "$variant" "$n" 2>"$err"; then
        echo "callgrind.sh: $variant $n failed:" >&2
        cat "$err" "$log" >&2
        return 1
    fi
    local collected
    collected=$(sed -n 's/.*Collected : *\([0-9][0-9]*\).*/\1/p' "$log")
    if [[ -z $collected || $collected == 0 ]]; then
        echo "callgrind.sh: no instructions collected for $variant $n (was measured_region inlined?):" >&2
        cat "$log" >&2
        return 1
    fi
    echo "$collected"
}

declare -A small large per
for variant in $VARIANTS; do
    echo "callgrind: $variant at N=$SMALL and N=$LARGE ..." >&2
    small[$variant]=$(count "$variant" "$SMALL")
    large[$variant]=$(count "$variant" "$LARGE")
    per[$variant]=$(awk -v a="${small[$variant]}" -v b="${large[$variant]}" -v n="$((LARGE - SMALL))" \
        'BEGIN { printf "%.0f", (b - a) / n }')
done

ratio() { # $1 / $2, or "" if either is missing
    if [[ -n ${per[$1]:-} && -n ${per[$2]:-} ]]; then
        awk -v a="${per[$1]}" -v b="${per[$2]}" 'BEGIN { printf "%.2fx", a / b }'
    fi
}

echo
echo "### Instructions per task, submit to completion (callgrind, one runtime thread)"
echo
echo "$(valgrind --version), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)," \
    "per task = (Ir at N=$LARGE - Ir at N=$SMALL) / $((LARGE - SMALL))"
echo
echo "| variant | Ir, N=$SMALL | Ir, N=$LARGE | per task | / tracker |"
echo "|---|---|---|---|---|"
for variant in $VARIANTS; do
    echo "| $variant | ${small[$variant]} | ${large[$variant]} | ${per[$variant]} | $(ratio "$variant" tracker) |"
done
if [[ -n ${per[worker]:-} && -n ${per[tracker]:-} ]]; then
    echo
    echo "worker / tracker: $(ratio worker tracker)"
fi
