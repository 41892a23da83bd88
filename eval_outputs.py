"""
What eval_blimp.py writes besides its tables: the per-pair files, the BabyLM pipeline's results tree,
the totals (--out), and the learning curve over every milestone of a run (--all-checkpoints).

    python eval_blimp.py out/model_a/ckpt.safetensors --predictions pairs.jsonl  # every pair's two scores
    python eval_blimp.py out/model_a/ckpt.safetensors --suite blimp_filtered,blimp_supplement \\
        --babylm-predictions babylm_preds.json                              # for a BabyLM submission
    python eval_blimp.py out/model_a --all-checkpoints --suite blimp_filtered,blimp_supplement --fast \\
        --out curve.json --png curve.png --babylm-results results           # every milestone

eval_blimp.py scores; this file lays out what the scores become, and never scores itself, so the
import goes one way: eval_blimp.evaluate writes a suite's per-pair files with the helpers here, and
eval_blimp.main hands learning_curve a function that scores one checkpoint.

Per pair: --predictions is one JSON line per pair (prediction_lines, written by write_jsonl);
--babylm-predictions is the minimal-pair part of a BabyLM submission (babylm_task, pairs named by
pair_ids, as babylm/evaluation-pipeline-2025 names them); --babylm-results puts each task's part
where that pipeline's own runs put it (babylm_results_file, BABYLM_FOLDERS), one revision a
checkpoint (revision_dir).

Every milestone: checkpoints_of lists a run folder's checkpoints/chck_{N}M.safetensors in order of
N, then its ckpt.safetensors as "main"; learning_curve scores each and prints (format_curve), writes
(--out) and plots (--png, plot_curve) words seen against each suite's headline. Before any scoring,
main checks that no output is an input (check_outputs_are_not_inputs) and that each can be a file
(check_writable): a bad path costs one line, not minutes of scoring first.
"""

import gzip
import json
import os
import re
import sys

from tqdm import tqdm

from atomic import atomic_path, check_output, write_json
from checkpoint import CHECKPOINT_FILE, read_info
from pairs import SUITES, suite_files
from report import pyplot


# ---------------------------------------------------------------------------- per-pair outputs

# suite -> its key in a BabyLM predictions file (babylm/evaluation-pipeline-2025, collate_preds.py)
BABYLM_TASKS = {"blimp_filtered": "blimp", "blimp_supplement": "blimp_supplement"}
# suite -> its folder in the pipeline's results tree, (full set, fast set). The pipeline (commit
# 20658672cca5) writes RESULTS/<model>/<revision>/zero_shot/<backend>/<task>/<data folder>/predictions.json
# (sentence_zero_shot/run.py: the data folder's name, task "blimp" for both suites) and
# collate_preds.py reads blimp/{blimp_filtered,supplement_filtered} (main) and
# blimp/{blimp_fast,supplement_fast} (each milestone, with --fast) from there.
BABYLM_FOLDERS = {"blimp_filtered": ("blimp_filtered", "blimp_fast"),
                  "blimp_supplement": ("supplement_filtered", "supplement_fast")}
BABYLM_BACKEND = "causal"


def babylm_results_file(revision_dir: str, suite: str, fast: bool) -> str:
    """Where the pipeline looks for a suite's predictions under RESULTS/<model>/<revision>."""
    return os.path.join(revision_dir, "zero_shot", BABYLM_BACKEND, "blimp", BABYLM_FOLDERS[suite][fast],
                        "predictions.json")


def pair_ids(pairs) -> list:
    """"{paradigm}_{k}" for the k-th pair (from 0) of its paradigm in file order: BabyLM's pair id."""
    seen, ids = {}, []
    for p in pairs:
        k = seen.get(p["paradigm"], 0)
        seen[p["paradigm"]] = k + 1
        ids.append(f"{p['paradigm']}_{k}")
    return ids


def prediction_lines(suite: str, pairs, good_scores, bad_scores, credits) -> list:
    """One --predictions line per pair."""
    return [{"suite": suite, "paradigm": p["paradigm"], "id": pair_id, "file": p["file"], "line": p["line"],
             "good": p["good"], "bad": p["bad"], "score_good": float(g), "score_bad": float(b), "credit": float(c)}
            for p, pair_id, g, b, c in zip(pairs, pair_ids(pairs), good_scores, bad_scores, credits)]


