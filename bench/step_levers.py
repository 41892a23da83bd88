"""
How much of a training step the work around the matmuls could give back: each piece of Model A's
step that is not a matmul, timed forward + backward as model.py computes it against the cheaper ways
our own dependencies offer, trials interleaved, each difference given as a share of the whole step
measured in the same run.

    python bench/step_levers.py --threads 1                        # the default windows' shapes, 4 x 256
    python bench/step_levers.py --threads 1 --batch 4 --seq 64     # about the card's line samples (rows of 64)

The pieces, model.py's way -> the alternative:
  norms       RMSNorm as written (square, mean, rsqrt, two products) -> F.rms_norm (one op)
  RoPE        rotate_half (chunk, negate, cat) -> torch.roll, the sign folded into the sin table
  attention   SDPA on the heads' transposed views -> SDPA on contiguous copies; -> the math written out
  loss        F.cross_entropy (log-softmax, then NLL) -> softmax minus one-hot by hand (autograd.Function)
  allocator   the whole step with glibc's malloc as it is -> freed memory kept for reuse (mallopt; Linux)
torch.compile, the lever that fuses all of it, is train_throughput.py --compile ours; how big each
piece is, train_throughput.py --profile. A piece runs as often as a step runs it (norms 2 per layer
and the final one, RoPE on queries and keys, attention once per layer, the loss once), on tensors of
the step's shapes in the machine's precision (machine.choose_dtype), without autocast.
"""

import argparse
import ctypes
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import machine  # noqa: E402
import model as model_py  # noqa: E402
from model import ModelConfig, Transformer  # noqa: E402
from train_throughput import MODEL_A  # noqa: E402


class SoftmaxCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy over targets >= 0, its gradient written out: (softmax - one-hot) / count."""

    @staticmethod
    def forward(ctx, logits, targets):
        log_z = torch.logsumexp(logits, dim=-1)                       # log of the softmax's denominator
        kept, targets = targets >= 0, targets.clamp(min=0)  # an ignored target (-1) picks column 0, weighted 0
        picked = logits.gather(1, targets[:, None])[:, 0]
        count = kept.sum()
        ctx.save_for_backward(logits, log_z, targets, kept, count)
        return ((log_z - picked) * kept).sum() / count

    @staticmethod
    def backward(ctx, grad):
        logits, log_z, targets, kept, count = ctx.saved_tensors
        d = torch.exp(logits - log_z[:, None])                        # softmax
        d.scatter_add_(1, targets[:, None], -torch.ones_like(log_z)[:, None])  # minus one-hot
        return d.mul_((grad * kept / count)[:, None]), None


def pieces(cfg, B: int, T: int, dtype):
    """{name: (times a step runs it, its inputs, model.py's way, the alternative, the output's gradient)}:
    each way a function of no arguments that returns the forward output."""
    g = torch.Generator().manual_seed(0)

    def leaf(*shape):
        return torch.randn(*shape, generator=g).to(dtype).requires_grad_()

    H, hd = cfg.n_heads, cfg.head_dim
    x, norm = leaf(B, T, cfg.dim), model_py.RMSNorm(cfg.dim, cfg.norm_eps).to(dtype)
    q, k, v = (leaf(B, T, H, hd).transpose(1, 2) for _ in range(3))  # (B, H, T, hd) views, as in Attention
    cos, sin = (t[:T].to(dtype) for t in model_py.rope_cos_sin(hd, cfg.max_seq_len, cfg.rope_theta))
    signed_sin = torch.cat([-sin[:, :hd // 2], sin[:, hd // 2:]], dim=-1)  # rotate_half's minus, in the table
    logits = leaf(B * T, cfg.vocab_size)
    targets = torch.randint(0, cfg.vocab_size, (B * T,), generator=g)
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    grad_x, grad_q = torch.randn(B, T, cfg.dim).to(dtype), torch.randn(B, H, T, hd).to(dtype)

    def sdpa(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    def explicit_attention(q, k, v):
        att = (q @ k.transpose(-2, -1)) * hd ** -0.5
        return att.masked_fill(~mask, float("-inf")).softmax(-1) @ v

    return {
        "norms (RMSNorm -> F.rms_norm)": (
            2 * cfg.n_layers + 1, [x, norm.weight], lambda: norm(x),
            lambda: F.rms_norm(x, (cfg.dim,), norm.weight, cfg.norm_eps), grad_x),
        "RoPE (rotate_half -> roll)": (
            2 * cfg.n_layers, [q], lambda: model_py.apply_rope(q, cos, sin),
            lambda: q * cos + q.roll(hd // 2, -1) * signed_sin, grad_q),
        "attention (SDPA on views -> contiguous)": (
            cfg.n_layers, [q, k, v], lambda: sdpa(q, k, v),
            lambda: sdpa(q.contiguous(), k.contiguous(), v.contiguous()), grad_q),
        "attention (SDPA -> the math written out)": (
            cfg.n_layers, [q, k, v], lambda: sdpa(q, k, v), lambda: explicit_attention(q, k, v), grad_q),
        "loss (F.cross_entropy -> by hand)": (
            1, [logits], lambda: F.cross_entropy(logits.float(), targets),
            lambda: SoftmaxCrossEntropy.apply(logits.float(), targets), None),
    }


def same_results(label, leaves, ours, other, grad_out, dtype):
    """The alternative computes what model.py computes: the same output and input gradients (else it is no lever)."""
    results = []
    for way in (ours, other):
        out = way()
        results.append([out.detach(), *torch.autograd.grad(out, leaves, grad_out)])
    tolerance = 1e-4 if dtype == torch.float32 else 3e-2
    for a, b in zip(*results):
        if not torch.allclose(a.float(), b.float(), atol=tolerance, rtol=tolerance):
            raise SystemExit(f"step_levers.py: {label}: the alternative differs from model.py's way "
                             f"(max difference {(a.float() - b.float()).abs().max().item():.2e})")


def keep_freed_memory(on: bool) -> bool:
    """glibc: serve every allocation from the heap and never give freed memory back to the kernel (on),
    or glibc's defaults (large blocks mapped and unmapped each time, so their pages fault in again).
    False where this is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # malloc.h
    libc.mallopt(M_MMAP_MAX, 0 if on else 65536)
    libc.mallopt(M_TRIM_THRESHOLD, (1 << 40) if on else 128 * 1024)
    return True


