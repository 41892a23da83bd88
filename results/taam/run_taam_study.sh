#!/usr/bin/env bash
# The TAAM study (results/README.md, "Results II: the TAAM study"): every mixing variant trained with the same small model,
# the same 1.6M token exposures and the same seeds on eng+nld+zho, then scored on BLiMP, BLiMP-NL and
# ZhoBLiMP (BabyLM's fast sets: the first 200 pairs of every paradigm; BLiMP-NL has 100 a paradigm,
# so all of it), then summarised into results/taam/taam_study.{json,png}.
#
#   bash results/taam/run_taam_study.sh                  # seeds 1 and 2, one run at a time
#   SEEDS="1 2 3" JOBS=2 bash results/taam/run_taam_study.sh   # two runs at once, one thread each
#
# A finished run (its minimal_pairs.json exists) is skipped, an interrupted one resumed, so the
# script can be stopped and started again. Runs go to runs/taam_cpu/<variant>/seed<k>/.
set -euo pipefail
cd "$(dirname "$0")/../.."
SEEDS="${SEEDS:-1 2}"
JOBS="${JOBS:-1}"

# variant name and the config file that makes it (given after config/taam.py, before config/taam_cpu.py;
# taam_v2 is config/taam.py itself)
ALL="uniform:config/taam_uniform.py temperature:config/taam_temperature.py prior:config/taam_prior.py
     taam_v1:config/taam_v1.py taam_v2:config/taam.py exp3_v2:config/taam_exp3.py hedge_v2:config/taam_hedge.py"
VARIANTS="${VARIANTS:-$ALL}"   # e.g. VARIANTS="taam_v2:config/taam.py" for one variant

[ -d data/eng_nld_zho ] || python tokenize_data.py --corpus ../shared/data/corpora --out data/eng_nld_zho

source results/common.sh  # finished OUT_DIR
train_once() {  # train_once OUT SEED TRAIN_ARGS...: skips a finished run, resumes an interrupted one
    local out=$1 seed=$2; shift 2
    finished "$out" && return 0
    python train.py "$@" --out_dir="$out" --seed="$seed" $([ -f "$out/ckpt.safetensors" ] && echo --resume) > "$out.log" 2>&1 \
        || { echo "$out: training failed, see $out.log"; return 1; }
    # (train.py saves and exits non-zero when interrupted; this check also stops a run cut short otherwise)
    finished "$out" || { echo "$out: stopped before its last step; run the script again to resume"; return 1; }
}

one_run() {  # one_run VARIANT CONFIG SEED: train, then score the minimal pairs
    local out="runs/taam_cpu/$1/seed$3"
    [ -f "$out/minimal_pairs.json" ] && return 0
    train_once "$out" "$3" config/taam.py $2 config/taam_cpu.py || return 1
    python eval_blimp.py "$out/ckpt.safetensors" --suite blimp,blimp_nl,zhoblimp --fast --no-progress \
        --out "$out/minimal_pairs.json" >> "$out.log" 2>&1 || { echo "$out: evaluation failed, see $out.log"; return 1; }
    echo "$out: done"
}
export -f finished train_once one_run
mkdir -p runs/taam_cpu
for v in $VARIANTS; do mkdir -p "runs/taam_cpu/${v%%:*}"; done

if [ "$JOBS" -gt 1 ]; then export OMP_NUM_THREADS=1; fi
for s in $SEEDS; do for v in $VARIANTS; do echo "${v%%:*} ${v#*:} $s"; done; done \
    | xargs -P "$JOBS" -L 1 bash -c 'one_run "$0" "$1" "$2"' 

python report.py --study $(for v in $ALL; do echo "runs/taam_cpu/${v%%:*}"; done) \
    --json results/taam/taam_study.json --png results/taam/taam_study.png

# taam_v1 with 80 updates instead of 20 (an evaluation every 5 steps): long enough for the plateaued
# language to reach the structural floor. Training only (no minimal pairs), same seeds.
mkdir -p runs/taam_v1_80updates
for s in $SEEDS; do
    train_once "runs/taam_v1_80updates/seed$s" "$s" config/taam.py config/taam_v1.py config/taam_cpu.py --eval_interval=5
done
python report.py --study runs/taam_v1_80updates --json results/taam/taam_v1_80updates.json --png results/taam/taam_v1_80updates.png
