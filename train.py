"""
Train a LLaMA on token bins made by tokenize_data.py. One process (CPU, one GPU) or DDP:

    python train.py config/quickstart.py                            # the whole path in minutes: data, train, BLiMP, export
    python train.py config/model_a.py
    python train.py config/model_a.py --lr=1e-3 --max_iters=100     # overrides; a run length replaces the file's
    python train.py config/model_a.py --resume                      # continue out_dir/ckpt.safetensors exactly
    torchrun --standalone --nproc_per_node=4 train.py config/model_a.py
    python train.py --help                                          # every key, with its default

Everything the run does is set by three dataclasses: ModelConfig (model.py), TrainConfig (below)
and MixerConfig (mixer.py); configurator.py explains the config files. A run folder (out_dir) gets
config.json, log.jsonl (one JSON record per log interval, evaluation, mixer update and checkpoint),
ckpt.safetensors (the latest resumable checkpoint, replaced atomically),
checkpoints/chck_{N}M.safetensors (the BabyLM milestone checkpoints that export_hf.py --all turns
into branches) and, with ema_decay, ema.safetensors (a moving average of the weights). Before the
loop and after it, babylm.py: making missing data (make_data), a track's rules (track), the suites
scored at the end (eval_suites, in log.jsonl and blimp.json) and the export (export_to). How a run
stops on Ctrl-C or SIGTERM is stopping.py; what it prints while it trains, meter.py.

Read `main` first: set-up, then the loop. The functions after it are its parts, in the order
main calls them.
"""

import os
import signal
import sys

if __name__ == "__main__":  # first thing: a Ctrl-C or SIGTERM while torch imports (seconds) is one line too
    def stopped_while_starting(signum, frame):
        print(f"\n{signal.Signals(signum).name}: stopped while starting; nothing was written", file=sys.stderr)
        os._exit(128 + signum)
    signal.signal(signal.SIGINT, stopped_while_starting)
    signal.signal(signal.SIGTERM, stopped_while_starting)

import copy
import dataclasses
import json
import math
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Optional

import torch

import babylm
import distributed
import machine
from atomic import atomic_path, hold_lock, remove_stale_temporaries, write_json
from checkpoint import (CHECKPOINT_FILE, EMA_FILE, check_moments, load_train_state, load_weights, read_info,
                        read_weights, rng_state, same_tokenizer, set_rng_state, stored_tokenizer, write_checkpoint)
