"""
Train a LLaMA on token bins made by tokenize_data.py. One process (CPU, one GPU) or DDP:

    python train.py config/model_a.py
    python train.py config/model_a.py --lr=1e-3 --max_iters=100     # overrides
    python train.py config/model_a.py --resume                      # continue out_dir/ckpt.safetensors exactly
    torchrun --standalone --nproc_per_node=4 train.py config/model_a.py

Everything the run does is set by three dataclasses: ModelConfig (model.py), TrainConfig (below)
and MixerConfig (mixer.py); configurator.py explains the config files. A run folder (out_dir) gets
config.json, log.jsonl (one JSON record per log interval, evaluation, mixer update and checkpoint),
ckpt.safetensors (the latest resumable checkpoint, replaced atomically) and checkpoints/chck_{N}M.safetensors
(the BabyLM milestone checkpoints that export_hf.py --all turns into branches).
"""

import dataclasses
import json
import math
import os
import re
import signal
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Optional

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from checkpoint import (CHECKPOINT_FILE, MILESTONES, load_checkpoint, load_model, load_train_state, milestone_name,
                        remove_stale_temporaries, rng_state, save_checkpoint, set_rng_state, write_json)
from configurator import load_config
from data import TokenWindows, heldout_windows, read_meta
from mixer import Mixer, MixerConfig
from model import DTYPES, ModelConfig, Transformer
from tokenizer import load_tokenizer


@dataclass
class TrainConfig:
    # I/O
    out_dir: str = "out"
    data_dir: str = "data/model_a"          # a folder written by tokenize_data.py
    eval_interval: int = 200                # iterations between evaluations (and checkpoints)
    eval_windows: int = 64                  # held-out windows per language, the same ones every time
    log_interval: int = 10
    resume: bool = False                    # continue from out_dir/ckpt.safetensors
    init_from: Optional[str] = None         # start from these weights (a checkpoint or exported folder)
    milestone_unit: str = "words"           # BabyLM checkpoints at 1M, 2M, ... "words" or "tokens"; "none" = off
    stop_iter: Optional[int] = None         # stop early (checkpoint saved) without changing the schedule
    # data: one optimizer step sees batch_size * block_size * grad_accum * world_size tokens
    batch_size: int = 16                    # sequences per micro-batch
    block_size: int = 512                   # tokens per sequence
    grad_accum: int = 4                     # micro-batches per optimizer step (per process)
    align_windows: bool = False             # start each window at a document (its first BOS), see TokenWindows
    keep_global_batch: bool = False         # under DDP, divide grad_accum by the world size
    # run length: give exactly one
    max_iters: Optional[int] = None
    epochs: Optional[float] = None          # passes over the training tokens (the mixer's budget, if any)
    max_tokens: Optional[int] = None
    # optimizer: AdamW, linear warmup, then decay to min_lr
    lr: float = 3e-4
    min_lr: float = 3e-5
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0                  # 0 disables clipping
    warmup_iters: int = 200
    decay: str = "cosine"                   # "cosine", "linear" or "constant"
    # system
    device: str = "auto"                    # auto: cuda, then mps, then cpu
    dtype: str = "auto"                     # auto: bfloat16 on CUDA if supported, else float16; float32 on CPU
    compile: bool = False                   # torch.compile the model
    seed: int = 1337
    ddp_timeout: int = 600                  # seconds a rank waits for the others before giving up


# ----------------------------------------------------------------------------- schedule

def learning_rate(it, cfg, max_iters):
    """Linear warmup to lr over warmup_iters, then decay to min_lr at max_iters."""
    if it < cfg.warmup_iters:
        return cfg.lr * (it + 1) / cfg.warmup_iters
    if cfg.decay == "constant" or max_iters <= cfg.warmup_iters:
        return cfg.lr
    progress = min(1.0, (it - cfg.warmup_iters) / (max_iters - cfg.warmup_iters))
    if cfg.decay == "linear":
        return cfg.lr - progress * (cfg.lr - cfg.min_lr)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)  # cosine