def cpu_seconds(fn, n: int) -> float:
    t0 = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t0) / n


def ab(first, second, n: int, trials: int) -> tuple[float, float]:
    """Median CPU seconds of one call of each, trials interleaved ABBA after one untimed call each."""
    first(), second()
    a, b = [], []
    for trial in range(trials):
        for which in ((first, a), (second, b)) if trial % 2 == 0 else ((second, b), (first, a)):
            which[1].append(cpu_seconds(which[0], n))
    return statistics.median(a), statistics.median(b)


def main():
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--trials", type=int, default=6, help="interleaved trials of each side")
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16"])
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    name, why = machine.choose_dtype({"auto": "auto", "fp32": "float32", "bf16": "bfloat16"}[args.dtype], "cpu")
    dtype = model_py.DTYPES[name]
    print(f"# {machine.describe('cpu', name, why)}; torch {torch.__version__}; Model A, batch {args.batch} x "
          f"{args.seq}; CPU time, medians of {args.trials} interleaved trials")
    if warning := machine.thread_warning():
        print(f"# {warning}")

    torch.manual_seed(0)
    cfg = ModelConfig(**MODEL_A)
    model = Transformer(cfg)
    opt = model.configure_optimizers(0.1, 3e-4, (0.9, 0.95), "cpu")
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16)
    idx = torch.randint(0, cfg.vocab_size, (args.batch, args.seq + 1))
    x, y = idx[:, :-1].contiguous(), idx[:, 1:].contiguous()

    def step():
        with autocast:
            loss = model(x, y)[1]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    # the whole step, with glibc's malloc as it is and keeping freed memory (where this is glibc), interleaved;
    # each trial starts with an untimed step that settles its allocator's state
    step_seconds = {"plain": [], "kept": []}
    for trial in range(2 * args.trials):
        side = "kept" if trial % 2 == 1 and keep_freed_memory(True) else "plain"
        step()
        step_seconds[side].append(cpu_seconds(step, 2))
        keep_freed_memory(False)
    plain = statistics.median(step_seconds["plain"])
    kept = statistics.median(step_seconds["kept"]) if step_seconds["kept"] else None  # None: not glibc
    print(f"{'piece (model.py -> alternative)':44s} {'x':>3s} {'ms/step':>9s} {'alt.':>9s} {'saves':>7s} of the step "
          f"({1000 * plain:,.0f} ms)")
    total = 0.0
    for label, (per_step, leaves, ours, other, grad_out) in pieces(cfg, args.batch, args.seq, dtype).items():
        same_results(label, leaves, ours, other, grad_out, dtype)
        a, b = ab(lambda: ours().backward(grad_out), lambda: other().backward(grad_out), 3, args.trials)
        total += max(0.0, per_step * (a - b))
        print(f"{label:44s} {per_step:3d} {1000 * per_step * a:9.1f} {1000 * per_step * b:9.1f} "
              f"{100 * per_step * (a - b) / plain:6.1f}%")
    if kept is not None:
        print(f"{'allocator (glibc -> keep freed memory)':44s} {1:3d} {1000 * plain:9.1f} {1000 * kept:9.1f} "
              f"{100 * (plain - kept) / plain:6.1f}%")
        total += max(0.0, plain - kept)
    print(f"every lever that saves time, together: {100 * total / plain:.1f}% of the step (an upper bound: "
          f"they were timed one at a time)")


if __name__ == "__main__":
    main()
