"""
Training throughput (tokens/s of forward + backward + AdamW step) of model.py's Model A against
transformers' LlamaForCausalLM built from the same config, in one process, trials interleaved.

    python bench/train_throughput.py --threads 1                     # CPU, batch 4 x 256, the machine's precision
    python bench/train_throughput.py --threads 1 --dtype both        # fp32 and bf16
    python bench/train_throughput.py --threads 1 --profile           # and where the time of a step goes
    python bench/train_throughput.py --seq 512 --compile             # Model A's full context, both compiled
    python bench/train_throughput.py --device cuda --batch 16 --seq 512 --dtype bf16 --compile
    python bench/train_throughput.py --model /tmp/model_variant.py   # a modified model.py instead

Both models get the same batch, the same autocast and the same torch.compile setting (with
--compile ours: ours compiled against transformers eager, as its Trainer runs by default).
Transformers runs with attn_implementation="sdpa" and use_cache=False, as a trainer would, and with
the AdamW its Trainer builds by default (the fused kernel); ours with model.configure_optimizers.
Trials alternate ours/theirs, the order flipped every trial (ABBA), so that a slow phase of a
shared machine hits both; on a busy machine --threads 1 gives steadier ratios (one preempted
thread stalls the other at every parallel op). Printed: the median tokens/s over the trials of
each, their ratio, and on CUDA the MFU (model.estimate_mfu, the PaLM FLOP count).

--dtype auto (the default) computes in the precision this machine computes natively
(machine.choose_dtype: bf16 where the CPU or GPU has it, else fp32; on an AVX2-only CPU bf16 is
emulated, 40-80x slower). The header names the machine (machine.describe).

The machine's limit. In the same run, at the same precision and threads, a third contestant times
only the dense matmuls of the model's own shapes (matmul_pass: the forward and the two backward
GEMMs of every nn.Linear at the step's tokens) and reports their FLOP/s. The training FLOP/s of
ours and of Transformers (model.flops_per_token(seq) x tok/s: 6 x non-embedding parameters plus
attention) is printed as a fraction of it: the share of what these kernels can do on these shapes
that a whole training step keeps. --profile then says where the rest goes (profile_breakdown).
"""

import argparse
import collections
import contextlib
import importlib.util
import os
import re
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import machine  # noqa: E402

# Model A (config/model_a.py)
MODEL_A = dict(dim=384, n_layers=6, n_heads=6, hidden_dim=1536, vocab_size=16000, max_seq_len=512)


def hf_llama(cfg):
    """transformers' LlamaForCausalLM of the same shape (fresh init; the weights do not matter for speed)."""
    import transformers
    hf_cfg = transformers.LlamaConfig(
        hidden_size=cfg.dim, intermediate_size=cfg.hidden_dim, num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.n_kv_heads,
        max_position_embeddings=cfg.max_seq_len, rms_norm_eps=cfg.norm_eps, rope_theta=cfg.rope_theta,
        vocab_size=cfg.vocab_size, tie_word_embeddings=cfg.tie_embeddings, attention_bias=False,
        mlp_bias=False, attn_implementation="sdpa", use_cache=False)
    return transformers.LlamaForCausalLM(hf_cfg)