from configurator import load_config
from data import Shard, heldout_batches, read_meta
from load import load_model
from meter import Meter
from mixer import MixerConfig, open_batch_source
from model import DTYPES, ModelConfig, Transformer
from stopping import Stop, guarded, set_handlers
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
    force: bool = False                     # start over in an out_dir that holds a run (its checkpoints go)
    init_from: Optional[str] = None         # start from these weights (a checkpoint or exported folder)
    init_from_other_tokenizer: bool = False  # init_from weights trained with another tokenizer than data_dir's
    milestone_unit: str = "words"           # BabyLM checkpoints at 1M, 2M, ... "words" or "tokens"; "none" = off
    stop_iter: Optional[int] = None         # stop early (checkpoint saved) without changing the schedule
    make_data: Optional[str] = None         # tokenize_data.py's arguments (no --out): run when data_dir has no data
    # the challenge (babylm.py): its rules, and the scores and export at the end of a run
    track: Optional[str] = None             # "strict-small" (10M words), "strict" (100M), "multilingual" (100M
                                            # tokens): the data's budget, at most 10 epochs, milestones in words
    eval_suites: Optional[str] = None       # "blimp_filtered,blimp_supplement": scored after the final checkpoint
    eval_fast: bool = False                 # the first 200 pairs of each paradigm (BabyLM's fast set)
    eval_milestones: bool = False           # score eval_suites at each milestone checkpoint too
    eval_data_root: Optional[str] = None    # where the suites live (eval_blimp --data-root); None: ../shared/data
    export_to: Optional[str] = None         # export the final model to this folder (export_hf.py)
    # data: one optimizer step sees batch_size * block_size * grad_accum * world_size tokens
    batch_size: int = 16                    # sequences per micro-batch
    block_size: int = 512                   # tokens per sequence
    grad_accum: int = 4                     # micro-batches per optimizer step (per process)
    samples: str = "windows"                # "windows": block_size windows across documents; "lines": one
                                            # document a sample, packed (data.py; the Model A card's way)
    align_windows: bool = False             # start each window at a document (its first BOS), see TokenWindows
    short_first: bool = False               # samples="lines": the first epoch from the shortest piece to the
                                            # longest (a curriculum), the later ones shuffled
    join_lines: bool = False                # samples="lines": neighbouring lines joined into pieces of up to
                                            # block_size tokens, BOS between them (data.join_neighbours);
                                            # the held-out loss stays one line a sample
    keep_global_batch: bool = False         # under DDP, divide grad_accum by the world size
    # run length: give exactly one (one given on the command line replaces a config file's)
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
    decay: str = "cosine"                   # "cosine", "linear", "constant" or "wsd" (see learning_rate)
    cooldown: float = 0.2                   # decay="wsd": the share of max_iters spent decaying, at the end
    ema_decay: float = 0.0                  # > 0: also keep an exponential moving average of the weights
                                            # (WeightAverage), saved as out_dir/ema.safetensors; 0 = off
    # system
    device: str = "auto"                    # auto: cuda, then mps, then cpu
    dtype: str = "auto"                     # auto: what the device computes natively (machine.py): bf16 on a
                                            # GPU that has it (else fp16) or a CPU with native bf16, else fp32;
                                            # on resume, the precision the run started in
    compile: bool = False                   # torch.compile the model
    seed: int = 1337
    ddp_timeout: int = 600                  # seconds a rank waits for the others before giving up

    def __post_init__(self):
        def check(ok, message):
            if not ok:
                raise ValueError(message)
        for key in ("eval_interval", "eval_windows", "log_interval", "batch_size", "block_size", "grad_accum",
                    "ddp_timeout"):
            check(getattr(self, key) >= 1, f"{key}={getattr(self, key)}: must be at least 1")
        check(self.batch_size * self.block_size <= MAX_BATCH_TOKENS,
              f"batch_size={self.batch_size} x block_size={self.block_size}: over {MAX_BATCH_TOKENS:,} tokens a "
              f"micro-batch (raise grad_accum instead)")
        for key in ("max_iters", "epochs", "max_tokens", "stop_iter"):
            value = getattr(self, key)
            check(value is None or value > 0, f"{key}={value}: must be positive")
        given = [k for k in RUN_LENGTH if getattr(self, k) is not None]
        check(len(given) <= 1, f"give one of max_iters, epochs, max_tokens, not {' and '.join(given)}")
        check(self.lr > 0 and 0 <= self.min_lr <= self.lr, f"lr={self.lr}, min_lr={self.min_lr}: need 0 <= min_lr <= lr, lr > 0")
        check(self.weight_decay >= 0, f"weight_decay={self.weight_decay}: must be >= 0")
        check(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, f"beta1={self.beta1}, beta2={self.beta2}: each must be in [0, 1)")
        check(self.grad_clip >= 0, f"grad_clip={self.grad_clip}: must be >= 0 (0 disables clipping)")
        check(self.warmup_iters >= 0, f"warmup_iters={self.warmup_iters}: must be >= 0")
        check(0 < self.cooldown <= 1, f"cooldown={self.cooldown}: must be in (0, 1]")
        check(0 <= self.ema_decay < 1, f"ema_decay={self.ema_decay}: must be in [0, 1) (0 = off)")
        check(self.samples in ("windows", "lines"), f"samples={self.samples!r}: expected 'windows' or 'lines'")
        check(not (self.align_windows and self.samples == "lines"), "align_windows: only for samples='windows'")
        check(not (self.short_first and self.samples == "windows"), "short_first: only for samples='lines'")
        check(not (self.join_lines and self.samples == "windows"), "join_lines: only for samples='lines'")
        check(self.decay in DECAYS, f"decay={self.decay!r}: expected one of {', '.join(DECAYS)}")
        check(self.milestone_unit in ("words", "tokens", "none"),
              f"milestone_unit={self.milestone_unit!r}: expected 'words', 'tokens' or 'none'")
        check(self.device in ("auto", "cpu", "mps") or self.device.split(":")[0] == "cuda",
              f"device={self.device!r}: expected auto, cpu, cuda, cuda:N or mps")
        check(self.dtype == "auto" or self.dtype in DTYPES, f"dtype={self.dtype!r}: expected auto or one of {', '.join(DTYPES)}")
        check(not (self.resume and self.init_from), "resume and init_from: give one (resume continues out_dir's run)")
        check(not (self.resume and self.force), "resume and force: give one (force starts out_dir's run over)")
        babylm.check_config(self)  # track, eval_suites, make_data


