#!/usr/bin/env bash
# Performance run: the criterion benchmarks (key generation, CSR, authentication, the
# SQLite order round trip, the domain workflow), then the load tool against Pebble, BIND 9
# and lego on loopback. Needs the peers of scripts/test.sh plus Debian's `lego`.
#
#   scripts/perf.sh                 # 100 orders, all posted at once
#   scripts/perf.sh --orders 1000   # any acmeport-load option (see --help)
#
# Results: target/criterion/ (benchmarks), target/perf/load.json (load tool, or --json),
# and the table printed at the end. Not part of scripts/test.sh: it takes minutes and
# measures speed, which tests never assert.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v lego >/dev/null; then
    apt-get install -y lego
fi

cargo bench -p acmeport-benches -- --noplot
cargo build --release -p acmeport-server -p acmeport-load
# The tool runs the acmeport binary that sits next to it in the release directory.
cargo run --release -q -p acmeport-load -- "$@"