def optimizers(ours, theirs, device_type: str):
    """Ours from configure_optimizers (what train.py uses). Theirs as transformers' Trainer builds it
    by default with torch >= 2.8 (optim="adamw_torch_fused", no decay on norm gains): the fused
    AdamW kernel, on CPU as well as on CUDA. With the same kernel on both sides the ratio compares
    the models; where configure_optimizers picks another kernel, the ratio shows what that costs."""
    opt = ours.configure_optimizers(weight_decay=0.1, learning_rate=3e-4, betas=(0.9, 0.95), device_type=device_type)
    params = [p for p in theirs.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return opt, torch.optim.AdamW(groups, lr=3e-4, betas=(0.9, 0.95), fused=True)


def make_step(model, loss_of, opt, device_type: str, dtype: str):
    """One training step: forward (under autocast for bf16), backward, AdamW step."""
    def step(x, y):
        ctx = (torch.autocast(device_type, dtype=torch.bfloat16) if dtype == "bf16"
               else contextlib.nullcontext())
        with ctx:
            loss = loss_of(model, x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss
    return step


def ours_loss(model, x, y):
    return model(x, y)[1]


def hf_loss(model, x, y):
    # transformers shifts the labels itself: labels = inputs, loss over positions 1..T-1
    return model(input_ids=x, labels=x).loss


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(step, x, y, n: int, device) -> tuple[float, float]:
    """Seconds for n steps: (wall clock, CPU time of this process). On a shared CPU the second
    leaves out the time other processes held the cores (meaningful with --threads 1)."""
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        loss = step(x, y)
    loss.item()  # waits for the last step on CUDA
    sync(device)
    return time.perf_counter() - t0, time.process_time() - c0


def matmul_pass(model, steps_tokens, dtype: torch.dtype, device):
    """The machine's limit at this model's shapes. Returns (run, flops): run() times, for each step's
    M tokens in steps_tokens and every nn.Linear of the model (wq, wk, wv, wo, w1, w2, w3 of each
    layer and the output head), the three GEMMs a training step does with it, and returns seconds:
        forward      Y  = X W^T     (M x in) @ (in x out)
        grad input   dX = dY W      (M x out) @ (out x in)
        grad weight  dW = dY^T X    (out x M) @ (M x in)
    each 2 M in out FLOPs (flops: their sum), in the layouts nn.Linear's forward and backward use,
    at the given precision. Nothing else (no norms, attention, optimizer), so flops / run() is what
    this machine's matmul kernels reach on these shapes at these threads: the most a training step
    of this model could sustain. run() returns (wall seconds, CPU seconds) as time_steps does."""
    shapes = collections.Counter((m.in_features, m.out_features) for m in model.modules()
                                 if isinstance(m, torch.nn.Linear))
    g = torch.Generator().manual_seed(0)
    tensors = {(M, i, o): [torch.randn(*size, generator=g).to(device, dtype) for size in ((M, i), (o, i), (M, o))]
               for M in set(steps_tokens) for i, o in shapes}
    flops = sum(3 * 2 * M * i * o * n for M in steps_tokens for (i, o), n in shapes.items())

    def run() -> tuple[float, float]:
        sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        for M in steps_tokens:
            for (i, o), n in shapes.items():
                x, w, dy = tensors[M, i, o]
                for _ in range(n):
                    F.linear(x, w)
                    dy @ w
                    dy.t() @ x
        sync(device)
        return time.perf_counter() - t0, time.process_time() - c0
    return run, flops


# profile_breakdown's categories, in the order printed: what each op's self CPU time is charged to
MATMUL_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::linear", "aten::matmul"}
CATEGORIES = {  # the innermost scope an op ran in (forward) or its forward op ran in (backward)
    "matmul": "matmuls (aten::mm/addmm/bmm/linear)",
    "sdpa": "attention (SDPA forward + backward)",
    "RMSNorm": "norms (RMSNorm, forward + backward)",
    "FeedForward": "elementwise: SwiGLU (silu, *)",
    "rope": "elementwise: RoPE",
    "Attention": "elementwise: heads' transposes and copies",
    "TransformerBlock": "elementwise: residual adds",
    "optimizer": "optimizer (fused AdamW step, zero_grad, clipping)",
    "Embedding": "embedding + cross-entropy (logits cast, log-softmax, NLL)",
    "Transformer": "embedding + cross-entropy (logits cast, log-softmax, NLL)",  # and RoPE tables, mask view
    "autograd": "autograd engine (node glue, gradient accumulation)",
    "other": "other ops",
}


def profile_breakdown(step, model, model_module, n_steps: int):
    """Where the time of a training step of ours goes: torch.profiler (CPU) over n_steps calls of
    step(), each op's self CPU time charged to one of CATEGORIES, and the wall time no op accounts
    for (Python, the profiler's own cost) as "Python and other". Returns [(category, seconds per step)].

    Forward ops are charged by the innermost module they ran in (forward hooks open a named range per
    RMSNorm, Attention, FeedForward, Embedding, block and model; model_module.apply_rope gets one too);
    a backward op by the module its forward op ran in (the autograd node's sequence number, which the
    profiler records on both). Matmuls and SDPA are charged by name wherever they run."""
    from torch.autograd.profiler import record_function
    from torch.profiler import ProfilerActivity, profile

    open_ranges = []

    def enter(module, args):
        open_ranges.append(record_function("scope:" + type(module).__name__))
        open_ranges[-1].__enter__()

    def leave(module, args, out):
        open_ranges.pop().__exit__(None, None, None)

    skip = (torch.nn.Linear, torch.nn.Dropout, torch.nn.ModuleList)
    hooks = [h for m in model.modules() if not isinstance(m, skip)
             for h in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))]
    apply_rope = model_module.apply_rope

    def rope(*a):
        with record_function("scope:rope"):
            return apply_rope(*a)
    model_module.apply_rope = rope
    try:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            t0 = time.perf_counter()
            for _ in range(n_steps):
                step()
            wall = time.perf_counter() - t0
    finally:
        model_module.apply_rope = apply_rope
        for h in hooks:
            h.remove()

    def ancestors(e):
        while e is not None:
            yield e
            e = e.cpu_parent

    def scope(e):
        for a in ancestors(e):
            if a.name.startswith("scope:"):
                return a.name[len("scope:"):]
            if a.name.startswith("Optimizer."):
                return "optimizer"
        return None

    events = prof.events()
    backward_of = {}  # event id -> the autograd node's evaluate_function event it runs under
    forward_scope = {}  # sequence number -> the scope its forward op ran in
    for e in events:
        node = next((a for a in ancestors(e) if a.name.startswith("autograd::engine::evaluate_function")), None)
        if node is not None:
            backward_of[e.id] = node
        elif e.sequence_nr >= 0:
            forward_scope.setdefault(e.sequence_nr, scope(e))
    seconds = collections.Counter()
    for e in events:
        if e.name in MATMUL_OPS:
            key = "matmul"
        elif "scaled_dot_product" in e.name or "flash_attention" in e.name:
            key = "sdpa"
        elif e.name.startswith("autograd::engine") or re.search(r"Backward\d*$", e.name):
            key = "autograd"
        elif e.id in backward_of:
            key = forward_scope.get(backward_of[e.id].sequence_nr) or "autograd"
        else:
            key = scope(e) or "other"
        seconds[CATEGORIES.get(key, CATEGORIES["other"])] += e.self_cpu_time_total / 1e6
    rows = [(c, seconds[c] / n_steps) for c in dict.fromkeys(CATEGORIES.values()) if seconds[c]]
    rows.append(("Python and other (wall time outside any op)", max(0.0, wall - sum(seconds.values())) / n_steps))
    return rows, wall / n_steps


