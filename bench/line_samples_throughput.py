"""
Line samples (train.py --samples=lines, the Model A card's way): packed rows against padding every
piece to block_size, on the same micro-batches, trials interleaved.

    python tokenize_data.py --model-a-card --out data/model_a_card      # the card's data (or any data folder)
    python bench/line_samples_throughput.py --data data/model_a_card
    python bench/line_samples_throughput.py --data data/model_a_card --dtype bf16 --threads 2

Both sides train Model A on the same micro-batches of batch_size pieces (16 of at most 64 tokens,
as the card): "packed" is data.LineSamples' batch (pieces side by side in rows of block_size
positions, a block-diagonal mask), "padded" puts each piece alone in a row padded to block_size, as
the card's Trainer did. Both compute the same loss (checked); the ratio is padded time over packed
time for forward + backward (the optimizer step costs the same on both sides). Printed: real target tokens per second of each and the ratio.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data  # noqa: E402
from model import ModelConfig, Transformer  # noqa: E402


def padded(pieces, row_len):
    """Each piece alone in its own row (inputs piece[:-1]), padding with target -1: the reference."""
    x = np.zeros((len(pieces), row_len), np.int64)
    y = np.full((len(pieces), row_len), -1, np.int64)
    for r, p in enumerate(pieces):
        x[r, :len(p) - 1], y[r, :len(p) - 1] = p[:-1], p[1:]
    return data.Batch(torch.from_numpy(x), torch.from_numpy(y), "", 1.0, int((y >= 0).sum()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--data", required=True, help="a data folder written by tokenize_data.py")
    ap.add_argument("--batch", type=int, default=16, help="pieces per micro-batch")
    ap.add_argument("--block", type=int, default=64, help="block_size: the longest piece, and a packed row")
    ap.add_argument("--steps", type=int, default=20, help="micro-batches timed per trial")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--bos-input", action="store_true", help="pieces start with their BOS (the default data)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    meta = data.read_meta(args.data)
    source = data.LineSamples(args.data, meta, data.Shard(args.batch, args.block), bos_input=args.bos_input)
    micro = [[source.tokens_of(p) for p in source.pieces_of(s, 0, 0)] for s in range(args.steps)]
    sides = {"packed": [data.pack(m, args.block) for m in micro], "padded": [padded(m, args.block) for m in micro]}
    torch.manual_seed(0)
    model = Transformer(ModelConfig(dim=384, n_layers=6, n_heads=6, hidden_dim=1536,
                                    vocab_size=meta["vocab_size"], max_seq_len=512))
    opt = model.configure_optimizers(0.0, 3e-4, (0.9, 0.999), "cpu")
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.dtype == "bf16")

    def run(batches):
        losses = []
        for b in batches:
            with autocast:
                _, loss = model(b.x, b.y, positions=b.positions, mask=b.mask)
            loss.backward()
            opt.zero_grad(set_to_none=True)  # no step: both sides must see the same weights
            losses.append(loss.item())
        return losses

    with torch.no_grad(), autocast:  # the same loss on both sides
        for p, q in zip(sides["packed"][:3], sides["padded"][:3]):
            a = model(p.x, p.y, positions=p.positions, mask=p.mask)[1].item()
            b = model(q.x, q.y)[1].item()
            assert abs(a - b) < (1e-4 if args.dtype == "fp32" else 2e-2), (a, b)
    targets = sum(b.tokens for b in sides["packed"])
    times = {k: [] for k in sides}
    run(sides["packed"][:2])  # warm-up
    for trial in range(args.trials):
        for name in (["packed", "padded"] if trial % 2 == 0 else ["padded", "packed"]):
            t0 = time.perf_counter()
            run(sides[name])
            times[name].append(time.perf_counter() - t0)
    rows = {k: statistics.median(v) for k, v in times.items()}
    mean_len = np.mean([len(p) for m in micro for p in m])
    print(f"{args.steps} micro-batches of {args.batch} pieces (mean {mean_len:.1f} tokens, block {args.block}), "
          f"{args.dtype}, {torch.get_num_threads()} threads; rows per micro-batch: packed "
          f"{np.mean([b.x.shape[0] for b in sides['packed']]):.1f}, padded {args.batch}")
    for name, t in rows.items():
        print(f"  {name:<7} {targets / t:>9,.0f} target tokens/s  ({t / args.steps * 1000:.1f} ms per micro-batch)")
    print(f"  packed is {rows['padded'] / rows['packed']:.2f}x padding each piece")


if __name__ == "__main__":
    main()
