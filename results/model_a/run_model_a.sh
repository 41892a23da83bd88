#!/usr/bin/env bash
# Results I (results/README.md, "Results I: Model A end to end"): Model A end to end on 2 MB of English, as the reference card, and with a
# schedule that fits the run; evaluation, export with checkpoint branches, the Transformers check,
# the summary JSON and the loss plot; then variants of the bf16 run (dropout, an 8k vocabulary,
# 10 epochs with dropout, batches of 4 and 2 x 512, more seeds, document-aligned windows), each scored
# on full BLiMP in bf16.
# On 2 CPU cores: about 3 hours, most of it training, plus about 4 hours for the variants.
#
#   bash results/model_a/run_model_a.sh
#   VARIANTS=0 bash results/model_a/run_model_a.sh     # without the variants
#
# Every step is skipped when its output exists, so the script can be stopped and started again
# (an interrupted training run is resumed).
set -euo pipefail
cd "$(dirname "$0")/../.."

[ -d data/model_a ] || python tokenize_data.py --model-a --corpus ../shared/data/corpora --out data/model_a

source results/common.sh  # finished OUT_DIR
train() {  # train OUT_DIR CONFIG...: skips a finished run, resumes an interrupted one
    local out=$1; shift
    finished "$out" && return 0
    python train.py "$@" $([ -f "$out/ckpt.safetensors" ] && echo --resume)
    # (an interrupted train.py saves and exits non-zero, which stops the script: nothing half-trained is scored)
    finished "$out" || { echo "$out: stopped before its last step; run the script again to resume"; exit 1; }
}
score() {  # score RUN EVAL_BLIMP_ARGS...: results/model_a/RUN/blimp.json, unless it exists
    local run=$1; shift
    mkdir -p results/model_a/$run
    [ -f results/model_a/$run/blimp.json ] || python eval_blimp.py out/$run/ckpt.safetensors --no-progress "$@" --out results/model_a/$run/blimp.json
}
train out/model_a config/model_a.py                          # the card: 77 steps of 32,768 tokens
train out/model_a_fit config/model_a.py config/model_a_fit.py  # 305 steps of 8,192 tokens, warmup 30, peak 1e-3
# the same compiled, in the precision auto picks: bf16 autocast where the CPU computes it natively (the published
# run: an AVX-512 BF16 CPU), fp32 elsewhere (config.json records which)
FIT_BF16="config/model_a.py config/model_a_fit.py --dtype=auto --compile=True"
train out/model_a_fit_bf16 $FIT_BF16 --out_dir=out/model_a_fit_bf16

for run in model_a model_a_fit model_a_fit_bf16; do score $run --suite blimp,blimp_filtered,blimp_supplement; done
python report.py out/model_a out/model_a_fit out/model_a_fit_bf16 --png results/model_a/model_a_loss.png --json results/model_a/model_a_train.json

[ -d exports/model_a_fit ] || python export_hf.py out/model_a_fit/ckpt.safetensors exports/model_a_fit --eval results/model_a/model_a_fit/blimp.json
[ -d exports/model_a_fit_repo ] || python export_hf.py --all out/model_a_fit exports/model_a_fit_repo --eval results/model_a/model_a_fit/blimp.json
python results/model_a/check_export.py exports/model_a_fit_repo out/model_a_fit/ckpt.safetensors --json results/model_a/model_a_export_check.json

[ "${VARIANTS:-1}" = 1 ] || exit 0
# Variants of model_a_fit_bf16 (results/README.md, Results I, the variants table): one change each.
[ -d data/model_a_8k ] || python tokenize_data.py --model-a --corpus ../shared/data/corpora --out data/model_a_8k --vocab-size 8000
train out/model_a_fit_dropout $FIT_BF16 --dropout=0.1 --out_dir=out/model_a_fit_dropout
train out/model_a_fit_8k $FIT_BF16 --data_dir=data/model_a_8k --vocab_size=8000 --out_dir=out/model_a_fit_8k
train out/model_a_fit_10ep $FIT_BF16 --epochs=10 --dropout=0.1 --warmup_iters=60 --eval_interval=60 \
    --out_dir=out/model_a_fit_10ep
B4="--batch_size=4 --warmup_iters=120 --lr=5e-4 --min_lr=5e-5 --eval_interval=120"
train out/model_a_fit_b4 $FIT_BF16 $B4 --out_dir=out/model_a_fit_b4
train out/model_a_fit_b2 $FIT_BF16 --batch_size=2 --warmup_iters=240 --lr=4e-4 --min_lr=4e-5 --eval_interval=240 \
    --out_dir=out/model_a_fit_b2
# the seed: the base run with two more, the batch-4 run with one more (initialisation and data order)
train out/model_a_fit_bf16_seed2 $FIT_BF16 --seed=2 --out_dir=out/model_a_fit_bf16_seed2
train out/model_a_fit_bf16_seed3 $FIT_BF16 --seed=3 --out_dir=out/model_a_fit_bf16_seed3
train out/model_a_fit_b4_seed2 $FIT_BF16 $B4 --seed=2 --out_dir=out/model_a_fit_b4_seed2
# every window opens at a document's BOS, as an evaluated sentence does
train out/model_a_fit_align $FIT_BF16 --align_windows=True --out_dir=out/model_a_fit_align
for run in model_a_fit_dropout model_a_fit_8k model_a_fit_10ep model_a_fit_b4 model_a_fit_b2 model_a_fit_bf16_seed2 \
    model_a_fit_bf16_seed3 model_a_fit_b4_seed2 model_a_fit_align; do
    score $run --suite blimp
done
# a document's first tokens scored alone (as BLiMP scores a sentence) and inside a training window
python results/model_a/context_loss.py out/model_a_fit_bf16/ckpt.safetensors out/model_a_fit_align/ckpt.safetensors --json results/model_a/model_a_context_loss.json
