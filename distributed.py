"""
Several processes training one model (DDP), and what happens when one of them fails.

    torchrun --standalone --nproc_per_node=4 train.py config/model_a.py

torchrun starts one process ("rank") per GPU (or per CPU worker, with the gloo backend) and sets
RANK, LOCAL_RANK and WORLD_SIZE; without them train.py runs as a single process and everything
here is a no-op. Each rank draws its own share of every global batch (data.py, mixer.py), DDP
averages the gradients in the last backward pass of each step, and only rank 0 writes files.

A rank that dies or hangs must not leave the others waiting forever or ending in a page of C++
traceback: every wait on the other ranks runs inside `ranks.collective(what)`, which turns a
failed wait into one line naming the rank, what it was doing and the last checkpoint.
"""

import os
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass
class Ranks:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    ddp: bool = False          # launched by torchrun
    device: str = "cpu"        # "cuda:1", "cpu", ...
    checkpoint_path: str = ""  # named in the message when the run ends because another rank failed

    @property
    def master(self) -> bool:
        """Rank 0 logs and writes every file."""
        return self.rank == 0

    @property
    def device_type(self) -> str:
        return "cuda" if self.device.startswith("cuda") else self.device

    def last_checkpoint(self) -> str:
        if self.checkpoint_path and os.path.isfile(self.checkpoint_path):
            return f"the last checkpoint is {self.checkpoint_path}"
        return "no checkpoint was saved"

    @contextmanager
    def collective(self, what: str):
        """Around code that waits for every rank. If another rank died, its socket closes and the
        wait fails at once; if it hangs, the wait fails after ddp_timeout seconds. (Only rank 0
        writes, between steps and atomically, so a checkpoint is whole whatever happens here.)"""
        try:
            yield
        except RuntimeError as e:
            if not (self.ddp and collective_failed(e)):
                raise
            print(file=sys.stderr)  # off rank 0's progress bar line
            raise SystemExit(f"rank {self.rank}: lost contact with the other ranks during {what} ({short_reason(e)}); "
                             f"{self.last_checkpoint()}") from None

    def all_reduce(self, tensor, what: str, op=None):
        """Sum (or op) of tensor over all ranks, in place; nothing without DDP."""
        if self.ddp:
            with self.collective(what):
                dist.all_reduce(tensor, op=op or dist.ReduceOp.SUM)
        return tensor

    def finish(self):
        """The ranks leave together: one that tore its connections down while another was still
        saving a checkpoint aborts in gloo ('terminate called without an active exception')."""
        if self.ddp:
            with self.collective("shutdown"):
                dist.barrier()
            dist.destroy_process_group()


def start(device: str, timeout_s: int) -> Ranks:
    """Join the process group when launched by torchrun. device "auto" is CUDA, then MPS, then the
    CPU; under DDP each rank takes the GPU of its LOCAL_RANK and NCCL, or gloo on CPUs."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"config: device={device!r} but this machine has no CUDA GPU (use device='cpu' or 'auto')")
    if int(os.environ.get("RANK", -1)) == -1:
        return Ranks(device=device)
    ranks = Ranks(rank=int(os.environ["RANK"]), local_rank=int(os.environ["LOCAL_RANK"]),
                  world_size=int(os.environ["WORLD_SIZE"]), ddp=True, device=device)
    if device.startswith("cuda"):
        ranks.device = f"cuda:{ranks.local_rank}"
        torch.cuda.set_device(ranks.device)
    dist.init_process_group(backend="nccl" if ranks.device_type == "cuda" else "gloo",
                            timeout=timedelta(seconds=timeout_s))
    return ranks


def wrap(model, ranks: Ranks):
    """DDP around model; the only buffers are RoPE's cos/sin tables, the same on every rank, so
    they need no broadcast before each forward pass."""
    if not ranks.ddp:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP
    with ranks.collective("startup"):
        return DDP(model, device_ids=[ranks.local_rank] if ranks.device_type == "cuda" else None,
                   forward_sync_buffers=False)


def collective_failed(e) -> bool:
    """Did a collective fail (another rank died, or hung past ddp_timeout) rather than our own code?
    gloo raises a plain RuntimeError that names its source file; NCCL a torch.distributed.DistError."""
    return isinstance(e, dist.DistError) or "gloo" in str(e)


def short_reason(e) -> str:
    """'Read error [127.0.0.1]:37761: Connection reset by peer' out of
    '[.../gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:37761: Connection reset by peer. This is ...'"""
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return re.sub(r"^\[[^\]]*\]\s*", "", first).split(". ")[0][:200]