def print_breakdown(rows, wall_step: float, plain_step: float, matmul_flops_per_step: float, limit: float):
    """The table of profile_breakdown: ms per step and share of the profiled wall time; the matmul
    row also gives its FLOP/s against the limit pass's."""
    print(f"{'where the time of a step goes':58s} {'ms/step':>8s} {'share':>6s}")
    for name, s in rows:
        line = f"{name:58s} {1000 * s:8.1f} {100 * s / wall_step:5.1f}%"
        if name == CATEGORIES["matmul"] and s > 0:
            rate = matmul_flops_per_step / s
            line += f"  {rate / 1e9:.1f} GFLOP/s = {100 * rate / limit:.0f}% of the limit pass"
        print(line)
    print(f"{'step, wall, under the profiler':58s} {1000 * wall_step:8.1f} "
          f"(without it: {1000 * plain_step:.1f} ms, the throughput run's median)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=256, help="tokens per sequence (Model A's context is 512)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per trial")
    p.add_argument("--trials", type=int, default=4, help="interleaved trials per model")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation happens here)")
    p.add_argument("--dtype", choices=["auto", "fp32", "bf16", "both"], default="auto",
                   help="auto: the precision this machine computes natively (machine.choose_dtype)")
    p.add_argument("--compile", nargs="?", const="both", default="none", choices=["none", "ours", "both"],
                   help="torch.compile: --compile compiles both models, --compile ours only ours")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--model", default=os.path.join(os.path.dirname(__file__), "..", "model.py"),
                   help="the model.py to benchmark (e.g. a modified copy)")
    p.add_argument("--profile", action="store_true",
                   help="then profile --steps steps of ours (eager) in the first dtype: where the time goes")
    args = p.parse_args()

    if not os.path.isfile(args.model):
        raise SystemExit(f"{args.model}: no such file")
    spec = importlib.util.spec_from_file_location("model_under_test", args.model)
    model_py = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model_py)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("train_throughput.py: --device cuda but no CUDA device is visible")
    if args.seq > MODEL_A["max_seq_len"]:
        raise SystemExit(f"train_throughput.py: --seq {args.seq} exceeds Model A's context {MODEL_A['max_seq_len']}")
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    dtypes, why = resolve_dtypes(args.dtype, device.type)

    torch.manual_seed(0)
    cfg = model_py.ModelConfig(**MODEL_A)
    ours = model_py.Transformer(cfg).to(device).train()
    theirs = hf_llama(cfg).to(device).train()
    n_ours, n_theirs = ours.num_params(), sum(p.numel() for p in theirs.parameters())
    assert n_ours == n_theirs, f"not the same model: {n_ours} vs {n_theirs} parameters"
    fwd_ours, fwd_theirs = ours, theirs
    if args.compile in ("ours", "both"):
        fwd_ours = torch.compile(ours)
    if args.compile == "both":
        fwd_theirs = torch.compile(theirs)

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, cfg.vocab_size, (args.batch, args.seq + 1), generator=g)
    x, y = x[:, :-1].contiguous().to(device), x[:, 1:].contiguous().to(device)
    tokens = args.batch * args.seq * args.steps

    fused = bool(ours.configure_optimizers(0.1, 3e-4, (0.9, 0.95), device.type).defaults.get("fused"))
    print(f"# {machine.describe(device.type, ', '.join(dtypes), why)}; torch {torch.__version__}; Model A "
          f"({n_ours / 1e6:.2f}M params), batch {args.batch} x {args.seq}, {args.steps} steps x {args.trials} "
          f"trials (after {args.warmup} warm-up), compile={args.compile}, AdamW fused: ours {fused}, HF True; "
          f"model {os.path.relpath(args.model)}")
    warning = machine.thread_warning() if device.type == "cpu" else None
    if warning:
        print(f"# {warning}")
    cpu = device.type == "cpu"
    flops_per_token = ours.flops_per_token(args.seq)
    print(f"{'dtype':5s} {'ours tok/s':>11s} {'HF tok/s':>11s} {'ratio':>6s}"
          + (f" {'by CPU time':>11s}" if cpu else "") + "  per-trial ratios"
          + f" | {'limit GFLOP/s':>13s} {'ours':>6s} {'HF':>6s} of it"
          + ("   MFU ours / HF" if device.type == "cuda" else ""))
    for dtype in dtypes:
        opt_ours, opt_theirs = optimizers(ours, theirs, device.type)
        steps = {"ours": make_step(fwd_ours, ours_loss, opt_ours, device.type, dtype),
                 "hf": make_step(fwd_theirs, hf_loss, opt_theirs, device.type, dtype)}
        limit_run, limit_flops = matmul_pass(ours, [args.batch * args.seq] * args.steps,
                                             torch.bfloat16 if dtype == "bf16" else torch.float32, device)
        for step in steps.values():
            time_steps(step, x, y, args.warmup, device)
        limit_run()
        rates = {"ours": [], "hf": []}      # tokens per wall-clock second, one per trial
        cpu_rates = {"ours": [], "hf": []}  # tokens per CPU second of this process
        limits, cpu_limits = [], []         # the matmul pass's FLOP/s, one per trial (by wall, by CPU time)
        for trial in range(args.trials):
            order = ["ours", "hf", "limit"] if trial % 2 == 0 else ["limit", "hf", "ours"]
            for who in order:
                if who == "limit":
                    wall_s, cpu_s = limit_run()
                    limits.append(limit_flops / wall_s)
                    cpu_limits.append(limit_flops / cpu_s)
                    continue
                wall_s, cpu_s = time_steps(steps[who], x, y, args.steps, device)
                rates[who].append(tokens / wall_s)
                cpu_rates[who].append(tokens / cpu_s)
        med = {who: statistics.median(r) for who, r in rates.items()}
        limit = statistics.median(limits)
        per_trial = " ".join(f"{a / b:.2f}" for a, b in zip(rates["ours"], rates["hf"]))
        line = f"{dtype:5s} {med['ours']:11.0f} {med['hf']:11.0f} {med['ours'] / med['hf']:6.2f}"
        if cpu:
            line += f" {statistics.median(cpu_rates['ours']) / statistics.median(cpu_rates['hf']):11.2f}"
        line += f"  {per_trial}"
        line += (f" | {limit / 1e9:13.1f} {100 * flops_per_token * med['ours'] / limit:5.1f}%"
                 f" {100 * flops_per_token * med['hf'] / limit:5.1f}%")
        if cpu:  # on a shared machine CPU seconds leave out the time others held the core (one thread)
            of_cpu = {who: 100 * flops_per_token * statistics.median(cpu_rates[who]) / statistics.median(cpu_limits)
                      for who in ("ours", "hf")}
            line += f" (by CPU time {of_cpu['ours']:.1f}% {of_cpu['hf']:.1f}%)"
        if device.type == "cuda":
            # estimate_mfu counts attention at the config's context; rescale to the benchmarked --seq
            scale = flops_per_token / ours.flops_per_token()
            mfu = [ours.estimate_mfu(med[who], device=device) for who in ("ours", "hf")]
            if mfu[0] is not None:
                line += f"   {100 * mfu[0] * scale:.1f}% / {100 * mfu[1] * scale:.1f}%"
        print(line, flush=True)
        if args.profile and dtype == dtypes[0]:
            step = make_step(ours, ours_loss, opt_ours, device.type, dtype)
            rows, wall_step = profile_breakdown(lambda: step(x, y), ours, model_py, args.steps)
            print(f"# profile of ours (eager), {dtype}, {args.steps} steps of {args.batch} x {args.seq}, "
                  f"{torch.get_num_threads()} threads; training FLOP/s = {flops_per_token:,.0f} FLOPs/token x tok/s")
            print_breakdown(rows, wall_step, tokens / med["ours"] / args.steps, limit_flops / args.steps, limit)
        del steps, opt_ours, opt_theirs  # free both optimizers' state before the next dtype


def resolve_dtypes(dtype: str, device_type: str):
    """(["fp32"] / ["bf16"] / both, why): auto asks machine.choose_dtype. A GPU without bf16 gets fp32
    here: fp16 needs a gradient scaler, which this benchmark does not run."""
    if dtype == "auto":
        name, why = machine.choose_dtype("auto", device_type)
        if name == "float16":
            name, why = "float32", why + "; fp16 needs a gradient scaler, not run here: fp32"
        return [{"float32": "fp32", "bfloat16": "bf16"}[name]], why
    dtypes = ["fp32", "bf16"] if dtype == "both" else [dtype]
    return dtypes, machine.choose_dtype("bfloat16" if "bf16" in dtypes else "float32", device_type)[1]


if __name__ == "__main__":
    main()
