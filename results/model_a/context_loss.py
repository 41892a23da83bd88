"""
Is a document scored alone (BOS at position 0, nothing before it, as eval_blimp.py scores a sentence)
harder for a model than the same document inside a training window, after other documents?

    python results/model_a/context_loss.py out/model_a_fit_bf16/ckpt.safetensors out/model_a_fit_align/ckpt.safetensors \
        --json results/model_a/model_a_context_loss.json

For every held-out document of data/model_a (val.bin) that starts at least 64 tokens into one of the
non-overlapping 512-token windows and has at least 12 tokens: the loss of its first 12 tokens in
that window, and alone (BOS + the document). Prints the mean per token position and over all 12.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, ROOT)
from checkpoint import load_checkpoint  # noqa: E402
from data import read_meta, open_bin  # noqa: E402

FIRST = 12       # tokens of each document compared
MIN_CONTEXT = 64  # tokens of other documents before it in its window


@torch.no_grad()
def token_losses(model, ids):
    """Per-position cross-entropy of ids[1:] given ids[:-1], fp32, one sequence."""
    x = torch.from_numpy(ids[None, :-1])
    y = torch.from_numpy(ids[None, 1:])
    logits, _ = model(x, y)
    return F.cross_entropy(logits[0].float(), y[0], reduction="none").numpy()


def context_loss(ckpt_path, data_dir, lang="eng", window=512):
    model, _ = load_checkpoint(ckpt_path)
    model.eval()
    meta = read_meta(data_dir)
    val = np.asarray(open_bin(data_dir, meta, lang, "val"), dtype=np.int64)
    starts = np.flatnonzero(val == meta["bos_id"])
    ends = np.append(starts[1:], len(val))
    in_window, alone = [], []
    for w0 in range(0, len(val) - window - 1, window):
        nll = token_losses(model, val[w0:w0 + window + 1])            # nll[t] is the loss of val[w0 + t + 1]
        here = (starts >= w0 + MIN_CONTEXT) & (starts < w0 + window - FIRST)
        for s, e in zip(starts[here], ends[here]):
            if e - s < FIRST + 1:
                continue
            in_window.append(nll[s - w0:s - w0 + FIRST])
            alone.append(token_losses(model, val[s:s + FIRST + 1]))
    in_window, alone = np.array(in_window), np.array(alone)
    return {"checkpoint": ckpt_path, "documents": len(alone),
            "in_window": in_window.mean(0).round(4).tolist(), "alone": alone.mean(0).round(4).tolist(),
            "in_window_mean": round(float(in_window.mean()), 4), "alone_mean": round(float(alone.mean()), 4)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--data-dir", default=os.path.join(ROOT, "data", "model_a"))
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    results = []
    for path in args.checkpoints:
        if not os.path.isfile(path):
            raise SystemExit(f"{path}: no such checkpoint file")
        r = context_loss(path, args.data_dir)
        results.append(r)
        print(f"{path}: {r['documents']} documents, first {FIRST} tokens: in a window {r['in_window_mean']:.3f}, "
              f"alone {r['alone_mean']:.3f} nats/token")
        print("  by position  in window: " + " ".join(f"{v:.2f}" for v in r["in_window"]))
        print("               alone:     " + " ".join(f"{v:.2f}" for v in r["alone"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
