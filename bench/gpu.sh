#!/usr/bin/env bash
# GPU training benchmark (issue 3, bench 4): on an ML-20M-sized synthetic split (bench/synthetic.py:
# ≈20M interactions, 138k users, 27k items), neumf's training loop (core `loo` example: the code
# neumf_train runs, without the table read and model store) in f32 and in bf16 mixed precision,
# beside ../shared/bench/reference_neumf.py on the same device, data, batch and epochs.
# Prints training samples/s and seconds per epoch, side by side.
#
# Needs only python3 with numpy + torch and the built `loo` example, no PostgreSQL, so it runs
# on a lent GPU machine with the build carried there (the example resolves libtorch through
# LD_LIBRARY_PATH, set below from the python's torch). Where cargo exists it builds the example.
# Usage: bench/gpu.sh   env: BENCH_GPU_DEVICE (cuda; cpu = dry run), BENCH_GPU_BATCH (65536),
#        BENCH_GPU_BIG_BATCH (1048576, the batch of NVIDIA's NCF figures; 0 = skip),
#        BENCH_GPU_EPOCHS (2), BENCH_GPU_USERS / _ITEMS / _PER_USER (138000 / 27000 / 145)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/.." && pwd)
. "$here/common.sh"
DEVICE=${BENCH_GPU_DEVICE:-cuda}
BATCH=${BENCH_GPU_BATCH:-65536}; EPOCHS=${BENCH_GPU_EPOCHS:-2}
BIG_BATCH=${BENCH_GPU_BIG_BATCH:-1048576}  # NVIDIA NCF's batch for ML-20M; 0 = skip
USERS=${BENCH_GPU_USERS:-138000}; ITEMS=${BENCH_GPU_ITEMS:-27000}; PER_USER=${BENCH_GPU_PER_USER:-145}
LR=${BENCH_GPU_LR:-0.001}
shared=${NEUMF_SHARED:-$repo/../shared}
venv=${NEUMF_VENV:-/opt/neumf/venv}
if [ -x "$venv/bin/python" ]; then PY=$venv/bin/python; else PY=python3; fi
torch_lib=$("$PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
loo=$repo/target/release/examples/loo
if command -v cargo >/dev/null 2>&1; then
  (cd "$repo" && . scripts/env.sh && cargo build -q --release -p neumf-core --features torch --example loo)
fi
[ -x "$loo" ] || { echo "no $loo: build it (cargo build --release -p neumf-core --features torch --example loo)" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
threads=$(nproc)

echo "== data: $USERS users, $ITEMS items, ≈$PER_USER per user"
"$PY" "$here/synthetic.py" "$work/syn" --users "$USERS" --items "$ITEMS" --per-user "$PER_USER"
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)

declare -A sps secs hr
# One measurement per (program, batch): the reference, neumf in f32 and in bf16.
measure() {
  local batch=$1 out
  echo "== reference_neumf.py --device $DEVICE --batch $batch --epochs $EPOCHS"
  out=$("$PY" "$shared/bench/reference_neumf.py" "$work/syn" --device "$DEVICE" --batch "$batch" --epochs "$EPOCHS" --lr "$LR" --threads "$threads")
  echo "   $out"
  sps[ref,$batch]=$(field "$out" samples_per_s); secs[ref,$batch]=$(field "$out" train_s); hr[ref,$batch]=$(field "$out" hr10)
  for precision in fp32 bf16; do
    echo "== neumf (core loo) --device $DEVICE --batch $batch --precision $precision"
    out=$("$loo" "$work/syn" --device "$DEVICE" --batch "$batch" --epochs "$EPOCHS" --lr "$LR" --factors 8 \
          --threads "$threads" --precision "$precision")
    sps[$precision,$batch]=$(field "$out" samples_per_s); secs[$precision,$batch]=$(field "$out" train_s)
    hr[$precision,$batch]=$(field "$out" hr10)
    echo "   samples/s ${sps[$precision,$batch]}, ${secs[$precision,$batch]} s for $EPOCHS epochs"
  done
}
measure "$BATCH"
[ "$BIG_BATCH" = 0 ] || measure "$BIG_BATCH"
per_epoch() { awk "BEGIN { printf \"%.2f\", $1 / $EPOCHS }"; }
millions() { awk "BEGIN { printf \"%.1fM\", $1 / 1e6 }"; }
rows() {
  local b=$1
  echo "batch $b:"
  echo "  reference_neumf.py    $(millions "${sps[ref,$b]}") samples/s   $(per_epoch "${secs[ref,$b]}") s/epoch   HR@10 ${hr[ref,$b]}"
  echo "  neumf, f32            $(millions "${sps[fp32,$b]}") samples/s   $(per_epoch "${secs[fp32,$b]}") s/epoch   HR@10 ${hr[fp32,$b]}   ($(ratio "${sps[fp32,$b]}" "${sps[ref,$b]}")× the reference)"
  echo "  neumf, bf16 mixed     $(millions "${sps[bf16,$b]}") samples/s   $(per_epoch "${secs[bf16,$b]}") s/epoch   HR@10 ${hr[bf16,$b]}   ($(ratio "${sps[bf16,$b]}" "${sps[ref,$b]}")× the reference)"
}
echo
echo "=== GPU training benchmark ($DEVICE${gpu:+: $gpu}; NeuMF f8 64-32-16-8, 4 negatives, $EPOCHS epochs, learning rate $LR) ==="
rows "$BATCH"
[ "$BIG_BATCH" = 0 ] || rows "$BIG_BATCH"
cat <<REPORT
(HR@10 on the synthetic data's random test candidates: a sanity check that all three learn, not a
quality figure; at batch $BIG_BATCH, NVIDIA NCF's, the learning rate would need raising to learn in $EPOCHS epochs)
goal on one H100: >= 40M samples/s (NVIDIA's NCF at batch 2^20: 22.6M/s A100 TF32, 34.1M/s A100 AMP)
REPORT