RUN_LENGTH = ("max_iters", "epochs", "max_tokens")
MAX_BATCH_TOKENS = 1 << 20  # far above what fits a GPU; a typo's 10**6 x 512 would allocate until the machine dies
DECAYS = ("cosine", "linear", "constant", "wsd")


@dataclass
class Progress:
    """Where the run is; saved in every checkpoint."""
    iter_num: int = 0
    tokens_seen: int = 0
    words_seen: float = 0.0   # tokens x the language's words per token: BabyLM counts words


# ----------------------------------------------------------------------------- main

def main(argv):
    model_cfg, cfg, mix_cfg, explicit = read_config(argv)
    ranks = distributed.start(cfg.device, cfg.ddp_timeout)
    ranks.checkpoint_path = os.path.join(cfg.out_dir, CHECKPOINT_FILE)
    share_accumulation(cfg, ranks.world_size)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    dtype, autocast, why = choose_precision(cfg, ranks)  # prints the run's first line: device and precision
    meta, tokenizer, batches, heldout = open_data(cfg, model_cfg, mix_cfg, explicit, ranks)
    words_per_token = words_per_token_of(meta)
    max_iters = count_iterations(cfg, meta, batches, ranks)  # and the track's rules (babylm.check_track)
    raw_model, optimizer, scaler, progress, average = build_model(cfg, model_cfg, batches, tokenizer, ranks, dtype)
    # raw_model is the one we save: its state_dict has no "_orig_mod." or "module." prefixes
    model = distributed.wrap(torch.compile(raw_model) if cfg.compile else raw_model, ranks)

    resolved = resolved_config(model_cfg, cfg, mix_cfg, max_iters, ranks, dtype, why)
    if nothing_left(progress.iter_num, min(max_iters, cfg.stop_iter or max_iters), ranks):
        return 0
    log = open_run_folder(cfg, resolved, ranks, progress.iter_num)
    meter = Meter(cfg, raw_model, progress, max_iters, ranks, dtype)  # prints what the run will do

    def save(path=ranks.checkpoint_path, resumable=True):
        if ranks.master:
            info = {"model_config": dataclasses.asdict(model_cfg), "config": resolved, "tokenizer": tokenizer.to_dict(),
                    "data_meta": meta, "mixer": batches.summary(), **dataclasses.asdict(progress)}
            state = {"optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(), "sampler": batches.state_dict(),
                     "rng": rng_state(), "average": average and average.model} if resumable else None
            write_checkpoint(path, raw_model, info, state, ranks)
            log({"kind": "checkpoint", "iter": progress.iter_num, "path": path, "tokens": progress.tokens_seen,
                 "words": round(progress.words_seen)})

    def evaluate_and_update():
        """The held-out losses (the weight average's too, once it differs), logged and given to the mixer; None if not finite."""
        losses = evaluate(raw_model, heldout, autocast, ranks, progress.iter_num)
        if diverged(loss_sum, ranks, progress.iter_num, *losses.values()):
            return None
        ema = {"val_loss_ema": evaluate(average.model, heldout, autocast, ranks, progress.iter_num)} if average and progress.iter_num else {}
        log({"kind": "eval", "iter": progress.iter_num, "tokens": progress.tokens_seen, "val_loss": losses,
             "val_loss_mean": sum(losses.values()) / len(losses), **ema})
        record = batches.update(progress.iter_num, losses)  # the mixer learns from the held-out losses
        if record is not None:
            log({"kind": "mixer", "iter": progress.iter_num, **record})
        return losses

    # -- the loop
    milestones = babylm.Milestones(cfg.milestone_unit, progress)
    loss_sum = torch.zeros((), device=ranks.device)  # training loss summed since the last log
    with Stop(ranks) as stop:  # from here Ctrl-C or SIGTERM ends the run after a step, with a checkpoint
        if progress.iter_num == 0 and evaluate_and_update() is None:
            return 1
        meter.start()
        stopping = 0
        while progress.iter_num < max_iters:
            lr = learning_rate(progress.iter_num, cfg.lr, cfg.min_lr, cfg.warmup_iters, max_iters, cfg.decay, cfg.cooldown)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = batches.get_batch(progress.iter_num, 0).to(ranks.device)
            # DDP talks to the other ranks in here: it all-reduces the gradients in the last backward pass
            # (and agrees on its gradient buckets in the second step's forward pass)
            with ranks.collective(f"training step {progress.iter_num + 1}"):
                for micro_step in range(cfg.grad_accum):
                    last_micro_step = micro_step == cfg.grad_accum - 1
                    if ranks.ddp:  # all-reduce gradients only on the last micro-step; set before the forward pass
                        model.require_backward_grad_sync = last_micro_step
                    with autocast:
                        _, loss = model(batch.x, batch.y, positions=batch.positions, mask=batch.mask)
                    loss = loss * batch.weight  # this micro-batch's share of the step's mean loss (data.Batch)
                    loss_sum += loss.detach()
                    # draw the next micro-batch while the GPU computes this one (within the step only: the
                    # mixer may change its probabilities between steps)
                    next_batch = None if last_micro_step else batches.get_batch(progress.iter_num, micro_step + 1).to(ranks.device)
                    scaler.scale(loss).backward()
                    progress.tokens_seen += batch.tokens
                    progress.words_seen += batch.tokens * words_per_token.get(batch.lang, words_per_token["mixed"])
                    batch = next_batch
            if cfg.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            progress.iter_num += 1
            if average:
                average.update(raw_model, progress.iter_num)
            meter.step()

            if progress.iter_num % cfg.log_interval == 0 or progress.iter_num == max_iters:
                # the global batch's mean loss, so that every rank takes the same decision below
                ranks.all_reduce(loss_sum, f"training step {progress.iter_num}")
                mean_loss = (loss_sum / ranks.world_size / meter.iters_since_log()).item()  # one .item(): one sync
                if diverged(loss_sum, ranks, progress.iter_num, mean_loss):
                    return 1
                loss_sum.zero_()
                log(meter.log_record(mean_loss, lr))  # "train": loss, lr, tokens, words, tok_per_s, mfu, seconds

            for name in milestones.passed():  # chck_1M, ... (babylm.milestone_name)
                with meter.paused():
                    if diverged(loss_sum, ranks, progress.iter_num):
                        return 1
                    save(os.path.join(cfg.out_dir, "checkpoints", name + ".safetensors"), resumable=False)
                    babylm.at_milestone(cfg, raw_model, tokenizer, log, progress.iter_num, name, ranks.master)

            stopping = stop.agreed(cfg.stop_iter is not None and progress.iter_num >= cfg.stop_iter, progress.iter_num)
            if progress.iter_num % cfg.eval_interval == 0 or progress.iter_num == max_iters:
                with meter.paused():  # evaluating and saving: not counted in tok/s
                    losses = evaluate_and_update()
                    if losses is None:
                        return 1
                    meter.eval_line(losses)
                    save()
            elif stopping:
                if diverged(loss_sum, ranks, progress.iter_num):
                    return 1
                save()
            if stopping:
                meter.write(Stop.message(stopping, progress.iter_num))
                break
        meter.close()
        ranks.finish()  # inside Stop: torchrun follows a Ctrl-C with SIGTERM, which may land while the ranks leave
    return Stop.exit_code(stopping) if progress.iter_num < max_iters else \
        babylm.end_of_run(cfg, raw_model, tokenizer, log, progress.iter_num, ranks.master)  # score, export


