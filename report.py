"""
Plot and summarise training runs from their log.jsonl files.

    python report.py out/model_a --png results/model_a/model_a_loss.png --json results/model_a/model_a_train.json
    python report.py runs/a runs/b --png compare.png          # several runs on one plot
    python report.py runs/taam --mixer-png runs/taam/mixer.png   # a mixer run: pi, loss, epochs
    python report.py --study runs/taam_cpu/uniform runs/taam_cpu/taam_v2 ... \
        --json results/taam/taam_study.json --png results/taam/taam_study.png   # the TAAM study (README, Results II)

The PNG shows training loss and held-out loss (per language) against tokens seen. The JSON holds
what the README's results tables quote: final training and held-out losses, tokens, wall-clock,
mean tokens/s. --mixer-png draws a mixer run's pi (solid) and the pi actually sampled once a language
reached its epoch cap (dotted), its held-out loss and its epochs per language against the step.
(matplotlib is needed for the plots only.)

--study takes one folder per mixing variant, each holding one run folder per seed (seed1/, seed2/,
...), each with its log.jsonl and the minimal_pairs.json that eval_blimp.py --out wrote. It prints
a Markdown table of the final pi, the exposures per language, the held-out losses and the minimal-pair
accuracies, each the mean over seeds (+- the sample standard deviation when there are several), and
plots pi and held-out loss over training, one row per variant.
"""

import argparse
import json
import os

from atomic import check_output, write_json


def read_log(run_dir):
    path = os.path.join(run_dir, "log.jsonl")
    if not os.path.isfile(path):
        raise SystemExit(f"{path}: no log (is {run_dir} a train.py run folder?)")
    records = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    raise SystemExit(f"{path}:{n}: not a JSON record")
                if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
                    raise SystemExit(f"{path}:{n}: not a train.py log record (no 'kind')")
                records.append(record)
    except UnicodeDecodeError:
        raise SystemExit(f"{path}: not a text file (not UTF-8); a train.py log is JSON lines")
    except OSError as e:
        raise SystemExit(f"{path}: cannot read the log ({e.strerror or e})")
    return records


def run_summary(run_dir):
    """The numbers the results tables quote, from the last run in the log (a resumed run appends;
    records are kept in iteration order)."""
    records = read_log(run_dir)
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    if not train or not evals:
        raise SystemExit(f"{run_dir}/log.jsonl: no training or evaluation records yet")
    rates = [r["tok_per_s"] for r in train if r.get("tok_per_s")]
    try:
        with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"{os.path.join(run_dir, 'config.json')}: not a readable run config ({type(e).__name__})")
    if not isinstance(config, dict):
        raise SystemExit(f"{os.path.join(run_dir, 'config.json')}: not a run config (a JSON object)")
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
        "machine": config.get("machine"),  # CPU and instruction set or GPU, threads, torch (runs since 2026-12-07)
    }


