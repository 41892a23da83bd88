"""
How BLiMP follows the held-out loss across runs of one vocabulary: every seed of every row given is a
point (its held-out loss the card's Trainer way, its BLiMP fast-set score under the card's protocol),
a least-squares line through them, its correlation, and the held-out loss at which the line reaches a
target score. A loss per token depends on the vocabulary, so give rows of one tokenizer only.

    R=results/model_a_card
    python $R/heldout_vs_blimp.py $R/model_a_card_3ep_8k*.json $R/model_a_card_lever_[!4]*.json \
        $R/model_a_card_r2_*.json --target 60 --json $R/heldout_vs_blimp.json --png $R/heldout_vs_blimp.png

The line is a description across recipes, not a law: a lever can move BLiMP without the loss (or the
reverse). Its use is to read a row's held-out loss, which the seeds agree on to ~0.02 while BLiMP
varies by 0.3-0.8 points between them, as the BLiMP the other rows' recipes got at that loss.
"""

import argparse
import json
import os

import numpy as np

from compare import read_runs  # results/model_a_card/compare.py, beside this file

HELDOUT, BLIMP = "heldout_loss_trainer", "blimp_fast_card_micro"


def points_of(paths: list) -> list:
    """[(row name, seed, held-out loss, BLiMP)] for every run of every file that has both numbers."""
    points = []
    for path in paths:
        name = os.path.basename(path).removesuffix(".json")
        points += [(name, r["seed"], r[HELDOUT], r[BLIMP]) for r in read_runs(path)
                   if r.get(HELDOUT) is not None and r.get(BLIMP) is not None]
    return points


def fit(loss: np.ndarray, blimp: np.ndarray, target: float) -> dict:
    """blimp ~ intercept + slope * loss by least squares; r; the loss where the line gives target."""
    if len(loss) < 3:
        raise SystemExit(f"heldout_vs_blimp.py: {len(loss)} runs: a line through fewer than 3 says nothing")
    slope, intercept = np.polyfit(loss, blimp, 1)
    residuals = blimp - (intercept + slope * loss)
    return {"runs": len(loss), "slope_points_per_nat": float(slope), "intercept": float(intercept),
            "r": float(np.corrcoef(loss, blimp)[0, 1]),
            "residual_sd": float(np.sqrt((residuals ** 2).sum() / (len(loss) - 2))),  # 2 parameters fitted
            "target": target, "heldout_at_target": float((target - intercept) / slope)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("rows", nargs="+", help="model_a_card.py JSON files, all of one vocabulary")
    ap.add_argument("--target", type=float, default=60.0, help="the BLiMP score to read the line at")
    ap.add_argument("--json", help="write the fit and the points here")
    ap.add_argument("--png", help="draw the points and the line here")
    args = ap.parse_args()
    points = points_of(args.rows)
    loss, blimp = np.array([p[2] for p in points]), np.array([p[3] for p in points])
    result = fit(loss, blimp, args.target)
    print(f"{result['runs']} runs: BLiMP = {result['intercept']:.1f} {result['slope_points_per_nat']:+.1f} x held-out, "
          f"r = {result['r']:.2f}, residual sd {result['residual_sd']:.2f} points; the line reaches {args.target:g} "
          f"at held-out {result['heldout_at_target']:.3f} (the lowest so far: {loss.min():.3f})")
    if args.json:
        result["points"] = [{"row": n, "seed": s, HELDOUT: h, BLIMP: b} for n, s, h, b in points]
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    if args.png:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(8, 5))
        colours = plt.get_cmap("tab20").colors
        for i, name in enumerate(dict.fromkeys(p[0] for p in points)):  # one colour and marker a row, in order
            mine = [p for p in points if p[0] == name]
            ax.scatter([p[2] for p in mine], [p[3] for p in mine], s=24, color=colours[i % 20], marker="os^D"[i // 20 % 4],
                       label=name.removeprefix("model_a_card_"))
        xs = np.linspace(min(loss.min(), result["heldout_at_target"]) - 0.01, loss.max() + 0.01, 2)
        ax.plot(xs, result["intercept"] + result["slope_points_per_nat"] * xs, "k--", lw=1,
                label=f"fit, r = {result['r']:.2f}")
        ax.axhline(args.target, color="grey", lw=0.5)
        ax.set_xlabel("held-out loss (the card's Trainer way)")
        ax.set_ylabel("BLiMP fast set, card's protocol (micro, %)")
        ax.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        fig.savefig(args.png, dpi=120)


if __name__ == "__main__":
    main()
