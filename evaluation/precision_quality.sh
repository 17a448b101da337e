#!/usr/bin/env bash
# Equal-quality check (issue 26): the same short MVAE and classifier runs in float32 and in bfloat16 + channels_last,
# on one core each; compare the eval.json files the runs write (held-out fidelity / accuracy, RMSE, samples/s).
#   bash evaluation/precision_quality.sh [OUT_DIR]      (default runs/precision; about 45 min on a 2-core CPU)
set -u
cd "$(dirname "$0")/.."
out=${1:-runs/precision}
mkdir -p "$out"
mvae() {  # name, seed, precision flags...
  local name=$1 seed=$2; shift 2
  [ -f "$out/$name/eval.json" ] && return
  OMP_NUM_THREADS=1 taskset -c 1 .venv/bin/python train/mvae.py --output_dir "$out/$name" --train_samples 6000 \
    --eval_samples 256 --steps 800 --batch_size 64 --seed "$seed" --num_workers 0 \
    --classifier checkpoints/classifier-procedural-64 "$@" > "$out/$name.log" 2>&1
}
classifier() {  # name, precision flags...
  local name=$1; shift
  [ -f "$out/$name/eval.json" ] && return
  OMP_NUM_THREADS=1 taskset -c 0 .venv/bin/python train/classifier.py --output_dir "$out/$name" --train_samples 12000 \
    --eval_samples 1024 --batch_size 128 --max_steps 1500 --warmup_steps 100 --seed 0 --num_workers 0 "$@" \
    > "$out/$name.log" 2>&1
}
( classifier clf-bf16 --precision bf16 --channels_last; classifier clf-fp32 --precision fp32 --no-channels_last ) &
for seed in 0 1; do
  mvae "mvae-fp32-s$seed" "$seed" --precision fp32 --no-channels_last
  mvae "mvae-bf16-s$seed" "$seed" --precision bf16 --channels_last
done
wait
