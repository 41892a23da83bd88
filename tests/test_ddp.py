"""torchrun DDP on CPU (gloo) gives the same training as one process."""

import json
import os
import subprocess
import sys

import torch

from conftest import ROOT
from test_train import TINY_MODEL, read_log

# dropout off: one process and two ranks cannot draw the same dropout masks
COMMON = [*[a for a in TINY_MODEL if not a.startswith("--dropout")], "--lr=3e-3", "--eval_interval=3",
          "--log_interval=1", "--max_iters=6", "--batch_size=4"]


def launch(nproc, data_dir, out_dir, *extra):
    if nproc == 1:
        cmd = [sys.executable, "train.py"]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "train.py"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd + [f"--data_dir={data_dir}", f"--out_dir={out_dir}", *COMMON, *extra],
                         cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def weights(out_dir):
    return torch.load(os.path.join(out_dir, "ckpt.pt"), weights_only=False)["model"]


def test_two_ranks_equal_one_process_with_accumulation_and_resume_across_world_sizes(tiny_data, tmp_path):
    """Two ranks without accumulation see the same global batches as one process with grad_accum=2,
    so after the same optimizer steps the weights agree to float rounding; a run started on two ranks
    and resumed on one process continues the same training."""
    one, two, mixed = (str(tmp_path / n) for n in ("one", "two", "mixed"))
    launch(1, tiny_data, one, "--grad_accum=2")
    launch(2, tiny_data, two, "--grad_accum=1")
    launch(2, tiny_data, mixed, "--grad_accum=1", "--stop_iter=3")
    launch(1, tiny_data, mixed, "--grad_accum=2", "--resume")

    a, b, c = weights(one), weights(two), weights(mixed)
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-5)
        torch.testing.assert_close(c[k], a[k], rtol=0, atol=1e-5)
    # held-out losses are sharded over ranks and all-reduced: the same numbers as one process
    for ea, eb in zip(read_log(one, "eval"), read_log(two, "eval")):
        for lang in ea["val_loss"]:
            assert abs(ea["val_loss"][lang] - eb["val_loss"][lang]) < 1e-5
    assert json.load(open(os.path.join(two, "config.json")))["world_size"] == 2


def test_keep_global_batch_divides_accumulation_by_world_size(tiny_data, tmp_path):
    out = str(tmp_path / "run")
    launch(2, tiny_data, out, "--grad_accum=2", "--keep_global_batch", "--max_iters=2")
    assert read_log(out, "train")[-1]["tokens"] == 2 * 4 * 32 * 2   # 2 steps x (4 x 32 tokens x 1 micro-step x 2 ranks)