def pyplot(program: str = "report.py"):
    """matplotlib's pyplot, drawing to files only; one line naming program when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")  # files only, no window
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit(f"{program}: --png needs matplotlib (pip install matplotlib)")
    return plt


def plot(run_dirs, png):
    plt = pyplot()
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
    return save_png(fig, png, dpi=120)


def mixer_plot(run_dir, png):
    """One mixer run, against the step: pi per language (solid), the pi sampled (dotted: a language
    past its epoch cap is drawn no more) and the structural floor; held-out loss; epochs."""
    records = read_log(run_dir)
    mixer = [r for r in records if r["kind"] == "mixer"]
    evals = [r for r in records if r["kind"] == "eval"]
    if not mixer:
        raise SystemExit(f"{run_dir}/log.jsonl: no mixer records (\"kind\": \"mixer\"); "
                         f"was the run trained with a mixer?")
    plt = pyplot()
    steps = [r["iter"] for r in mixer]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for j, lang in enumerate(mixer[0]["pi"]):
        axes[0].plot(steps, [r["pi"][lang] for r in mixer], color=f"C{j}", label=lang)
        axes[0].plot(steps, [r["pi_sample"][lang] for r in mixer], ":", color=f"C{j}")
        axes[1].plot([e["iter"] for e in evals], [e["val_loss"][lang] for e in evals], color=f"C{j}", label=lang)
        axes[2].plot(steps, [r["epochs"][lang] for r in mixer], color=f"C{j}", label=lang)
    first = mixer[0]
    if first["floor"]:
        axes[0].axhline(first["floor"], color="grey", ls="--", lw=1, label="floor")
    update = "static" if first["mixer"] == "static" else f"{first['mixer']}, {first['reward_kind']}"
    axes[0].set_title(f"π ({update}); dotted: π sampled")
    axes[1].set_title("held-out loss (nats/token)")
    axes[2].set_title("epochs of unique tokens")
    for ax in axes:
        ax.set_xlabel("step")
        ax.legend()
        ax.grid(alpha=0.3)
    return save_png(fig, png, dpi=120)


def save_png(fig, png, dpi):
    fig.tight_layout()
    os.makedirs(os.path.dirname(png) or ".", exist_ok=True)
    fig.savefig(png, dpi=dpi)
    pyplot().close(fig)
    return png


# ----------------------------------------------------------------------------- the TAAM study

STUDY_SUITES = {"blimp": "BLiMP", "blimp_nl": "BLiMP-NL", "zhoblimp": "ZhoBLiMP"}


def study_run(run_dir):
    """The numbers of one seed's run: final pi, exposure shares, held-out losses, minimal pairs."""
    records = read_log(run_dir)
    mixer = [r for r in records if r["kind"] == "mixer"]
    evals = [r for r in records if r["kind"] == "eval"]
    if not mixer or not evals:
        raise SystemExit(f"{run_dir}/log.jsonl: no mixer or evaluation records (a run with a mixer?)")
    last = mixer[-1]
    total = sum(last["exposures"].values())
    out = {"run": run_dir, "mixer": last["mixer"], "reward": last["reward_kind"] if last["mixer"] != "static" else None,
           "steps": last["step"], "floor": last.get("floor"), "pi": last["pi"], "exposure_share": {l: n / total for l, n in last["exposures"].items()},
           "epochs": last["epochs"], "val_loss": evals[-1]["val_loss"],
           "pi_curve": [(r["step"], r["pi"]) for r in mixer],
           "loss_curve": [(r["iter"], r["val_loss"]) for r in evals]}
    path = os.path.join(run_dir, "minimal_pairs.json")
    if os.path.isfile(path):
        with open(path) as f:
            suites = json.load(f)["suites"]
        out["minimal_pairs"] = {k: suites[k]["total"]["macro"] for k in STUDY_SUITES if k in suites}
    return out