# ----------------------------------------------------------------------------- set-up

def read_config(argv):
    """(ModelConfig, TrainConfig, MixerConfig, the keys set explicitly) from config files and flags."""
    (model_cfg, cfg, mix_cfg), explicit = load_config(argv, ModelConfig, TrainConfig, MixerConfig,
                                                      exclusive=[RUN_LENGTH], program="train.py")
    if not any(getattr(cfg, k) is not None for k in RUN_LENGTH):
        raise SystemExit("config: give the run length: one of max_iters, epochs, max_tokens")
    if cfg.block_size > model_cfg.max_seq_len:
        raise SystemExit(f"config: block_size={cfg.block_size} exceeds max_seq_len={model_cfg.max_seq_len}")
    mixer_keys = sorted(explicit & {f.name for f in dataclasses.fields(MixerConfig)} - {"mixer"})
    if mix_cfg.mixer == "none" and mixer_keys:
        raise SystemExit(f"config: {', '.join(mixer_keys)} set without a mixer (mixer='none'): they would do nothing; "
                         f"add --mixer=static (or taam, exp3, hedge)")
    existing = os.path.join(cfg.out_dir, CHECKPOINT_FILE)
    if not cfg.resume and not cfg.force and os.path.isfile(existing):
        at = read_info(existing).get("iter_num", "?")
        raise SystemExit(f"{cfg.out_dir}: holds a run at iteration {at}: add --resume to continue it, or --force to "
                         f"start over")
    if os.path.realpath(cfg.out_dir) == os.path.realpath(cfg.data_dir):
        raise SystemExit(f"config: out_dir and data_dir are both {cfg.data_dir}; a run gets a folder of its own")
    if mix_cfg.mixer != "none" and (cfg.align_windows or cfg.samples == "lines"):
        raise SystemExit("config: align_windows and samples='lines' apply to the plain batch sources; the mixer draws "
                         "its own windows")
    babylm.check_end_of_run(cfg)  # the suites' files are there and export_to can be written: before training
    return model_cfg, cfg, mix_cfg, explicit


