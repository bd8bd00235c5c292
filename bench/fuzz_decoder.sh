#!/usr/bin/env bash
# Decoder fuzzing (issue 13, point 4): 1,000,000 mutated model blobs (truncations, bit flips,
# absurd lengths and counts, spliced bytes) through the decoder and, when they still decode,
# the serving kernel. Prints executions, how many still served, panics (must be 0) and the
# slowest execution. The test layer runs the same harness with 20,000 executions.
#   bench/fuzz_decoder.sh [executions, default 1000000]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/.." && pwd)
. "$repo/scripts/env.sh"
cd "$repo"
NEUMF_FUZZ_EXECS=${1:-1000000} cargo test --release -q -p neumf-core --test decoder_fuzz -- --nocapture 2>&1 \
  | grep -E "decoder fuzzing|panicked|test result"
