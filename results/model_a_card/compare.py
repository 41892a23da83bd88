"""
Each variant's effect on a number (default: BLiMP's fast set under the card's protocol) against a base
row, with its spread, from the JSON files model_a_card.py writes.

    python results/model_a_card/compare.py results/model_a_card/model_a_card_r2_best.json \
        results/model_a_card/model_a_card_r2_*.json
    python results/model_a_card/compare.py BASE.json BASE.json --key ema_blimp_fast_card_micro   # the average

For each variant: the difference of the means and its standard error, sd * sqrt(1/n_base + 1/n_variant),
where sd is the seed-to-seed standard deviation pooled over every row given, --pool's too (each row's variance
weighted by its seeds less one, as in a one-way ANOVA): one row's two seeds say little about the spread
(two seeds that happen to agree would make any difference look real), while the spread is about the
same for every row of one study. Then the difference seed by seed where both rows ran that seed (the
same seed draws the same initial weights in both, and the same sample order where the data and the
batch are the same). Verdict: "higher" or "lower" only where the difference is beyond the two-sided 95%
critical value of Student's t for the pooled sd's degrees of freedom times the standard error (4.30 of
them with 2 degrees of freedom, 2.10 with 18, 1.96 with many: an sd estimated from few seeds is itself
uncertain, so a small one must not make a difference look real) and every shared seed moves the same
way; otherwise "within the spread". With --key, the variant's number is that key (e.g.
ema_blimp_fast_card_micro: the weight average of the same runs) and the base's stays the default.
"""

import argparse
import json
import math
import os
import statistics


def read_runs(path: str) -> list:
    """The runs of a model_a_card.py JSON file (one dict a seed)."""
    if not os.path.isfile(path):
        raise SystemExit(f"{path}: no such file")
    with open(path) as f:
        return json.load(f)["runs"]


def seeds_of(path: str, key: str) -> dict:
    runs = read_runs(path)
    values = {run["seed"]: run[key] for run in runs if run.get(key) is not None}
    if not values:
        raise SystemExit(f"{path}: no run has {key}")
    return values


# Student's t, two-sided 95% (the 0.975 quantile), by degrees of freedom: a textbook table
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
         20: 2.086, 25: 2.060, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}


def t_975(freedom: int) -> float:
    """The table's value at the largest tabled df <= freedom (so never smaller than the exact one); 1.96 past 120."""
    return 1.96 if freedom > 120 else T_975[max(df for df in T_975 if df <= freedom)]


def pooled_sd(rows: list) -> tuple:
    """(sd, degrees of freedom): the seed-to-seed standard deviation pooled over rows ({seed: value} each;
    rows of one seed add nothing)."""
    squares = sum(statistics.variance(r.values()) * (len(r) - 1) for r in rows if len(r) > 1)
    freedom = sum(len(r) - 1 for r in rows)
    if freedom == 0:
        raise SystemExit("compare.py: no row has two seeds: no spread to compare against")
    return math.sqrt(squares / freedom), freedom


def compare(base: dict, variant: dict, sd: float, freedom: int) -> dict:
    mean_a, mean_b = statistics.mean(base.values()), statistics.mean(variant.values())
    se = sd * math.sqrt(1 / len(base) + 1 / len(variant))
    paired = {seed: variant[seed] - base[seed] for seed in sorted(base.keys() & variant.keys())}
    diff = mean_b - mean_a
    same_way = paired and (all(d > 0 for d in paired.values()) or all(d < 0 for d in paired.values()))
    beyond = abs(diff) > t_975(freedom) * se
    verdict = ("higher" if diff > 0 else "lower") if beyond and same_way else "within the spread"
    return {"base": mean_a, "variant": mean_b, "difference": diff, "standard_error": se, "by_seed": paired,
            "verdict": verdict}


def main():
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("base", help="the base row's JSON (model_a_card.py --json)")
    ap.add_argument("variants", nargs="+", help="the variants' JSON files")
    ap.add_argument("--key", default="blimp_fast_card_micro", help="the variants' number (the base's: the default)")
    ap.add_argument("--pool", nargs="+", default=[], metavar="JSON",
                    help="more rows of the same study whose seeds count in the pooled sd (not compared)")
    args = ap.parse_args()
    base = seeds_of(args.base, "blimp_fast_card_micro")
    variants = {path: seeds_of(path, args.key) for path in args.variants
                if not (path == args.base and args.key == "blimp_fast_card_micro")}  # a glob may include the base
    if not variants:
        raise SystemExit("compare.py: no variant besides the base")
    pool = [base, *variants.values(), *(seeds_of(path, "blimp_fast_card_micro") for path in args.pool
                                        if path != args.base and path not in variants)]
    sd, freedom = pooled_sd(pool)
    print(f"seed-to-seed standard deviation, pooled over {len(pool)} rows: {sd:.2f} ({freedom} degrees of freedom: "
          f"a difference counts beyond {t_975(freedom):.2f} standard errors)\n")
    print(f"| variant | {args.key} | base | difference ± standard error | by seed | verdict |")
    print("|---|---|---|---|---|---|")
    for path, values in variants.items():
        c = compare(base, values, sd, freedom)
        by_seed = ", ".join(f"{seed}: {d:+.2f}" for seed, d in c["by_seed"].items()) or "no shared seed"
        print(f"| {os.path.basename(path).removesuffix('.json')} | {c['variant']:.2f} | {c['base']:.2f} | "
              f"{c['difference']:+.2f} ± {c['standard_error']:.2f} | {by_seed} | {c['verdict']} |")


if __name__ == "__main__":
    main()
