"""
Collect the Model A card-reproduction runs into one JSON (results/run_model_a_card.sh calls this).

    python results/model_a_card.py out/model_a_card results/model_a_card --json results/model_a_card.json

For each seed folder OUT/seedN (a train.py run) and RESULTS/seedN (its eval_blimp.py results):
BLiMP's fast set under the card's protocol (micro, the card's 57.2) and ours (macro), full BLiMP,
BLiMP-filtered and the supplement under ours, the held-out loss (nats per target token on the
data's validation file: the card's card_eval_A.txt.gz, card 5.213), steps, wall-clock and tokens/s;
then the mean and sample standard deviation of each number over the seeds.
"""

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from report import run_summary  # noqa: E402

CARD = {"blimp_fast_card_micro": 57.2, "heldout_loss": 5.213, "steps": 3575}


def suite_total(path, suite, key):
    with open(path) as f:
        return 100 * json.load(f)["suites"][suite]["total"][key]


def one_seed(run_dir, result_dir):
    s = run_summary(run_dir)
    return {
        "seed": int(os.path.basename(run_dir).removeprefix("seed")),
        "blimp_fast_card_micro": suite_total(os.path.join(result_dir, "blimp_fast_card.json"), "blimp", "micro"),
        "blimp_fast_ours_macro": suite_total(os.path.join(result_dir, "blimp_fast_ours.json"), "blimp", "macro"),
        "blimp_ours_macro": suite_total(os.path.join(result_dir, "blimp_ours.json"), "blimp", "macro"),
        "blimp_filtered_ours_macro": suite_total(os.path.join(result_dir, "blimp_ours.json"), "blimp_filtered", "macro"),
        "blimp_supplement_ours_macro": suite_total(os.path.join(result_dir, "blimp_ours.json"), "blimp_supplement", "macro"),
        "heldout_loss": sum(s["final_val_loss"].values()) / len(s["final_val_loss"]),
        "steps": s["iterations"], "train_tokens_seen": s["tokens"],
        "wall_clock_s": s["wall_clock_s"], "tokens_per_s": s["mean_tok_per_s"],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("runs", help="the folder of seed runs (out/model_a_card)")
    ap.add_argument("results", help="the folder of their eval results (results/model_a_card)")
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    seeds = sorted(d for d in os.listdir(a.runs) if d.startswith("seed")
                   and os.path.isfile(os.path.join(a.runs, d, "log.jsonl"))
                   and os.path.isfile(os.path.join(a.results, d, "blimp_ours.json")))
    if not seeds:
        raise SystemExit(f"{a.runs}: no finished and scored seed runs (seed1/, ...)")
    runs = [one_seed(os.path.join(a.runs, s), os.path.join(a.results, s)) for s in seeds]
    summary = {}
    for key in runs[0]:
        if key != "seed" and runs[0][key] is not None:
            values = [r[key] for r in runs]
            summary[key] = {"mean": statistics.mean(values),
                            "sd": statistics.stdev(values) if len(values) > 1 else None}
    out = {"card": CARD, "runs": runs, "mean_sd": summary,
           "command": "bash results/run_model_a_card.sh"}
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    for key, v in summary.items():
        sd = f" ± {v['sd']:.3f}" if v["sd"] is not None else ""
        print(f"{key:<30} {v['mean']:.3f}{sd}" + (f"   (card {CARD[key]})" if key in CARD else ""))
    print(f"wrote {a.json} ({len(runs)} seed(s))")


if __name__ == "__main__":
    main()