def share_accumulation(cfg, world_size: int):
    """keep_global_batch: under DDP each rank does grad_accum / world_size micro-steps, so that a step
    sees the same tokens on any number of ranks."""
    if cfg.keep_global_batch and world_size > 1:
        if cfg.grad_accum % world_size:
            raise SystemExit(f"config: grad_accum={cfg.grad_accum} is not divisible by the world size {world_size}")
        cfg.grad_accum //= world_size


def resolved_config(model_cfg, cfg, mix_cfg, max_iters: int, ranks, dtype: str, why: str) -> dict:
    """Every setting, with what the run length and "auto" became, and the machine (numbers from two
    machines compare only through it): config.json, and each checkpoint's "config"."""
    return {**dataclasses.asdict(model_cfg), **dataclasses.asdict(cfg), **dataclasses.asdict(mix_cfg),
            "max_iters_resolved": max_iters, "world_size": ranks.world_size, "dtype_resolved": dtype,
            "device_resolved": ranks.device, "machine": machine.record(ranks.device_type, dtype, why)}


def nothing_left(iter_num: int, last: int, ranks) -> bool:
    """A resumed run already at (or past) its last iteration or stop_iter: say so and leave."""
    if iter_num < last:
        return False
    if ranks.master:
        print(f"{ranks.checkpoint_path}: already at iteration {iter_num} (the run stops at {last}); nothing to do")
    ranks.finish()
    return True


def choose_precision(cfg, ranks):
    """(dtype name, autocast context, why). auto: the precision the device computes natively
    (machine.choose_dtype: bf16 on a GPU that has it, else fp16 with a grad scaler; on a CPU bf16 only
    where a measured probe finds it native, else fp32); a resumed run keeps the precision it started in,
    on whatever machine it continues. Rank 0 prints it as the run's first line
    (`cpu AMD EPYC (AVX2), 2 threads; float32 (auto: ...)`), and warns when its threads outnumber
    the free cores."""
    device_type = ranks.device_type
    started = None
    if cfg.resume and cfg.dtype == "auto" and os.path.isfile(ranks.checkpoint_path):
        config = read_info(ranks.checkpoint_path).get("config")
        started = config.get("dtype_resolved") if isinstance(config, dict) else None
    dtype, why = machine.choose_dtype(started if started in DTYPES else cfg.dtype, device_type)
    if started in DTYPES:  # machine.choose_dtype's notice stays: the run's precision may be emulated here
        why = "auto, resumed: the precision the run started in" + \
            why.removeprefix("asked for").replace("dtype=auto picks float32", "--dtype=float32 switches from here on")
    if ranks.master:
        print(machine.describe(device_type, dtype, why))
        if device_type == "cpu" and (warning := machine.thread_warning()):
            print(warning)  # stdout: stderr is kept for the one line of an error
    if device_type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if device_type == "cpu":
        # compiled (Inductor) CPU kernels otherwise add some gradients up in a thread-dependent order,
        # and two runs of the same command drift apart after a few steps
        torch.use_deterministic_algorithms(True, warn_only=True)
    autocast = nullcontext() if dtype == "float32" else torch.autocast(device_type=device_type, dtype=DTYPES[dtype])
    return dtype, autocast, why


