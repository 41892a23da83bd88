"""
Each variant's effect on a number (default: BLiMP's fast set under the card's protocol) against a base
row, with its spread, from the JSON files model_a_card.py writes.

    python results/model_a_card/compare.py results/model_a_card/model_a_card_r2_best.json \
        results/model_a_card/model_a_card_r2_*.json
    python results/model_a_card/compare.py BASE.json BASE.json --key ema_blimp_fast_card_micro   # the average

For each variant: the difference of the means, its standard error from the two rows' seed-to-seed
standard deviations (Welch: sqrt(sd_a^2/n_a + sd_b^2/n_b)), and the difference seed by seed where both
rows ran that seed (the same seed draws the same initial weights in both, and the same sample order where
the data and the batch are the same, so a seed's difference leaves out part of that seed's luck).
Verdict: "higher" or "lower" only where the difference is more than twice its standard error and every
shared seed moves the same way; otherwise "within the spread". With --key, the variant's number is that
key (e.g. ema_blimp_fast_card_micro: the weight average of the same runs) and the base's stays the default.
"""

import argparse
import json
import math
import os
import statistics


def seeds_of(path: str, key: str) -> dict:
    with open(path) as f:
        runs = json.load(f)["runs"]
    values = {run["seed"]: run[key] for run in runs if run.get(key) is not None}
    if not values:
        raise SystemExit(f"{path}: no run has {key}")
    return values


def compare(base: dict, variant: dict) -> dict:
    mean_a, mean_b = statistics.mean(base.values()), statistics.mean(variant.values())
    # a row with one seed has no spread of its own: then the other row's stands for both
    sd_a = statistics.stdev(base.values()) if len(base) > 1 else None
    sd_b = statistics.stdev(variant.values()) if len(variant) > 1 else None
    sd_a, sd_b = sd_a if sd_a is not None else sd_b, sd_b if sd_b is not None else sd_a
    se = math.sqrt(sd_a ** 2 / len(base) + sd_b ** 2 / len(variant)) if sd_a is not None else float("nan")
    paired = {seed: variant[seed] - base[seed] for seed in sorted(base.keys() & variant.keys())}
    diff = mean_b - mean_a
    same_way = paired and (all(d > 0 for d in paired.values()) or all(d < 0 for d in paired.values()))
    verdict = ("higher" if diff > 0 else "lower") if abs(diff) > 2 * se and same_way else "within the spread"
    return {"base": mean_a, "variant": mean_b, "difference": diff, "standard_error": se, "by_seed": paired,
            "verdict": verdict}


def main():
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("base", help="the base row's JSON (model_a_card.py --json)")
    ap.add_argument("variants", nargs="+", help="the variants' JSON files")
    ap.add_argument("--key", default="blimp_fast_card_micro", help="the variants' number (the base's: the default)")
    args = ap.parse_args()
    for path in [args.base, *args.variants]:
        if not os.path.isfile(path):
            raise SystemExit(f"{path}: no such file")
    base = seeds_of(args.base, "blimp_fast_card_micro")
    print(f"| variant | {args.key} | base | difference ± standard error | by seed | verdict |")
    print("|---|---|---|---|---|---|")
    for path in args.variants:
        if path == args.base and args.key == "blimp_fast_card_micro":
            continue  # a glob of the variants may include the base
        c = compare(base, seeds_of(path, args.key))
        by_seed = ", ".join(f"{seed}: {d:+.2f}" for seed, d in c["by_seed"].items()) or "no shared seed"
        print(f"| {os.path.basename(path).removesuffix('.json')} | {c['variant']:.2f} | {c['base']:.2f} | "
              f"{c['difference']:+.2f} ± {c['standard_error']:.2f} | {by_seed} | {c['verdict']} |")


if __name__ == "__main__":
    main()
