#!/usr/bin/env bash
# The open-loop sweep: for each scenario, its maximum throughput (the closed loop, CLIENTS
# clients that never pause), then the open loop (`mall-load --rate`) at 25, 50 and 75 % of it,
# each run against a fresh mall on a fresh database (benches/load.sh). Prints one table: per
# scenario, the maximum in arrivals per second and, at each fraction, the p50 and p99 latency of
# the arrivals from their scheduled start, and the arrivals missed (every customer busy).
# Build first:
#   cargo build --release -p mall-http --bin mall -p mall-bench --bin mall-load
# Usage: benches/sweep.sh [postgres|sqlite]
# Settings (environment):
#   SCENARIOS   the scenarios, in order [browse cart checkout flash-sale]
#   FRACTIONS   percentages of the maximum to run the open loop at [25 50 75]
#   CLIENTS     closed-loop clients for the maximum [32]
#   MAX_SECS    seconds of the closed-loop run [10]
#   OPEN_SECS   seconds of each open-loop run [10]
#   CAP         the most arrivals in flight in the open loop (mall-load --concurrency), so
#               also the customers registered for it [256]
#   OUT         where the runs' JSON reports and outputs go [target/sweep/DATE]
#   PORT, BIN_DIR, MALL_CONFIG as for load.sh.
# An arrival is what the open loop schedules (mall-load --help): a request for browse and cart,
# a whole purchase for checkout, an order for the flash sale, which runs with a stock that never
# sells out and unpaid orders, as in compare.sh. So the maximum is in the same unit: requests/s,
# purchases/s (POST /checkout per second) and orders/s (POST /orders per second).
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-postgres}
scenarios=${SCENARIOS:-browse cart checkout flash-sale}
fractions=${FRACTIONS:-25 50 75}
clients=${CLIENTS:-32}
max_secs=${MAX_SECS:-10}
open_secs=${OPEN_SECS:-10}
cap=${CAP:-256}
out=${OUT:-target/sweep/$(date -u +%Y%m%dT%H%M%SZ)}
export PORT=${PORT:-18931}
mkdir -p "$out"

# The mall-load arguments a scenario needs besides its name.
extra() {
    case "$1" in
        flash-sale) echo "--flash-stock 1000000000 --no-flash-pay" ;;
        *) echo "" ;;
    esac
}

# The arrivals per second of a closed-loop report: what one open-loop arrival is, per second.
arrivals_per_sec() {
    case "$1" in
        checkout) jq -r '.scenarios[0].operations[] | select(.operation == "POST /api/v1/checkout") | .rps' "$2" ;;
        flash-sale) jq -r '.scenarios[0].operations[] | select(.operation == "POST /api/v1/orders") | .rps' "$2" ;;
        *) jq -r '.scenarios[0].rps' "$2" ;;
    esac
}

unit() {
    case "$1" in
        checkout) echo "purchases/s" ;;
        flash-sale) echo "orders/s" ;;
        *) echo "requests/s" ;;
    esac
}

# Runs load.sh for scenario $1 into report $2 with further mall-load arguments; the status
# line for the table ("" or " FAIL" when an invariant failed or the run broke).
run() {
    local scenario=$1 report=$2
    shift 2
    # shellcheck disable=SC2046 # extra's words are separate arguments
    if benches/load.sh "$backend" --scenario "$scenario" $(extra "$scenario") \
        --report "$report" "$@" >"${report%.json}.out" 2>&1; then
        echo ""
    else
        echo " FAIL"
    fi
}

header="| scenario | max (closed loop, $clients clients) |"
rule="| --- | --- |"
for f in $fractions; do
    header="$header at $f %: rate/s, p50 / p99 ms, missed |"
    rule="$rule --- |"
done
rows=()
for s in $scenarios; do
    echo "== $s: the maximum, closed loop, $clients clients, $max_secs s" >&2
    status=$(run "$s" "$out/$s-max.json" --duration "$max_secs" --concurrency "$clients")
    if [ ! -s "$out/$s-max.json" ]; then
        echo "   no report: see $out/$s-max.out" >&2
        rows+=("| $s | no figure$status |")
        continue
    fi
    max=$(arrivals_per_sec "$s" "$out/$s-max.json")
    closed_p99=$(jq -r '.scenarios[0].latency.p99_ms' "$out/$s-max.json")
    echo "   $(printf '%.0f' "$max") $(unit "$s") (request p99 $closed_p99 ms)$status" >&2
    row="| $s | $(printf '%.0f' "$max") $(unit "$s")$status |"
    for f in $fractions; do
        rate=$(awk -v m="$max" -v f="$f" 'BEGIN { r = m * f / 100; if (r < 0.1) r = 0.1; printf "%.1f", r }')
        echo "== $s: open loop at $f % = $rate/s, $open_secs s, at most $cap in flight" >&2
        report="$out/$s-$f.json"
        status=$(run "$s" "$report" --duration "$open_secs" --concurrency "$cap" --rate "$rate")
        if [ ! -s "$report" ]; then
            echo "   no report: see ${report%.json}.out" >&2
            row="$row $rate: no figure$status |"
            continue
        fi
        cell=$(jq -r '.scenarios[0].open_loop | "\(.latency.p50_ms | . * 10 | round / 10) / \(.latency.p99_ms | . * 10 | round / 10), \(.missed)"' "$report")
        echo "   p50 / p99 ms, missed: $cell$status" >&2
        row="$row $rate: $cell$status |"
    done
    rows+=("$row")
done

echo
echo "open-loop sweep, $backend, $(date -u +%Y-%m-%d), reports in $out"
echo "$header"
echo "$rule"
printf '%s\n' "${rows[@]}"
