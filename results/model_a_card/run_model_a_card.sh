#!/usr/bin/env bash
# Model A the card's way (results/README.md, "Model A on the card's data"): the card's 2 MB, its
# tokenizer (lower-cased ByteLevel BPE 16k, no BOS), one line a sample, 3 seeds of
# config/model_a_card.py; each scored on BLiMP's fast set under the card's protocol (the card: 57.2)
# and ours, and on full BLiMP, BLiMP-filtered and the supplement under ours; then
# results/model_a_card/model_a_card.json. About 40 min of training (compiled; two runs at once) and 7 min of scoring
# per seed on the 2-core AVX-512 BF16 machine that ran the published seeds, in bf16; on an AVX2-only CPU the native
# precision is fp32 (dtype auto picks it): ~110 min a seed on one thread (233 target tok/s, AMD EPYC AVX2, 2026-12-07).
# Precision: every run and score uses dtype auto (machine.py), which picks bf16 on a CPU that computes it natively,
# as the published seeds ran; config.json records the machine and the precision of each run.
# Two runs at once: one thread each (OMP_NUM_THREADS=1), else OpenMP threads spin and both crawl.
#
#   bash results/model_a_card/run_model_a_card.sh
#   SEEDS="1 2 3 4 5" bash results/model_a_card/run_model_a_card.sh
#   EXTRA="--n_layers=8" NAME=model_a_card_8l bash results/model_a_card/run_model_a_card.sh   # a variant, its own folders
#   EXTRA="--scaled_residual_init=True" NAME=model_a_card_gpt2init bash results/model_a_card/run_model_a_card.sh
#   EXTRA="--compile=True" ...         # the same math, 1.2x faster here (how the published seeds ran)
#   FULL=0 ...                         # the fast set only (skip full BLiMP, filtered, supplement: ~5 min a seed)
#
# Every step is skipped when its output exists, so the script can be stopped and started again
# (an interrupted training run is resumed).
set -euo pipefail
cd "$(dirname "$0")/../.."
SEEDS="${SEEDS:-1 2 3}"
NAME="${NAME:-model_a_card}"
EXTRA="${EXTRA:-}"
FULL="${FULL:-1}"

[ -d data/model_a_card ] || python tokenize_data.py --model-a-card --out data/model_a_card

source results/common.sh  # finished OUT_DIR
for seed in $SEEDS; do
    out="out/$NAME/seed$seed"
    res="results/model_a_card/$NAME/seed$seed"
    mkdir -p "$res"
    if ! finished "$out"; then
        python train.py config/model_a_card.py $EXTRA --seed="$seed" --out_dir="$out" \
            $([ -f "$out/ckpt.safetensors" ] && echo --resume)
    fi
    [ -f "$res/blimp_fast_card.json" ] || python eval_blimp.py "$out/ckpt.safetensors" --protocol card --fast \
        --no-progress --out "$res/blimp_fast_card.json"
    [ -f "$res/blimp_fast_ours.json" ] || python eval_blimp.py "$out/ckpt.safetensors" --fast --no-progress \
        --out "$res/blimp_fast_ours.json"
    # a run with ema_decay also wrote its weight average: scored on the fast set the card's way
    [ ! -f "$out/ema.safetensors" ] || [ -f "$res/blimp_fast_card_ema.json" ] || python eval_blimp.py \
        "$out/ema.safetensors" --protocol card --fast --no-progress --out "$res/blimp_fast_card_ema.json"
    [ "$FULL" = 0 ] || [ -f "$res/blimp_ours.json" ] || python eval_blimp.py "$out/ckpt.safetensors" --no-progress \
        --suite blimp,blimp_filtered,blimp_supplement --out "$res/blimp_ours.json"
done
python results/model_a_card/model_a_card.py "out/$NAME" "results/model_a_card/$NAME" --json "results/model_a_card/$NAME.json"
