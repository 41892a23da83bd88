"""
Line samples (train.py --samples=lines, the Model A card's way): packed rows against padding every
piece to block_size, on the same micro-batches, trials interleaved.

    python tokenize_data.py --model-a-card --out data/model_a_card      # the card's data (or any data folder)
    python bench/line_samples_throughput.py --data data/model_a_card --threads 1
    python bench/line_samples_throughput.py --data data/model_a_card --threads 1 --profile   # where the time goes
    python bench/line_samples_throughput.py --data data/model_a_card --dtype bf16 --threads 2

Both sides train Model A on the same micro-batches of batch_size pieces (16 of at most 64 tokens,
as the card): "packed" is data.LineSamples' batch (pieces side by side in rows of block_size
positions, a block-diagonal mask), "padded" puts each piece alone in a row padded to block_size, as
the card's Trainer did. Both compute the same loss (checked); the ratio is padded time over packed
time for forward + backward (the optimizer step costs the same on both sides). Printed: real target tokens per second of each and the ratio.

Then the card's whole step on the packed batches (--grad-accum micro-batches, gradient clipping,
AdamW), trials interleaved with the machine's limit at the same shapes (train_throughput.matmul_pass:
the forward and backward GEMMs of every nn.Linear at each micro-batch's rows x block positions):
its FLOP/s (model.flops_per_token(block) x positions/s) as a fraction of the limit's. --dtype auto
(the default) is the precision this machine computes natively (machine.choose_dtype).
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch
from torch.autograd.profiler import record_function

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data  # noqa: E402
import machine  # noqa: E402
import model as model_py  # noqa: E402
from model import ModelConfig, Transformer  # noqa: E402
from train_throughput import matmul_pass, print_breakdown, profile_breakdown  # noqa: E402


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
    ap.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16"],
                    help="auto: the precision this machine computes natively (machine.choose_dtype)")
    ap.add_argument("--grad-accum", type=int, default=4, help="micro-batches per optimizer step (the card's 4)")
    ap.add_argument("--profile", action="store_true", help="profile the card's step: where the time goes")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--bos-input", action="store_true", help="pieces start with their BOS (the default data)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype, why = machine.choose_dtype({"auto": "auto", "fp32": "float32", "bf16": "bfloat16"}[args.dtype], "cpu")
    args.dtype = {"float32": "fp32", "bfloat16": "bf16"}[dtype]
    print(f"# {machine.describe('cpu', args.dtype, why)}; torch {torch.__version__}")
    warning = machine.thread_warning()
    if warning:
        print(f"# {warning}")

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

    # the card's step on the packed batches against the machine's limit at the same shapes
    packed = sides["packed"]
    opt = model.configure_optimizers(0.0, 3e-4, (0.9, 0.999), "cpu")

    def card_steps():
        for i, b in enumerate(packed):
            with autocast:
                _, loss = model(b.x, b.y, positions=b.positions, mask=b.mask)
            (loss / args.grad_accum).backward()
            if (i + 1) % args.grad_accum == 0 or i + 1 == len(packed):
                with record_function("scope:optimizer"):  # profile_breakdown charges it to the optimizer
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                opt.zero_grad(set_to_none=True)

    positions = [b.x.numel() for b in packed]
    limit_run, limit_flops = matmul_pass(model, positions, torch.bfloat16 if args.dtype == "bf16" else torch.float32,
                                         torch.device("cpu"))
    card_steps(), limit_run()  # warm-up
    step_s, limit_s = [], []  # (wall, CPU seconds of this process) per trial
    for trial in range(args.trials):
        for name in (["card", "limit"] if trial % 2 == 0 else ["limit", "card"]):
            if name == "limit":
                limit_s.append(limit_run())
                continue
            t0, c0 = time.perf_counter(), time.process_time()
            card_steps()
            step_s.append((time.perf_counter() - t0, time.process_time() - c0))
    t, limit = statistics.median(s[0] for s in step_s), limit_flops / statistics.median(s[0] for s in limit_s)
    # on a shared machine CPU seconds leave out the time others held the core (with one thread)
    by_cpu = statistics.median(s[1] for s in limit_s) / statistics.median(s[1] for s in step_s)
    flops_per_position = model.flops_per_token(args.block)
    rate = flops_per_position * sum(positions) / t
    print(f"the card's step (packed, {args.grad_accum} micro-batches, clipping, AdamW), {args.steps} micro-batches a trial: "
          f"{sum(positions) / t:,.0f} positions/s ({targets / t:,.0f} target tokens/s, {targets / sum(positions):.0%} "
          f"of the positions are targets)")
    print(f"  {rate / 1e9:.1f} GFLOP/s ({flops_per_position:,.0f} FLOPs a position) = {100 * rate / limit:.1f}% of the "
          f"machine's limit at these shapes ({limit / 1e9:.1f} GFLOP/s: the matmuls alone); counting target tokens "
          f"only: {100 * rate * targets / sum(positions) / limit:.1f}%; by CPU time: {100 * by_cpu * rate * t / limit_flops:.1f}%")
    if args.profile:
        opt_steps = -(-len(packed) // args.grad_accum)
        rows, wall = profile_breakdown(card_steps, model, model_py, 1)
        print(f"# profile of the card's step, {args.dtype}, {torch.get_num_threads()} threads, per optimizer step "
              f"({args.grad_accum} micro-batches; {args.steps} micro-batches profiled)")
        print_breakdown([(n, s / opt_steps) for n, s in rows], wall / opt_steps, t / opt_steps,
                        limit_flops / opt_steps, limit)


if __name__ == "__main__":
    main()
