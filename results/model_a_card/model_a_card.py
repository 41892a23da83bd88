"""
Collect the Model A card-reproduction runs into one JSON (results/model_a_card/run_model_a_card.sh calls this).

    python results/model_a_card/model_a_card.py out/model_a_card results/model_a_card/model_a_card --json results/model_a_card/model_a_card.json

For each seed folder OUT/seedN (a train.py run) and RESULTS/seedN (its eval_blimp.py results):
BLiMP's fast set under the card's protocol (micro, the card's 57.2) and ours (macro), full BLiMP,
BLiMP-filtered and the supplement under ours, the held-out loss (nats per target token on the
data's validation file: the card's card_eval_A.txt.gz), that same loss the way the card's
transformers Trainer reported its 5.213 (heldout_loss_trainer below), steps, wall-clock and tokens/s;
for a run with ema_decay, its weight average's fast-set score and held-out loss (ema_*); then the mean
and sample standard deviation of each number over the seeds.
"""

import argparse
import gzip
import json
import os
import statistics
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from load import load_model  # noqa: E402
from data import pack  # noqa: E402
from report import read_log, run_summary  # noqa: E402

CARD_EVAL = os.path.join(os.environ.get("DATA_ROOT", "../shared/data"), "model_a_corpus", "card_eval_A.txt.gz")

# the card's numbers: its result file and losses.csv (the mean of its last four logs, steps 3,500-3,575)
CARD = {"blimp_fast_card_micro": 57.2, "heldout_loss_trainer": 5.213,
        "train_loss_last100_as_logged_by_4.46": 3.030, "steps": 3575}


def suite_total(path, suite, key):
    with open(path) as f:
        return 100 * json.load(f)["suites"][suite]["total"][key]


@torch.no_grad()
def heldout_loss_trainer(checkpoint, path=CARD_EVAL, batch_size=8, block_size=64):
    """The held-out loss as transformers' Trainer.evaluate reports it, which is how the card got 5.213:
    every line of the file is a sample (empty lines too), cut into pieces of <= block_size tokens, in
    file order, batch_size pieces a batch; each batch's loss is the mean over its own target tokens,
    and the reported loss is the mean of those batch means (weighted by pieces per batch), not the mean
    over all target tokens. Short lines (BNC, subtitles) come in batches with few tokens, and their
    low per-token loss then weighs more: on our runs this reads ~0.2 lower than the per-token mean.
    batch_size 8 is the Trainer's default per_device_eval_batch_size (the card's script does not set it)."""
    model, tokenizer = load_model(checkpoint)
    model.eval()
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")[:-1]  # the file ends with a newline
    pieces = []
    for ids in tokenizer.encode_batch(lines):
        pieces += [np.asarray(ids[i:i + block_size], np.int64) for i in range(0, max(len(ids), 1), block_size)]
    means, weights = [], []
    for i in range(0, len(pieces), batch_size):
        batch = [p for p in pieces[i:i + batch_size] if len(p) >= 2]  # the others have no target
        if not batch:
            raise SystemExit(f"{path}: batch {i // batch_size} has no target token (the Trainer would report NaN)")
        b = pack(batch, block_size)
        _, loss = model(b.x, b.y, positions=b.positions, mask=b.mask)
        means.append(loss.item())
        weights.append(len(pieces[i:i + batch_size]))
    return float(np.average(means, weights=weights))


def train_loss_end(run_dir, steps=100):
    """(our training loss over the last `steps` steps: the mean over target tokens, the same as the
    card's Trainer, which is transformers 4.46.3) and that loss as the card's log shows it. 4.46.3
    divides a step's summed loss by its labels before the shift, one per sample more than its
    targets (transformers PR #46204, 2026, fixed it), so its logged training loss is the true one
    times targets / (targets + samples); the card's recipe takes 64 samples a step."""
    train = [r for r in read_log(run_dir) if r["kind"] == "train"]
    last = [r["loss"] for r in train if r["iter"] > train[-1]["iter"] - steps]
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    samples_per_step = config["batch_size"] * config["grad_accum"] * config["world_size"]
    targets_per_step = train[-1]["tokens"] / train[-1]["iter"]
    mean = sum(last) / len(last)
    return mean, mean * targets_per_step / (targets_per_step + samples_per_step)