def open_data(cfg, model_cfg, mix_cfg, explicit, ranks):
    """meta.json, the tokenizer, the batch source (mixer.open_batch_source says which) and the held-out
    batches. The model's vocab_size is the data's unless set explicitly."""
    babylm.make_data(cfg, ranks)  # when data_dir has none and the config says how (make_data)
    meta = read_meta(cfg.data_dir)
    tokenizer = load_tokenizer(cfg.data_dir)
    if "vocab_size" not in explicit:
        model_cfg.vocab_size = meta["vocab_size"]
    if meta["vocab_size"] > model_cfg.vocab_size:
        raise SystemExit(f"{cfg.data_dir}: token ids go up to {meta['vocab_size'] - 1} but the model's vocab_size is {model_cfg.vocab_size}")
    shard = Shard(cfg.batch_size, cfg.block_size, cfg.grad_accum, cfg.seed, ranks.rank, ranks.world_size)
    batches = open_batch_source(cfg, mix_cfg, meta, shard, tokenizer.bos_input)
    heldout = heldout_batches(cfg.data_dir, meta, shard, cfg.eval_windows, cfg.samples, tokenizer.bos_input)
    return meta, tokenizer, batches, heldout


def words_per_token_of(meta) -> dict:
    """Per language (and "mixed" for a batch of several) the training text's words per token."""
    langs = meta["languages"].values()
    ratio = {lang: info["train"]["words"] / max(1, info["train"]["tokens"]) for lang, info in meta["languages"].items()}
    ratio["mixed"] = sum(i["train"]["words"] for i in langs) / max(1, sum(i["train"]["tokens"] for i in langs))
    return ratio


def count_iterations(cfg, meta, batches, ranks) -> int:
    """The run length in iterations, checked against the track's rules (babylm.check_track). An epoch
    is one pass over the batch source's samples (windows or pieces); max_tokens counts input tokens,
    at the source's mean tokens per sample."""
    samples_per_iter = cfg.batch_size * cfg.grad_accum * ranks.world_size
    if cfg.max_iters is not None:
        iters = cfg.max_iters
    elif cfg.max_tokens is not None:
        tokens_per_sample = batches.train_tokens() / batches.samples_per_epoch()
        iters = math.ceil(cfg.max_tokens / (samples_per_iter * tokens_per_sample))
    else:
        iters = math.ceil(cfg.epochs * batches.samples_per_epoch() / samples_per_iter)
    babylm.check_track(cfg, meta, batches, iters, samples_per_iter, ranks.master)
    return iters