def babylm_task(pairs, good_scores, bad_scores) -> dict:
    """One task of a BabyLM predictions file: {UID: {"predictions": [{"id": "UID_k", "pred": sentence}]}},
    the sentence the model prefers, the good one on a tie (the pipeline's argmax takes the first of
    equal scores)."""
    out = {}
    for p, pair_id, g, b in zip(pairs, pair_ids(pairs), good_scores, bad_scores):
        preferred = p["good"] if g >= b else p["bad"]
        out.setdefault(p["paradigm"], {"predictions": []})["predictions"].append({"id": pair_id, "pred": preferred})
    return out


def write_jsonl(path: str, lines):
    """A JSONL file (gzip'd if path ends in .gz), written atomically."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    opener = gzip.open if path.endswith(".gz") else open
    with atomic_path(path) as tmp, opener(tmp, "wt", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------------------- the totals

def write_out(path: str, result: dict):
    """--out: the result (with --all-checkpoints, the curve) as JSON; a write that fails is one line."""
    if not path:
        return
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        write_json(path, result, indent=1, ensure_ascii=False)
    except OSError as e:  # a full disk, a read-only file system: the scores were printed above
        raise SystemExit(f"--out {path}: cannot write the results ({e.strerror or e}); the scores are printed above")
    print(f"wrote {path}")


# ------------------------------------------------------------------- every milestone of a run

MILESTONE_FILE = re.compile(r"^chck_(?:tok_)?(\d+(?:\.\d+)?)M\.safetensors$")  # words seen, or tokens (chck_tok_)


def checkpoints_of(args) -> list:
    """[(revision, path)] for --all-checkpoints: a run folder's checkpoints/chck_{N}M.safetensors in
    order of N (the revision is the file name, as export_hf.py names the branches), then its
    ckpt.safetensors as "main"; or a folder holding chck_* files itself."""
    folder = args.model
    if not os.path.isdir(folder):
        raise SystemExit(f"{folder}: --all-checkpoints takes a train.py run folder (or a folder of chck_* files)")
    for flag in ("revision", "predictions", "babylm_predictions"):
        if getattr(args, flag):
            raise SystemExit(f"--{flag.replace('_', '-')}: one file per checkpoint would overwrite itself; "
                             f"with --all-checkpoints use --babylm-results DIR")
    found = []
    for ck_dir in (os.path.join(folder, "checkpoints"), folder):
        if os.path.isdir(ck_dir):
            found += sorted((float(m.group(1)), os.path.join(ck_dir, name))
                            for name in os.listdir(ck_dir) if (m := MILESTONE_FILE.match(name)))
    steps = [(os.path.basename(path)[:-len(".safetensors")], path) for _, path in found]
    if os.path.isfile(os.path.join(folder, CHECKPOINT_FILE)):
        steps.append(("main", os.path.join(folder, CHECKPOINT_FILE)))
    if not steps:
        raise SystemExit(f"{folder}: no checkpoints/chck_*.safetensors, chck_*.safetensors or {CHECKPOINT_FILE}")
    return steps


def run_name(path: str) -> str:
    """The run folder's name: out/model_a for out/model_a/ckpt.safetensors, out/model_a/checkpoints/
    chck_1M.safetensors and out/model_a; an export folder's own name (the pipeline's Path(model).stem)."""
    path = os.path.abspath(path)
    if os.path.isfile(path):
        path = os.path.dirname(path)
    if os.path.basename(path) == "checkpoints":
        path = os.path.dirname(path)
    return os.path.basename(path)


def revision_dir(args, revision: str):
    """DIR/MODEL/REVISION of --babylm-results, or None."""
    if not args.babylm_results:
        return None
    return os.path.join(args.babylm_results, args.model_name or run_name(args.model), revision)


def learning_curve(args, steps, score, command) -> dict:
    """Score each checkpoint, then print and write the curve: words seen against each suite's headline."""
    curve, results = [], {}
    bar = tqdm(steps, desc="checkpoints", unit="ckpt", disable=args.no_progress, file=sys.stderr,
               mininterval=0.1 if sys.stderr.isatty() else 60)   # in a log file, not a stream of redraws
    for revision, path in bar:
        info = read_info(path)
        result = score(path, revision, False)
        results[revision] = result
        curve.append({"revision": revision, "checkpoint": path, "words_seen": info.get("words_seen"),
                      "tokens_seen": info.get("tokens_seen"),
                      "headline": {name: r["headline"] for name, r in result["suites"].items()}})
    first = results[steps[0][0]]
    out = {"settings": first["settings"], "machine": first["machine"], "model": os.path.abspath(args.model),
           "command": command, "curve": curve,
           "checkpoints": {revision: r["suites"] for revision, r in results.items()}}
    print(format_curve(curve, first["settings"]["headline"]))
    if args.babylm_results:
        print(f"wrote {len(steps)} revisions under {revision_dir(args, '')}")
    write_out(args.out, out)
    if args.png:
        print(f"wrote {plot_curve(curve, args.png, first['settings']['headline'])}")
    return out