# ----------------------------------------------------------------------------- main

def main(argv):
    (model_cfg, cfg, mix_cfg), explicit = load_config(argv, ModelConfig, TrainConfig, MixerConfig)

    # -- processes and device
    ddp = int(os.environ.get("RANK", -1)) != -1  # launched by torchrun
    rank, local_rank, world_size = 0, 0, 1
    if ddp:
        rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
        world_size = int(os.environ["WORLD_SIZE"])
    device = cfg.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    if ddp:
        if device == "cuda":
            device = f"cuda:{local_rank}"
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo",
                                timeout=timedelta(seconds=cfg.ddp_timeout))
    master = rank == 0
    device_type = "cuda" if device.startswith("cuda") else device
    if cfg.keep_global_batch and world_size > 1:
        if cfg.grad_accum % world_size:
            raise SystemExit(f"config: grad_accum={cfg.grad_accum} is not divisible by the world size {world_size}")
        cfg.grad_accum //= world_size
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank

    dtype = cfg.dtype
    if dtype == "auto":
        dtype = ("bfloat16" if torch.cuda.is_bf16_supported() else "float16") if device_type == "cuda" else "float32"
    ptdtype = DTYPES[dtype]
    autocast = nullcontext() if dtype == "float32" else torch.autocast(device_type=device_type, dtype=ptdtype)
    if device_type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if device_type == "cpu":
        # compiled (Inductor) CPU kernels otherwise add some gradients up in a thread-dependent order,
        # so two runs drift apart from the 4th step; this costs nothing measurable on Model A
        torch.use_deterministic_algorithms(True, warn_only=True)

    # -- data
    meta = read_meta(cfg.data_dir)
    tokenizer = load_tokenizer(cfg.data_dir)
    if "vocab_size" not in explicit:
        model_cfg.vocab_size = meta["vocab_size"]
    if meta["vocab_size"] > model_cfg.vocab_size:
        raise SystemExit(f"{cfg.data_dir}: token ids go up to {meta['vocab_size'] - 1} but the model's vocab_size is {model_cfg.vocab_size}")
    if cfg.block_size > model_cfg.max_seq_len:
        raise SystemExit(f"config: block_size={cfg.block_size} exceeds max_seq_len={model_cfg.max_seq_len}")
    if mix_cfg.mixer == "none":
        batches = TokenWindows(cfg.data_dir, meta, cfg.batch_size, cfg.block_size, cfg.grad_accum, cfg.seed, rank,
                               world_size, cfg.align_windows)
    else:
        if cfg.align_windows:
            raise SystemExit("config: align_windows applies to the plain batch source; the mixer draws its own offsets")
        batches = Mixer(mix_cfg, cfg.data_dir, cfg.batch_size, cfg.block_size, cfg.seed, rank, world_size)
        if master:
            print(batches.describe())
    heldout = heldout_windows(cfg.data_dir, meta, cfg.block_size, cfg.eval_windows)
    words_per_token = {lang: info["train"]["words"] / max(1, info["train"]["tokens"]) for lang, info in meta["languages"].items()}
    words_per_token["mixed"] = sum(i["train"]["words"] for i in meta["languages"].values()) / max(1, sum(i["train"]["tokens"] for i in meta["languages"].values()))

    tokens_per_iter = cfg.batch_size * cfg.block_size * cfg.grad_accum * world_size
    given = [k for k in ("max_iters", "epochs", "max_tokens") if getattr(cfg, k) is not None]
    if len(given) != 1:
        raise SystemExit(f"config: give exactly one of max_iters, epochs, max_tokens (got {given or 'none'})")
    if cfg.max_iters is not None:
        max_iters = cfg.max_iters
    elif cfg.max_tokens is not None:
        max_iters = math.ceil(cfg.max_tokens / tokens_per_iter)
    else:
        max_iters = math.ceil(cfg.epochs * batches.train_tokens() / tokens_per_iter)

    # -- model and optimizer
    ckpt_path = os.path.join(cfg.out_dir, CHECKPOINT_FILE)
    ckpt = None
    if cfg.resume:
        if not os.path.isfile(ckpt_path):
            raise SystemExit(f"{ckpt_path}: nothing to resume (no checkpoint in out_dir)")
        ckpt = load_train_state(ckpt_path)
        start, info = load_checkpoint(ckpt_path)
        ckpt.update(iter_num=info["iter_num"], tokens_seen=info["tokens_seen"], words_seen=info["words_seen"])
    elif cfg.init_from:
        start, _ = load_model(cfg.init_from)
    model = Transformer(model_cfg)
    if cfg.resume or cfg.init_from:
        source = ckpt_path if cfg.resume else cfg.init_from
        if start.cfg != model_cfg:
            mine, theirs = dataclasses.asdict(model_cfg), dataclasses.asdict(start.cfg)
            diff = ", ".join(f"{k}: config {v}, checkpoint {theirs[k]}" for k, v in mine.items() if theirs[k] != v)
            raise SystemExit(f"{source}: checkpoint has another model shape than the config ({diff})")
        model.load_state_dict(start.state_dict())
        del start
    model.to(device)
    optimizer = model.configure_optimizers(cfg.weight_decay, cfg.lr, (cfg.beta1, cfg.beta2), device_type)
    scaler = torch.amp.GradScaler(device_type, enabled=(dtype == "float16"))
    iter_num, tokens_seen, words_seen = 0, 0, 0.0
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt["scaler"])
        batches.load_state_dict(ckpt["sampler"])
        set_rng_state(ckpt["rng"])
        iter_num, tokens_seen, words_seen = ckpt["iter_num"], ckpt["tokens_seen"], ckpt["words_seen"]
        ckpt = None  # free the memory
    raw_model = model  # its state_dict has no "_orig_mod." or "module." prefixes
    if cfg.compile:
        model = torch.compile(model)

    # -- a rank that dies or hangs: every other rank ends with one line, not a traceback or a hang
    def last_checkpoint():
        return f"the last checkpoint is {ckpt_path}" if os.path.isfile(ckpt_path) else "no checkpoint was saved"

    @contextmanager
    def collective(what):
        """Around code that waits for every rank. If another rank died, its socket closes and the
        wait fails at once; if it hangs, the wait fails after ddp_timeout seconds. (Only rank 0
        writes, between steps and atomically, so ckpt.safetensors is whole whatever happens here.)"""
        try:
            yield
        except RuntimeError as e:
            if not (ddp and collective_failed(e)):
                raise
            print(file=sys.stderr)  # off rank 0's progress bar line
            raise SystemExit(f"rank {rank}: lost contact with the other ranks during {what} ({short_reason(e)}); "
                             f"{last_checkpoint()}") from None

    def shut_down():
        """The ranks leave together: one that tore its connections down while another was still
        saving a checkpoint aborted in gloo now and then ('terminate called without an active exception')."""
        if ddp:
            with collective("shutdown"):
                dist.barrier()
            dist.destroy_process_group()

    def on_sigterm(signum, frame):  # torchrun sends SIGTERM to the other ranks when one fails
        print(file=sys.stderr)
        raise SystemExit(f"{f'rank {rank}: ' if ddp else ''}stopped by SIGTERM; {last_checkpoint()}")

    signal.signal(signal.SIGTERM, on_sigterm)
    if ddp:
        # the only buffers are RoPE's cos/sin tables, the same on every rank: no broadcast per forward
        with collective("startup"):
            model = DDP(model, device_ids=[local_rank] if device_type == "cuda" else None, forward_sync_buffers=False)

    resolved = {**dataclasses.asdict(model_cfg), **dataclasses.asdict(cfg), **dataclasses.asdict(mix_cfg),
                "max_iters_resolved": max_iters, "world_size": world_size, "dtype_resolved": dtype, "device_resolved": device}
    if master:
        os.makedirs(os.path.join(cfg.out_dir, "checkpoints"), exist_ok=True)
        remove_stale_temporaries(cfg.out_dir)
        remove_stale_temporaries(os.path.join(cfg.out_dir, "checkpoints"))
        write_json(os.path.join(cfg.out_dir, "config.json"), resolved, indent=2)
        print(json.dumps(resolved))
        print(f"model: {raw_model.num_params() / 1e6:.2f}M parameters; {tokens_per_iter:,} tokens per iteration; "
              f"{max_iters} iterations on {device} ({dtype})")
    log_file = open(os.path.join(cfg.out_dir, "log.jsonl"), "a") if master else None

    def log(record):
        if master:
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()

    def checkpoint(kind="resumable", path=ckpt_path):
        if not master:
            return
        info = {"model_config": dataclasses.asdict(model_cfg), "config": resolved, "tokenizer": tokenizer.to_dict(),
                "data_meta": meta, "iter_num": iter_num, "tokens_seen": tokens_seen, "words_seen": words_seen}
        train_state = None
        if kind == "resumable":
            train_state = {"optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                           "sampler": batches.state_dict(), "rng": rng_state()}
        save_checkpoint(path, raw_model, info, train_state)
        log({"kind": "checkpoint", "iter": iter_num, "path": path, "tokens": tokens_seen, "words": round(words_seen)})

    @torch.no_grad()
    def evaluate():
        """Mean held-out loss per language; each rank scores a share of the windows, then all-reduce."""
        model.eval()
        losses = {}
        for lang, windows in heldout.items():
            mine = windows[rank::world_size]
            total = torch.zeros(2, device=device)  # (sum of losses over windows, number of windows)
            for i in range(0, len(mine), cfg.batch_size):
                chunk = mine[i:i + cfg.batch_size].to(device)
                with autocast:
                    _, loss = raw_model(chunk[:, :-1], chunk[:, 1:])
                total += torch.stack([loss.float() * len(chunk), torch.tensor(float(len(chunk)), device=device)])
            if ddp:
                with collective(f"evaluation at iteration {iter_num}"):
                    dist.all_reduce(total)
            losses[lang] = (total[0] / total[1]).item()
        model.train()
        return losses

    def evaluate_and_update():
        losses = evaluate()
        log({"kind": "eval", "iter": iter_num, "tokens": tokens_seen, "val_loss": losses,
             "val_loss_mean": sum(losses.values()) / len(losses)})
        record = batches.update(iter_num, losses)
        if record is not None:
            log({"kind": "mixer", "iter": iter_num, **record})
        return losses

    # -- Ctrl-C: finish the current step, save, exit; a second Ctrl-C stops at once
    stop_requested = False

    def on_sigint(signum, frame):
        nonlocal stop_requested
        if stop_requested:
            raise KeyboardInterrupt
        stop_requested = True
        if master:
            print("\ninterrupt: finishing this step, then saving a checkpoint (Ctrl-C again to quit now)", file=sys.stderr)

    signal.signal(signal.SIGINT, on_sigint)

    def fetch(step, micro_step):
        x, y, lang = batches.get_batch(step, micro_step)
        if device_type == "cuda":  # pinned memory lets the host-to-device copy run asynchronously
            return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True), lang
        return x.to(device), y.to(device), lang

    # -- the loop
    from tqdm import tqdm
    bar = tqdm(total=max_iters, initial=iter_num, disable=not master, dynamic_ncols=True, desc="train")
    next_milestone = next((m for m in MILESTONES if m > (words_seen if cfg.milestone_unit == "words" else tokens_seen)), None)
    if iter_num == 0:
        evaluate_and_update()
    t_log, tokens_at_log, iter_at_log = time.time(), tokens_seen, iter_num
    loss_sum = torch.zeros((), device=device)
    while iter_num < max_iters:
        lr = learning_rate(iter_num, cfg, max_iters)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y, lang = fetch(iter_num, 0)
        # DDP talks to the other ranks in here: it all-reduces the gradients in the last backward pass
        # (and agrees on its gradient buckets in the second step's forward pass)
        with collective(f"training step {iter_num + 1}"):
            for micro_step in range(cfg.grad_accum):
                if ddp:  # all-reduce gradients only on the last micro-step; set before the forward pass
                    model.require_backward_grad_sync = micro_step == cfg.grad_accum - 1
                with autocast:
                    _, loss = model(x, y)
                loss_sum += loss.detach()
                # draw the next micro-batch while the GPU computes this one (within the step only: the
                # mixer may change its probabilities between steps)
                if micro_step + 1 < cfg.grad_accum:
                    next_batch = fetch(iter_num, micro_step + 1)
                scaler.scale(loss / cfg.grad_accum).backward()
                tokens_seen += x.numel() * world_size
                words_seen += x.numel() * world_size * words_per_token.get(lang, words_per_token["mixed"])
                if micro_step + 1 < cfg.grad_accum:
                    x, y, lang = next_batch
        if cfg.grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        iter_num += 1
        bar.update(1)

        if iter_num % cfg.log_interval == 0 or iter_num == max_iters:
            if ddp:  # the global batch's loss, so that every rank takes the same decision below
                with collective(f"training step {iter_num}"):
                    dist.all_reduce(loss_sum)
                loss_sum /= world_size
            mean_loss = (loss_sum / (cfg.grad_accum * (iter_num - iter_at_log))).item()  # one .item(): one sync
            loss_sum.zero_()
            if not math.isfinite(mean_loss):
                if master:
                    print(f"\nloss is {mean_loss} at iteration {iter_num}; stopping. The last good checkpoint is {ckpt_path}", file=sys.stderr)
                shut_down()
                return 1
            dt = time.time() - t_log
            tok_per_s = (tokens_seen - tokens_at_log) / max(dt, 1e-9)
            t_log, tokens_at_log, iter_at_log = time.time(), tokens_seen, iter_num
            mfu = raw_model.estimate_mfu(tok_per_s / world_size, device=device) if device_type == "cuda" else None
            log({"kind": "train", "iter": iter_num, "loss": mean_loss, "lr": lr, "tokens": tokens_seen,
                 "words": round(words_seen), "tok_per_s": round(tok_per_s, 1), "mfu": mfu, "seconds": round(dt, 3)})
            bar.set_postfix(loss=f"{mean_loss:.3f}", lr=f"{lr:.2e}", tok_s=f"{tok_per_s:,.0f}")

        seen = words_seen if cfg.milestone_unit == "words" else tokens_seen
        while cfg.milestone_unit != "none" and next_milestone is not None and seen >= next_milestone:
            checkpoint("milestone", os.path.join(cfg.out_dir, "checkpoints", milestone_name(next_milestone) + ".safetensors"))
            next_milestone = next((m for m in MILESTONES if m > next_milestone), None)

        stop = stop_requested or iter_num == cfg.stop_iter
        if ddp:  # a Ctrl-C reaches the ranks at slightly different moments: they agree to stop at one step
            flag = torch.tensor([float(stop)], device=device)
            with collective(f"training step {iter_num}"):
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())  # (a Ctrl-C that lands after `flag` was made counts at the next step)
        if iter_num % cfg.eval_interval == 0 or iter_num == max_iters:
            losses = evaluate_and_update()
            if master:
                bar.write(f"iter {iter_num}: val loss " + " ".join(f"{k} {v:.4f}" for k, v in losses.items()))
            checkpoint()
        elif stop:
            checkpoint()
        if stop:
            if master:
                bar.write(f"stopped at iteration {iter_num}; resume with the same command and --resume")
            break
    bar.close()
    shut_down()
    return 0


def collective_failed(e):
    """Did a collective fail (another rank died, or hung past ddp_timeout) rather than our own code?
    gloo raises a plain RuntimeError that names its source file; NCCL a torch.distributed.DistError."""
    return isinstance(e, dist.DistError) or "gloo" in str(e)


def short_reason(e):
    """'Read error [127.0.0.1]:37761: Connection reset by peer' out of
    '[.../gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:37761: Connection reset by peer. This is ...'"""
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return re.sub(r"^\[[^\]]*\]\s*", "", first).split(". ")[0][:200]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
