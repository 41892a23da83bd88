"""
What a training run shows while it trains (train.py's Meter): the headline, a tqdm progress bar on a
terminal, a line at each evaluation, and the speed in each "train" record of log.jsonl. Nothing here
changes what trains.
"""

import time
from contextlib import contextmanager


class Meter:
    """What the run shows while it trains: a headline, the progress bar (on a terminal), a line at each
    evaluation, and the speed in each "train" log record. tok/s leaves out the time spent evaluating
    and saving (the meter is paused then); the time left counts it."""

    def __init__(self, cfg, model, progress, max_iters: int, ranks, dtype: str):
        from tqdm import tqdm
        self.model, self.progress, self.max_iters, self.ranks = model, progress, max_iters, ranks
        if ranks.master:
            samples = cfg.batch_size * cfg.grad_accum * ranks.world_size
            per_iter = (f"{samples} pieces of at most {cfg.block_size} tokens" if cfg.samples == "lines"
                        else f"{samples * cfg.block_size:,} tokens")
            print(f"model: {model.num_params() / 1e6:.2f}M parameters; {per_iter} per iteration; "
                  f"{max_iters} iterations on {ranks.device} ({dtype})")
        self.bar = tqdm(total=max_iters, initial=progress.iter_num, disable=not ranks.master or None,
                        dynamic_ncols=True, desc="train")  # off a terminal the bar is silent: eval_line prints
        self.last = ""  # the latest training loss and speed, for the next evaluation's line

    def start(self):
        """Start the clocks (after the first evaluation)."""
        self.t_start = self.t_log = time.time()
        self.iter_at_start = self.iter_at_log = self.progress.iter_num
        self.tokens_at_log, self.paused_seconds = self.progress.tokens_seen, 0.0

    def step(self):
        self.bar.update(1)

    def iters_since_log(self) -> int:
        return self.progress.iter_num - self.iter_at_log

    def log_record(self, loss: float, lr: float) -> dict:
        """The "train" log record: loss, lr, tokens and words seen, and since the last record tok_per_s
        (all ranks; not counting evaluation and saving), mfu (on CUDA) and the wall-clock seconds."""
        seconds = time.time() - self.t_log
        tok_per_s = (self.progress.tokens_seen - self.tokens_at_log) / max(seconds - self.paused_seconds, 1e-9)
        self.t_log, self.tokens_at_log, self.iter_at_log = time.time(), self.progress.tokens_seen, self.progress.iter_num
        self.paused_seconds = 0.0
        ranks = self.ranks
        mfu = self.model.estimate_mfu(tok_per_s / ranks.world_size, device=ranks.device) if ranks.device_type == "cuda" else None
        self.bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}", tok_s=f"{tok_per_s:,.0f}")
        self.last = f"train loss {loss:.4f} ({tok_per_s:,.0f} tok/s), "
        return {"kind": "train", "iter": self.progress.iter_num, "loss": loss, "lr": lr, "tokens": self.progress.tokens_seen,
                "words": round(self.progress.words_seen), "tok_per_s": round(tok_per_s, 1), "mfu": mfu,
                "seconds": round(seconds, 3)}

    @contextmanager
    def paused(self):
        """Time spent in here is left out of tok/s."""
        t = time.time()
        yield
        self.paused_seconds += time.time() - t

    def eval_line(self, losses: dict):
        """iter 200/4000: train loss 3.1234 (52,000 tok/s), val loss eng 3.2345 nld 3.3456, 12m34s left"""
        seconds_per_iter = (time.time() - self.t_start) / (self.progress.iter_num - self.iter_at_start)
        left = round(seconds_per_iter * (self.max_iters - self.progress.iter_num))
        self.write(f"iter {self.progress.iter_num}/{self.max_iters}: {self.last}val loss "
                   + " ".join(f"{k} {v:.4f}" for k, v in losses.items()) + f", {left // 60}m{left % 60:02d}s left")

    def write(self, line: str):
        if self.ranks.master:
            self.bar.write(line)

    def close(self):
        self.bar.close()