def weight_average(run_dir, result_dir):
    """A run with ema_decay: its weight average's fast-set score (the card's protocol) and held-out loss
    (the last evaluation's val_loss_ema); nothing for a run without one."""
    scored = os.path.join(result_dir, "blimp_fast_card_ema.json")
    if not os.path.isfile(scored):
        return {}
    last = [r for r in read_log(run_dir) if r["kind"] == "eval"][-1]["val_loss_ema"]
    return {"ema_blimp_fast_card_micro": suite_total(scored, "blimp", "micro"),
            "ema_heldout_loss": sum(last.values()) / len(last)}


def one_seed(run_dir, result_dir):
    s = run_summary(run_dir)
    full = os.path.join(result_dir, "blimp_ours.json")  # missing for a run scored with FULL=0
    return {
        "seed": int(os.path.basename(run_dir).removeprefix("seed")),
        "blimp_fast_card_micro": suite_total(os.path.join(result_dir, "blimp_fast_card.json"), "blimp", "micro"),
        "blimp_fast_ours_macro": suite_total(os.path.join(result_dir, "blimp_fast_ours.json"), "blimp", "macro"),
        **{f"{suite}_ours_macro": suite_total(full, suite, "macro") if os.path.isfile(full) else None
           for suite in ("blimp", "blimp_filtered", "blimp_supplement")},
        "heldout_loss": sum(s["final_val_loss"].values()) / len(s["final_val_loss"]),
        "heldout_loss_trainer": heldout_loss_trainer(os.path.join(run_dir, "ckpt.safetensors")),
        **dict(zip(("train_loss_last100", "train_loss_last100_as_logged_by_4.46"), train_loss_end(run_dir))),
        "steps": s["iterations"], "train_tokens_seen": s["tokens"],
        "wall_clock_s": s["wall_clock_s"], "tokens_per_s": s["mean_tok_per_s"],
        **weight_average(run_dir, result_dir),
        "machine": s["machine"],  # None: a run from before machine.py
    }


def rerun_command(seeds):
    """The run_model_a_card.sh command that makes these runs again: its settings reach us through the
    environment, except the seeds, which are those found (the runs may have been made a few at a time)."""
    settings = [f'{k}="{os.environ[k]}"' for k in ("EXTRA", "NAME", "FULL") if os.environ.get(k)]
    if seeds != [1, 2, 3]:  # the script's default
        settings.append(f'SEEDS="{" ".join(map(str, seeds))}"')
    return " ".join(settings + ["bash results/model_a_card/run_model_a_card.sh"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("runs", help="the folder of seed runs (out/model_a_card)")
    ap.add_argument("results", help="the folder of their eval results (results/model_a_card/model_a_card)")
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    seeds = sorted((d for d in os.listdir(a.runs) if d.startswith("seed")
                   and os.path.isfile(os.path.join(a.runs, d, "log.jsonl"))
                   and os.path.isfile(os.path.join(a.results, d, "blimp_fast_ours.json"))),
                   key=lambda d: int(d.removeprefix("seed")))
    if not seeds:
        raise SystemExit(f"{a.runs}: no finished and scored seed runs (seed1/, ...)")
    runs = [one_seed(os.path.join(a.runs, s), os.path.join(a.results, s)) for s in seeds]
    summary = {}
    for key in runs[0]:
        values = [r[key] for r in runs if r.get(key) is not None]
        if key not in ("seed", "machine") and values:
            summary[key] = {"mean": statistics.mean(values),
                            "sd": statistics.stdev(values) if len(values) > 1 else None}
    out = {"card": CARD, "runs": runs, "mean_sd": summary,
           "command": rerun_command([r["seed"] for r in runs])}
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    for key, v in summary.items():
        sd = f" ± {v['sd']:.3f}" if v["sd"] is not None else ""
        print(f"{key:<30} {v['mean']:.3f}{sd}" + (f"   (card {CARD[key]})" if key in CARD else ""))
    print(f"wrote {a.json} ({len(runs)} seed(s))")


if __name__ == "__main__":
    main()