def format_curve(curve, headline: str) -> str:
    suites = list(curve[0]["headline"])
    width = max([12] + [len(s) for s in suites])
    lines = [f"{'revision':<10} {'words seen':>14} " + " ".join(f"{s:>{width}}" for s in suites),
             f"{'':<10} {'':>14} " + " ".join(f"{headline + ' %':>{width}}" for _ in suites)]
    for c in curve:
        words = f"{c['words_seen']:,.0f}" if c["words_seen"] is not None else "?"
        lines.append(f"{c['revision']:<10} {words:>14} " +
                     " ".join(f"{100 * c['headline'][s]:>{width}.1f}" for s in suites))
    return "\n".join(lines)


def plot_curve(curve, png: str, headline: str) -> str:
    plt = pyplot("eval_blimp.py")
    points = [c for c in curve if c["words_seen"]]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for suite in curve[0]["headline"]:
        ax.plot([c["words_seen"] for c in points], [100 * c["headline"][suite] for c in points], marker="o", label=suite)
    ax.axhline(50, color="grey", lw=0.8, ls=":", label="chance")
    ax.set_xscale("log")
    ax.set_xlabel("words seen")
    ax.set_ylabel(f"accuracy, {headline} average (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(png)), exist_ok=True)
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return png


def check_outputs_are_not_inputs(args, steps):
    """No output may be the model, its tokenizer, a pair file or another output (symlinks followed)."""
    inputs = [args.model, args.tokenizer] + [path for _, path in steps]
    if os.path.isdir(args.model):
        inputs += [os.path.join(args.model, name) for name in os.listdir(args.model)]
    for suite in args.suite.split(","):
        if suite.strip() and (suite.strip() in SUITES or os.path.exists(suite.strip())):
            inputs += suite_files(suite.strip(), args.data_root)[1]
    outputs = [("--out", args.out), ("--predictions", args.predictions),
               ("--babylm-predictions", args.babylm_predictions), ("--png", args.png)]
    if args.babylm_results:
        if os.path.exists(args.babylm_results) and not os.path.isdir(args.babylm_results):
            raise SystemExit(f"--babylm-results {args.babylm_results}: is a file, not a folder")
        named = [s.strip() for s in args.suite.split(",") if s.strip() in BABYLM_FOLDERS]
        if not named:
            raise SystemExit(f"--babylm-results: the tree holds {' and '.join(BABYLM_FOLDERS)}; --suite has neither")
        outputs += [("--babylm-results", babylm_results_file(revision_dir(args, revision), suite, args.fast))
                    for revision, _ in steps for suite in named]
    for i, (flag, path) in enumerate(outputs):
        if path:
            check_output(path, inputs + [p for _, p in outputs[i + 1:]], flag)


def check_writable(flag: str, path: str):
    """One line now, rather than a traceback after the scoring, for an output path that cannot be
    a file: an existing folder, or a path through a file."""
    if not path:
        return
    if os.path.isdir(path):
        raise SystemExit(f"{flag} {path}: is a folder; give a file name")
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise SystemExit(f"{flag} {path}: {parent} is a file, not a folder")
