#!/bin/bash
# The GPU figures the open issues ask for, in one run that fits a session's device time (about 10 minutes on an
# H200). Run from the repository root on the machine with the GPU; every result lands in $OUT (default
# gpu_results/) as JSON, with the log of each step. Record them in docs/benchmarks.md with this command.
#   OUT=gpu_results bash tools/gpu_checks.sh
set -u
OUT=${OUT:-gpu_results}
mkdir -p "$OUT"
P="python -m posetok"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
step() {  # name, command...
  local name=$1; shift
  echo "== $name: $*" | tee -a "$OUT/steps.log"
  ( time "$@" ) > "$OUT/$name.log" 2>&1
  echo "   exit $?" | tee -a "$OUT/steps.log"
}
# Issue 12: posetok train beside a plain loop, pct_base at batch 512 bf16 with 6 workers, and the sequence default
step train_pct_base $P bench tokenizer --train --config configs/tokenizer/pct_base_coco17_gpu.yaml \
    --steps 300 --warmup 50 --block 20 --json "$OUT/train_pct_base.json"
step train_seq_default $P bench tokenizer --train --config configs/sequence/default.yaml trainer.precision=bf16-mixed \
    data.num_workers=6 --steps 100 --warmup 20 --block 10 --json "$OUT/train_seq_default.json"
# Issue 12: the GPU recipe, 5 minutes, then its OKS-AP on the bundled real sample (target >= 99)
step gpu_recipe $P train configs/tokenizer/pct_base_coco17_gpu.yaml out="$OUT/pct_base_gpu" trainer.progress_bar=false
step gpu_recipe_eval $P eval "$OUT/pct_base_gpu/model.ckpt" --data posetok/assets/real_sample/coco17_sports2d.json \
    --json "$OUT/pct_base_gpu_eval.json"
# Issue 9: the estimator's training with the real pipeline against synthetic tensors, bf16 (target >= 0.9); the
# bundled real frames stand in for COCO (not on the machine)
REAL="data.train=null data.val=null data.val_boxes=null"
step bench_hrnet_w32 $P bench estimator --config configs/estimator/hrnet_w32_coco_256x192.yaml --device cuda \
    --precision bf16 --batch 64 --train-batch 64 --workers 8 --seconds 10 --json "$OUT/bench_hrnet_w32.json" $REAL
# Issue 10: the PCT classifier (SwinV2-B, 256 x 256) training images/s with the backbone frozen and trained, on the
# targets of the tokenizer the GPU recipe above trained (its weights stand in for the heatmap-trained backbone's)
PCT="--config configs/pct/pct_base_classifier_coco_256x256.yaml --device cuda --precision bf16 --batch 64
     --train-batch 32 --workers 8 --seconds 10"  # options first: the key=value overrides come last, together
TOK="model.tokenizer=$OUT/pct_base_gpu/model.ckpt model.backbone.weights=null"
step bench_pct_frozen $P bench estimator $PCT --json "$OUT/bench_pct_frozen.json" $TOK $REAL
step bench_pct_trained $P bench estimator $PCT --json "$OUT/bench_pct_trained.json" $TOK $REAL \
    model.backbone.frozen=false
echo "done: $OUT" | tee -a "$OUT/steps.log"
