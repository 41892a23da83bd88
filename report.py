"""
Plot and summarise training runs from their log.jsonl files.

    python report.py out/model_a --png results/model_a_loss.png --json results/model_a_train.json
    python report.py runs/a runs/b --png compare.png          # several runs on one plot

The PNG shows training loss and held-out loss (per language) against tokens seen. The JSON holds
what the README's results tables quote: final training and held-out losses, tokens, wall-clock,
mean tokens/s. (matplotlib is needed for --png only.)
"""

import argparse
import json
import os


def read_log(run_dir):
    path = os.path.join(run_dir, "log.jsonl")
    if not os.path.isfile(path):
        raise SystemExit(f"{path}: no log (is {run_dir} a train.py run folder?)")
    records = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise SystemExit(f"{path}:{n}: not a JSON record")
    return records


def summarise(run_dir):
    """The last run in the log (a resumed run appends; records are kept in iteration order)."""
    records = read_log(run_dir)
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    if not train or not evals:
        raise SystemExit(f"{run_dir}/log.jsonl: no training or evaluation records yet")
    rates = [r["tok_per_s"] for r in train if r.get("tok_per_s")]
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    return {
        "run": run_dir,
        "iterations": train[-1]["iter"],
        "tokens": train[-1]["tokens"],
        "words": train[-1].get("words"),
        "final_train_loss": train[-1]["loss"],
        "final_val_loss": evals[-1]["val_loss"],
        "best_val_loss_mean": min(e["val_loss_mean"] for e in evals),
        "mean_tok_per_s": sum(rates) / len(rates) if rates else None,
        "wall_clock_s": sum(r.get("seconds", 0) for r in train) or None,
        "device": config.get("device_resolved"), "dtype": config.get("dtype_resolved"),
    }


def plot(run_dirs, png):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("report.py: --png needs matplotlib (pip install matplotlib)")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, run in enumerate(run_dirs):
        records = read_log(run)
        color = f"C{i}"
        name = os.path.basename(os.path.normpath(run))
        train = [r for r in records if r["kind"] == "train"]
        ax.plot([r["tokens"] / 1e6 for r in train], [r["loss"] for r in train], color=color, alpha=0.5, lw=1,
                label=f"{name} train")
        evals = [r for r in records if r["kind"] == "eval"]
        for j, lang in enumerate(sorted(evals[0]["val_loss"]) if evals else []):
            ax.plot([e["tokens"] / 1e6 for e in evals], [e["val_loss"][lang] for e in evals], color=color,
                    ls=["-", "--", ":", "-."][j % 4], marker="o", ms=3, label=f"{name} held-out {lang}")
    ax.set_xlabel("tokens seen (millions)")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(png) or ".", exist_ok=True)
    fig.savefig(png, dpi=120)
    return png


def main():
    p = argparse.ArgumentParser(description="Plot and summarise train.py runs.")
    p.add_argument("runs", nargs="+")
    p.add_argument("--png", help="write the loss plot here")
    p.add_argument("--json", help="write the summary here")
    args = p.parse_args()
    summaries = [summarise(r) for r in args.runs]
    print(json.dumps(summaries if len(summaries) > 1 else summaries[0], indent=2))
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(summaries if len(summaries) > 1 else summaries[0], f, indent=2)
    if args.png:
        print("wrote", plot(args.runs, args.png))


if __name__ == "__main__":
    main()
