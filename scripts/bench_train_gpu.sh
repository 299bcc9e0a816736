#!/usr/bin/env bash
# GPU training throughput for BENCHMARKS.md: short runs of every stage on one GPU, reporting
# training frames/s (validation excluded) and peak GPU memory from the training loop's last line.
#   bash scripts/bench_train_gpu.sh [MOCAP_NPZ] [OUT_DIR]
# (BENCHMARKS.md's figures used the Bandai-Namco train+val clips at 15 fps, to fit the transfer
# limit of the lent machine; throughput does not depend on the data.)
set -e
D=${1:-../shared/data/bandai_namco/bandai_namco_joints.npz}
OUT=${2:-$(mktemp -d)}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
export WANDB_MODE=disabled
run() { posenet3d train "$@" data.npz=$D train.device=cuda data.val_max_clips=20 --out $OUT/$RANDOM 2>&1 | tr '\r' '\n' | grep -E "val PA|training frames|rror|Traceback" ; }
echo "== teacher bf16 batch 16384"; run teacher teacher train.batch_size=16384 train.bf16=true train.steps=200 train.eval_every=200
echo "== teacher bf16 batch 65536"; run teacher teacher train.batch_size=65536 train.bf16=true train.steps=200 train.eval_every=200
echo "== teacher fp32 batch 65536"; run teacher teacher train.batch_size=65536 train.steps=100 train.eval_every=100
echo "== teacher bf16 batch 262144"; run teacher teacher train.batch_size=262144 train.bf16=true train.steps=60 train.eval_every=60
echo "== teacher fp16 (gradient scalers) batch 65536"; run teacher teacher train.batch_size=65536 train.fp16=true train.steps=200 train.eval_every=200
echo "== teacher bf16 torch.compile batch 65536"; run teacher teacher train.batch_size=65536 train.bf16=true train.compile=true train.steps=200 train.eval_every=200
echo "== finetune (teacher + student) bf16 batch 65536"; run finetune finetune train.batch_size=65536 train.bf16=true train.steps=60 train.eval_every=60
echo "== student bf16 batch 65536"; run student student train.batch_size=65536 train.bf16=true train.steps=100 train.eval_every=100
echo "== teacher temporal T9 bf16 batch 16384"; run teacher teacher_temporal train.batch_size=16384 train.bf16=true train.steps=100 train.eval_every=100
