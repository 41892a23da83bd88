"""
Training throughput (tokens/s of forward + backward + AdamW step) of model.py's Model A against
transformers' LlamaForCausalLM built from the same config, in one process, trials interleaved.

    python bench/train_throughput.py                                 # CPU, batch 4 x 256, fp32 and bf16
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
"""

import argparse
import contextlib
import importlib.util
import os
import statistics
import time

import torch

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


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=256, help="tokens per sequence (Model A's context is 512)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per trial")
    p.add_argument("--trials", type=int, default=4, help="interleaved trials per model")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation happens here)")
    p.add_argument("--dtype", choices=["fp32", "bf16", "both"], default="both")
    p.add_argument("--compile", nargs="?", const="both", default="none", choices=["none", "ours", "both"],
                   help="torch.compile: --compile compiles both models, --compile ours only ours")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--model", default=os.path.join(os.path.dirname(__file__), "..", "model.py"),
                   help="the model.py to benchmark (e.g. a modified copy)")
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
    dtypes = ["fp32", "bf16"] if args.dtype == "both" else [args.dtype]

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

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    fused = bool(ours.configure_optimizers(0.1, 3e-4, (0.9, 0.95), device.type).defaults.get("fused"))
    print(f"# torch {torch.__version__}, {name}; Model A ({n_ours / 1e6:.2f}M params), batch {args.batch} x "
          f"{args.seq}, {args.steps} steps x {args.trials} trials (after {args.warmup} warm-up), "
          f"compile={args.compile}, AdamW fused: ours {fused}, HF True; "
          f"model {os.path.relpath(args.model)}")
    cpu = device.type == "cpu"
    print(f"{'dtype':5s} {'ours tok/s':>11s} {'HF tok/s':>11s} {'ratio':>6s}"
          + (f" {'by CPU time':>11s}" if cpu else "") + "  per-trial ratios"
          + ("   MFU ours / HF" if device.type == "cuda" else ""))
    for dtype in dtypes:
        opt_ours, opt_theirs = optimizers(ours, theirs, device.type)
        steps = {"ours": make_step(fwd_ours, ours_loss, opt_ours, device.type, dtype),
                 "hf": make_step(fwd_theirs, hf_loss, opt_theirs, device.type, dtype)}
        for step in steps.values():
            time_steps(step, x, y, args.warmup, device)
        rates = {"ours": [], "hf": []}      # tokens per wall-clock second, one per trial
        cpu_rates = {"ours": [], "hf": []}  # tokens per CPU second of this process
        for trial in range(args.trials):
            order = ["ours", "hf"] if trial % 2 == 0 else ["hf", "ours"]
            for who in order:
                wall_s, cpu_s = time_steps(steps[who], x, y, args.steps, device)
                rates[who].append(tokens / wall_s)
                cpu_rates[who].append(tokens / cpu_s)
        med = {who: statistics.median(r) for who, r in rates.items()}
        per_trial = " ".join(f"{a / b:.2f}" for a, b in zip(rates["ours"], rates["hf"]))
        line = f"{dtype:5s} {med['ours']:11.0f} {med['hf']:11.0f} {med['ours'] / med['hf']:6.2f}"
        if cpu:
            line += f" {statistics.median(cpu_rates['ours']) / statistics.median(cpu_rates['hf']):11.2f}"
        line += f"  {per_trial}"
        if device.type == "cuda":
            # estimate_mfu counts attention at the config's context; rescale to the benchmarked --seq
            scale = ours.flops_per_token(args.seq) / ours.flops_per_token()
            mfu = [ours.estimate_mfu(med[who], device=device) for who in ("ours", "hf")]
            if mfu[0] is not None:
                line += f"   {100 * mfu[0] * scale:.1f}% / {100 * mfu[1] * scale:.1f}%"
        print(line, flush=True)
        del steps, opt_ours, opt_theirs  # free both optimizers' state before the next dtype


if __name__ == "__main__":
    main()