def build_model(cfg, model_cfg, batches, tokenizer, ranks, dtype):
    """The model (fresh, from init_from, or resumed with everything that decides what comes next:
    optimizer, grad scaler, batch source, random generators), the optimizer and the scaler."""
    model = Transformer(model_cfg)
    state, progress = None, Progress()
    if cfg.resume:
        if not os.path.isfile(ranks.checkpoint_path):
            raise SystemExit(f"{ranks.checkpoint_path}: nothing to resume (no checkpoint in out_dir)")
        state = load_train_state(ranks.checkpoint_path)
        weights, info = read_weights(ranks.checkpoint_path)
        same_tokenizer(stored_tokenizer(ranks.checkpoint_path, info), tokenizer, ranks.checkpoint_path, "--resume")
        progress = Progress(info["iter_num"], info["tokens_seen"], info["words_seen"])
        load_weights(model, weights, info["model_config"], ranks.checkpoint_path)
    elif cfg.init_from:
        start, their_tokenizer = load_model(cfg.init_from)
        if not cfg.init_from_other_tokenizer:
            same_tokenizer(their_tokenizer, tokenizer, cfg.init_from, "--init_from")
        load_weights(model, start.state_dict(), start.cfg, cfg.init_from)
    model.to(ranks.device)
    optimizer = model.configure_optimizers(cfg.weight_decay, cfg.lr, (cfg.beta1, cfg.beta2), ranks.device_type)
    scaler = torch.amp.GradScaler(ranks.device_type, enabled=(dtype == "float16"))
    average = WeightAverage(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    if state is not None:
        check_moments(state["optimizer"], optimizer, ranks.checkpoint_path)
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        batches.load_state_dict(state["sampler"])
        set_rng_state(state["rng"])
        if average and state["average"] is None:
            raise SystemExit(f"{ranks.checkpoint_path}: the run was saved without a weight average; resume it "
                             f"without ema_decay (or start a new run with it)")
        if average:
            load_weights(average.model, state["average"], model.cfg, ranks.checkpoint_path)
    return model, optimizer, scaler, progress, average


class WeightAverage:
    """An exponential moving average (EMA) of the weights, kept beside the model that trains and saved
    as out_dir/ema.safetensors, which eval_blimp.py and export_hf.py read like any checkpoint. Averaging
    the last stretch of training cancels some of the noise of the last steps, and such an average can
    generalise better than the last weights (Polyak averaging; results/README.md measures it on Model A)."""

    def __init__(self, model, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).requires_grad_(False)

    @torch.no_grad()
    def update(self, model, step: int):
        # the share of the newest weights: 1/step (the plain mean of all weights so far: the random start
        # never counts) until that falls to 1 - decay, then 1 - decay (each older step weighs decay x less)
        share = max(1 - self.decay, 1 / step)
        for mine, theirs in zip(self.model.parameters(), model.parameters()):
            mine.lerp_(theirs, share)


def open_run_folder(cfg, resolved: dict, ranks, iter_num: int):
    """Rank 0 writes out_dir/config.json and returns log(record), which appends a line to
    out_dir/log.jsonl; on the other ranks log does nothing. A resumed run keeps the records up to its
    checkpoint's iteration and drops the later ones (written before a crash, about to be redone), so
    the log's iterations never go backwards; a new run starts a new log."""
    if not ranks.master:
        return lambda record: None
    log_path = os.path.join(cfg.out_dir, "log.jsonl")
    try:
        os.makedirs(os.path.join(cfg.out_dir, "checkpoints"), exist_ok=True)
    except OSError as e:
        raise SystemExit(f"{cfg.out_dir}: cannot write the run folder ({e.strerror or e})")
    # one run a folder: held until this process ends, however it ends (the kernel drops it)
    lock = hold_lock(os.path.join(cfg.out_dir, ".lock"), cfg.out_dir)
    try:
        if cfg.force and not cfg.resume:  # start over: nothing of the old run may mix with the new one
            old = [os.path.join(cfg.out_dir, "checkpoints", n) for n in os.listdir(os.path.join(cfg.out_dir, "checkpoints"))]
            for path in [ranks.checkpoint_path, os.path.join(cfg.out_dir, EMA_FILE), *old]:
                if os.path.isfile(path) and path.endswith(".safetensors"):
                    os.remove(path)
        remove_stale_temporaries(cfg.out_dir)
        remove_stale_temporaries(os.path.join(cfg.out_dir, "checkpoints"))
        kept = []
        if cfg.resume and os.path.isfile(log_path):
            with open(log_path) as f:
                kept = [line for line in f if line.strip() and json.loads(line).get("iter", 0) <= iter_num]
        with atomic_path(log_path) as tmp, open(tmp, "w") as f:
            f.writelines(kept)
        write_json(os.path.join(cfg.out_dir, "config.json"), resolved, indent=2)
        log_file = open(log_path, "a")
    except (OSError, ValueError) as e:
        raise SystemExit(f"{cfg.out_dir}: cannot write the run folder ({getattr(e, 'strerror', None) or e})")
    print(json.dumps(resolved))

    def log(record):
        log_file.write(json.dumps(record) + "\n")
        log_file.flush()
    log.lock = lock  # lives as long as the run's log
    return log


# ----------------------------------------------------------------------------- the loop's parts

def learning_rate(it: int, lr: float, min_lr: float, warmup_iters: int, max_iters: int, decay: str = "cosine",
                  cooldown: float = 0.2) -> float:
    """The learning rate of step it (counted from 0): a linear warmup to lr, then a decay to min_lr at max_iters.

        it < warmup_iters:   lr * (it + 1) / warmup_iters
        then, with p = min(1, (it - warmup_iters) / (max_iters - warmup_iters)) going from 0 to 1:
            cosine           min_lr + (lr - min_lr) * (1 + cos(pi * p)) / 2     (Loshchilov & Hutter 2017)
            linear           lr - (lr - min_lr) * p
            constant         lr
            wsd              warmup-stable-decay: lr until the last `cooldown` share of max_iters, then
                             min_lr + (lr - min_lr) * (1 - sqrt(q)), q going from 0 to 1 over those steps
                             (the "1 - sqrt" cooldown of Hägele et al. 2024, which matched cosine there)
    """
    if it < warmup_iters:
        return lr * (it + 1) / warmup_iters
    if decay == "constant" or max_iters <= warmup_iters:
        return lr
    if decay == "wsd":
        start = max(warmup_iters, max_iters - cooldown * max_iters)  # the first step of the cooldown
        q = min(1.0, max(0.0, (it - start) / (max_iters - start)))
        return min_lr + (lr - min_lr) * (1 - math.sqrt(q))
    p = min(1.0, (it - warmup_iters) / (max_iters - warmup_iters))
    if decay == "linear":
        return lr - p * (lr - min_lr)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * p)) * (lr - min_lr)  # cosine