def mean_sd(values):
    m = sum(values) / len(values)
    sd = (sum((v - m) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else None
    return {"mean": m, "sd": sd}


def study(variant_dirs):
    """{variant: {"seeds", "mixer", "reward", and mean/sd over seeds of every number}}."""
    result = {}
    for vdir in variant_dirs:
        seeds = sorted(d for d in os.listdir(vdir) if os.path.isfile(os.path.join(vdir, d, "log.jsonl")))
        if not seeds:
            raise SystemExit(f"{vdir}: no run folders (seed1/, seed2/ ... with a log.jsonl)")
        runs = [study_run(os.path.join(vdir, s)) for s in seeds]
        langs = list(runs[0]["pi"])
        v = {"seeds": seeds, "mixer": runs[0]["mixer"], "reward": runs[0]["reward"], "steps": runs[0]["steps"],
             "floor": runs[0]["floor"]}
        for key in ("pi", "exposure_share", "epochs", "val_loss"):
            v[key] = {l: mean_sd([r[key][l] for r in runs]) for l in langs}
        v["val_loss_mean"] = mean_sd([sum(r["val_loss"].values()) / len(langs) for r in runs])
        if all("minimal_pairs" in r for r in runs):
            v["minimal_pairs"] = {k: mean_sd([r["minimal_pairs"][k] for r in runs])
                                  for k in runs[0]["minimal_pairs"]}
        v["curves"] = [{"pi": r["pi_curve"], "val_loss": r["loss_curve"]} for r in runs]
        result[os.path.basename(os.path.normpath(vdir))] = v
    return result


def study_table(result):
    """The README's Markdown table: means over seeds (+- sd)."""
    def fmt(x, scale=1.0, digits=3):
        s = f"{scale * x['mean']:.{digits}f}"
        return s + (f" ± {scale * x['sd']:.{digits}f}" if x["sd"] is not None else "")

    first = next(iter(result.values()))
    langs = list(first["pi"])
    suites = [k for k in STUDY_SUITES if k in first.get("minimal_pairs", {})]
    head = (["variant", "update", "final π (" + " / ".join(langs) + ")", "exposures %"]
            + [f"held-out loss {l}" for l in langs] + ["mean loss"] + [f"{STUDY_SUITES[k]} %" for k in suites])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, v in result.items():
        update = v["mixer"] if v["mixer"] == "static" else f"{v['mixer']} ({v['reward']})"
        row = [name, update, " / ".join(f"{v['pi'][l]['mean']:.3f}" for l in langs),
               " / ".join(f"{100 * v['exposure_share'][l]['mean']:.0f}" for l in langs)]
        row += [fmt(v["val_loss"][l]) for l in langs] + [fmt(v["val_loss_mean"])]
        row += [fmt(v["minimal_pairs"][k], 100, 1) for k in suites]
        lines.append("| " + " | ".join(row) + " |")
    n_seeds = sorted({len(v["seeds"]) for v in result.values()})
    lines.append(f"\n{'/'.join(map(str, n_seeds))} seed(s) per variant; ± is the standard deviation over seeds.")
    return "\n".join(lines)


def study_plot(result, png):
    plt = pyplot()
    names = list(result)
    fig, axes = plt.subplots(len(names), 2, figsize=(11, 2.6 * len(names)), sharex=True, squeeze=False)
    for row, name in enumerate(names):
        v = result[name]
        langs = list(v["pi"])
        for k, curves in enumerate(v["curves"]):  # every seed; the first one labelled
            for j, l in enumerate(langs):
                kw = dict(color=f"C{j}", lw=1.2, alpha=1.0 if k == 0 else 0.35, label=l if k == 0 else None)
                axes[row, 0].plot([s for s, _ in curves["pi"]], [p[l] for _, p in curves["pi"]], **kw)
                axes[row, 1].plot([s for s, _ in curves["val_loss"]], [x[l] for _, x in curves["val_loss"]], **kw)
        if v["floor"]:
            axes[row, 0].axhline(v["floor"], color="grey", ls="--", lw=0.8)
        update = "static" if v["mixer"] == "static" else f"{v['mixer']}, {v['reward']}"
        axes[row, 0].set_ylabel(f"{name}\n({update})", fontsize=8)
        axes[row, 0].set_ylim(0, 1)
        axes[row, 1].set_ylim(bottom=min(min(x.values()) for c in v["curves"] for _, x in c["val_loss"][1:]) - 0.2,
                              top=max(max(x.values()) for c in v["curves"] for _, x in c["val_loss"][2:]) + 0.3)
        for ax in axes[row]:
            ax.grid(alpha=0.3)
        axes[row, 0].legend(fontsize=7, loc="upper left", ncol=len(langs))
    axes[0, 0].set_title("π (sampling probability); dashed: the structural floor")
    axes[0, 1].set_title("held-out loss (nats/token)")
    axes[-1, 0].set_xlabel("step")
    axes[-1, 1].set_xlabel("step")
    return save_png(fig, png, dpi=110)


def main(argv=None):
    try:
        report(argv)
    except OSError as e:  # a full disk or a read-only file system while writing the JSON or a plot
        raise SystemExit(f"report.py: cannot write {e.filename or 'the output'} ({e.strerror or e})")


def report(argv=None):
    p = argparse.ArgumentParser(description="Plot and summarise train.py runs.")
    p.add_argument("runs", nargs="+", help="run folders (with --study: one folder of seed runs per variant)")
    p.add_argument("--png", help="write the loss plot here")
    p.add_argument("--json", help="write the summary here")
    p.add_argument("--mixer-png", help="write the mixer plot of one run here (pi, held-out loss, epochs)")
    p.add_argument("--study", action="store_true", help="summarise a TAAM study (see the docstring)")
    args = p.parse_args(argv)
    inputs = [os.path.join(r, name) for r in args.runs for name in ("log.jsonl", "config.json")]
    for flag, out in (("--json", args.json), ("--png", args.png), ("--mixer-png", args.mixer_png)):
        if out:
            check_output(out, inputs, flag)
    if args.mixer_png and (args.study or len(args.runs) != 1):
        raise SystemExit("report.py: --mixer-png draws one run: give one run folder, without --study")
    if args.study:
        result = study(args.runs)
        print(study_table(result))
        if args.json:
            os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
            write_json(args.json, {k: {kk: vv for kk, vv in v.items() if kk != "curves"} for k, v in result.items()},
                       indent=1)
        if args.png:
            print("wrote", study_plot(result, args.png))
        return
    summaries = [run_summary(r) for r in args.runs]
    print(json.dumps(summaries if len(summaries) > 1 else summaries[0], indent=2))
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        write_json(args.json, summaries if len(summaries) > 1 else summaries[0], indent=2)
    if args.png:
        print("wrote", plot(args.runs, args.png))
    if args.mixer_png:
        print("wrote", mixer_plot(args.runs[0], args.mixer_png))


if __name__ == "__main__":
    main()
