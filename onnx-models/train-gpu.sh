#!/usr/bin/env bash
# Train the model-size curve on one GPU in a few minutes: hidden 256 resumes the committed
# checkpoint (the shipped model), hidden 128 and 512 start fresh (seeded), all three at once
# with the same batch, schedule and wall-clock budget. Usage:
#
#     onnx-models/train-gpu.sh OUT_DIR [MINUTES]      # DATA=... to point at the corpus
#
# OUT_DIR receives checkpoint.pt (256), ck128.pt, ck512.pt and one log per run; copy
# OUT_DIR/checkpoint.pt over onnx-models/checkpoint.pt and export as the model card says.
set -euo pipefail
out=${1:?usage: train-gpu.sh OUT_DIR [MINUTES]}
minutes=${2:-7}
data=${DATA:-$(dirname "$0")/../../shared/corpus/train}
here=$(dirname "$0")
mkdir -p "$out"
cp "$here/checkpoint.pt" "$out/checkpoint.pt"
export PYTHONUNBUFFERED=1
# Unpack the archives once into the .npy cache the three runs share.
python3 "$here/train.py" --data "$data" --fresh --minutes 0 --checkpoint /tmp/nc-prep.pt >"$out/prep.log" 2>&1
run() {
    python3 "$here/train.py" --data "$data" --batch 1024 --chunk 256 --lr 3e-3 --lr-final 1e-4 \
        --reset-every 32 --save-every 2 --minutes "$minutes" "$@"
}
run --checkpoint "$out/checkpoint.pt" >"$out/train256.log" 2>&1 &
run --hidden 128 --fresh --checkpoint "$out/ck128.pt" >"$out/train128.log" 2>&1 &
run --hidden 512 --fresh --checkpoint "$out/ck512.pt" >"$out/train512.log" 2>&1 &
wait
tail -n 3 "$out"/train*.log