def diverged(loss_sum, ranks, iter_num: int, *losses) -> bool:
    """Is a loss inf or NaN: loss_sum (the training loss summed since the last log), or one of `losses`
    (values every rank agrees on)? Checked at every log and before every checkpoint, so that no
    checkpoint ever holds a diverged model; then the run ends."""
    bad = torch.logical_not(torch.isfinite(loss_sum)).float()
    ranks.all_reduce(bad, f"training step {iter_num}")  # every rank takes the same decision
    if bad.item() == 0 and all(math.isfinite(v) for v in losses):
        return False
    if ranks.master:
        print(f"\nthe loss is not finite at iteration {iter_num}; stopping without saving "
              f"({ranks.last_checkpoint()}: lower lr, or raise warmup_iters)", file=sys.stderr)
    ranks.finish()
    return True


@torch.no_grad()
def evaluate(model, heldout, autocast, ranks, iter_num) -> dict:
    """Mean held-out loss per target token, per language; each rank scores a share of the batches,
    then all-reduce."""
    model.eval()
    losses = {}
    for lang, batches in heldout.items():
        total = torch.zeros(2, device=ranks.device)  # (sum of token losses, number of target tokens)
        for batch in batches[ranks.rank::ranks.world_size]:
            batch = batch.to(ranks.device)
            with autocast:
                _, loss = model(batch.x, batch.y, positions=batch.positions, mask=batch.mask)
            targets = (batch.y >= 0).sum()
            total += torch.stack([loss.float() * targets, targets.float()])
        ranks.all_reduce(total, f"evaluation at iteration {iter_num}")
        losses[lang] = (total[0] / total[1]).item()
    model.train()
    return losses


def run(argv) -> int:
    """main, with a signal that arrives before the loop's handlers are installed (or a second Ctrl-C)
    ending the run with one line and 128 + the signal's number (stopping.py)."""
    return guarded(main, argv)


if __name__ == "__main__":
    # run gives back the handlers it found: these, which let the process end as run decided even when a
    # signal comes now (torchrun sends SIGTERM to every rank once one has failed or been interrupted)
    set_handlers(lambda signum, frame: None, lambda signum, frame: None)
    sys.exit(run(sys.argv[1:]))
