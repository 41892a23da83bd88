"""torchrun DDP on CPU (gloo) gives the same training as one process."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from checkpoint import read_info
from conftest import ROOT, checkpoint_weights
from test_train import TINY_MODEL, read_log

pytestmark = pytest.mark.slow  # subprocesses that train (minutes on 2 cores): the full suite only

# dropout off: one process and two ranks cannot draw the same dropout masks
COMMON = [*[a for a in TINY_MODEL if not a.startswith("--dropout")], "--lr=3e-3", "--eval_interval=3",
          "--log_interval=1", "--max_iters=6", "--batch_size=4"]


def command(nproc, data_dir, out_dir, *extra):
    if nproc == 1:
        cmd = [sys.executable, "train.py"]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "train.py"]
    return cmd + [f"--data_dir={data_dir}", f"--out_dir={out_dir}", *COMMON, *extra]


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def launch(nproc, data_dir, out_dir, *extra):
    res = subprocess.run(command(nproc, data_dir, out_dir, *extra), cwd=ROOT, capture_output=True, text=True,
                         env=ENV, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def weights(out_dir):
    return checkpoint_weights(os.path.join(out_dir, "ckpt.safetensors"))[0]


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
    # so is the logged training loss (the mean over the global batch, not rank 0's share)
    ta, tb = read_log(one, "train"), read_log(two, "train")
    assert len(ta) == len(tb) == 6 and all(abs(ra["loss"] - rb["loss"]) < 1e-5 for ra, rb in zip(ta, tb))
    assert json.load(open(os.path.join(two, "config.json")))["world_size"] == 2


def test_line_samples_on_two_ranks_equal_one_process_with_accumulation(tiny_data, tmp_path):
    """Each rank packs its own pieces and weighs its loss by its share of the step's target tokens:
    the sum over ranks is the step's mean over all targets, as in one process."""
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    lines = ["--samples=lines", "--block_size=16"]
    launch(1, tiny_data, one, "--grad_accum=2", *lines)
    launch(2, tiny_data, two, "--grad_accum=1", *lines)
    a, b = weights(one), weights(two)
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-5)
    ta, tb = read_log(one, "train"), read_log(two, "train")
    assert all(abs(ra["loss"] - rb["loss"]) < 1e-5 and ra["tokens"] == rb["tokens"] for ra, rb in zip(ta, tb))


def test_keep_global_batch_divides_accumulation_by_world_size(tiny_data, tmp_path):
    out = str(tmp_path / "run")
    launch(2, tiny_data, out, "--grad_accum=2", "--keep_global_batch", "--max_iters=2")
    assert read_log(out, "train")[-1]["tokens"] == 2 * 4 * 32 * 2   # 2 steps x (4 x 32 tokens x 1 micro-step x 2 ranks)


def test_two_ranks_stopped_and_resumed_on_two_ranks_continue_the_same_training(tiny_data, tmp_path):
    """A two-rank run stopped at step 4 and resumed on two ranks ends with the weights of a two-rank run
    that went straight through, and logs the same training loss at every step, each step once: every
    rank draws its batches from (seed, step, rank), the checkpoint carries the optimizer and LR step,
    and only rank 0 writes the log and the checkpoint."""
    straight, split = str(tmp_path / "straight"), str(tmp_path / "split")
    launch(2, tiny_data, straight, "--grad_accum=2")
    launch(2, tiny_data, split, "--grad_accum=2", "--stop_iter=4")
    assert read_info(os.path.join(split, "ckpt.safetensors"))["iter_num"] == 4
    launch(2, tiny_data, split, "--grad_accum=2", "--resume")

    a, b = weights(straight), weights(split)
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-5)
    la, lb = read_log(straight, "train"), read_log(split, "train")
    assert [r["iter"] for r in la] == [r["iter"] for r in lb] == [1, 2, 3, 4, 5, 6]
    assert [r["loss"] for r in lb] == pytest.approx([r["loss"] for r in la], abs=1e-6)
    assert sorted(os.listdir(split)) == [".lock", "checkpoints", "ckpt.safetensors", "config.json", "log.jsonl"]


# ----------------------------------------------------------------------------- a rank that dies or hangs

def workers(launcher):
    """{rank: pid} of the processes torchrun started (read from /proc)."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid == launcher.pid:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    env = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v)
                found[int(env[b"RANK"])] = int(pid)
        except (OSError, KeyError, ValueError):
            pass  # gone already, or not a worker
    return found


def running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except OSError:
        return False


def start_long_run(data_dir, out_dir, *extra):
    """A two-rank run far longer than the test, its workers' pids once it has saved a checkpoint."""
    log = open(os.path.join(os.path.dirname(out_dir), "stderr.txt"), "w+")
    proc = subprocess.Popen(command(2, data_dir, out_dir, "--max_iters=100000", *extra), cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=log, text=True, start_new_session=True)
    deadline = time.time() + 120
    while not os.path.exists(os.path.join(out_dir, "ckpt.safetensors")):
        assert proc.poll() is None and time.time() < deadline, "the run did not start"
        time.sleep(0.1)
    pids = workers(proc)
    assert sorted(pids) == [0, 1]
    return proc, pids, log


def stderr_of(proc, log):
    proc.wait(timeout=120)
    log.seek(0)
    return log.read()


def stop(proc, log, pids):
    if proc.poll() is None:  # the test failed half way: leave no workers behind
        for pid in pids.values():  # torchrun's workers need not be in its process group
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()


def assert_checkpoint_whole(out_dir):
    assert not [n for n in os.listdir(out_dir) if ".tmp" in n]
    assert read_info(os.path.join(out_dir, "ckpt.safetensors"))["iter_num"] >= 3


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds torchrun's workers in /proc")
def test_a_killed_rank_ends_the_other_at_once_with_one_line(tiny_data, tmp_path):
    """kill -9 of rank 1: rank 0 ends with one line that names what it was doing and the last
    checkpoint, instead of a traceback (or, if torchrun's SIGTERM reaches it first, one line saying so);
    ckpt.safetensors is whole and no temporary file is left, though rank 0 saves one every 3 steps."""
    out = str(tmp_path / "run")
    proc, pids, log = start_long_run(tiny_data, out)
    try:
        os.kill(pids[1], signal.SIGKILL)
        err = stderr_of(proc, log)
    finally:
        stop(proc, log, pids)
    assert proc.returncode != 0
    assert re.search(r"^rank 0: (lost contact with the other ranks during (training step|evaluation at iteration) \d+ "
                     r"\(.+\)|stopped by SIGTERM); the last checkpoint is \S+ckpt\.safetensors$", err, re.M), err[-3000:]
    assert "[rank0]:" not in err   # torch's prefix on a rank's traceback
    assert_checkpoint_whole(out)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds torchrun's workers in /proc")
def test_a_hung_rank_ends_the_other_after_ddp_timeout_with_one_line(tiny_data, tmp_path):
    """Rank 1 stopped (SIGSTOP) is alive but silent: rank 0 waits ddp_timeout seconds in its next
    collective, then ends with one line."""
    out = str(tmp_path / "run")
    proc, pids, log = start_long_run(tiny_data, out, "--ddp_timeout=3")
    try:
        os.kill(pids[1], signal.SIGSTOP)
        t0 = time.time()
        while running(pids[0]) and time.time() < t0 + 60:
            time.sleep(0.05)
        waited = time.time() - t0
        os.kill(pids[1], signal.SIGCONT)  # lets it take torchrun's SIGTERM now, not 30 s later
        err = stderr_of(proc, log)
    finally:
        stop(proc, log, pids)
    assert 3 <= waited < 30, waited
    assert re.search(r"^rank 0: lost contact with the other ranks during (training step|evaluation at iteration) "
                     r"\d+ \(.+\); the last checkpoint is \S+ckpt\.safetensors$", err, re.M), err[-3000:]
    assert "[rank0]:" not in err
    assert_checkpoint_whole(out)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds torchrun's workers in /proc")
def test_ctrl_c_on_one_rank_stops_every_rank_at_the_same_step_and_saves(tiny_data, tmp_path):
    """SIGINT reaching rank 1 alone (a Ctrl-C arrives at the ranks at slightly different moments):
    the ranks agree at the end of the step, both stop there, rank 0 saves, and both exit with 130 (interrupted)
    instead of one rank waiting for the other until ddp_timeout."""
    out = str(tmp_path / "run")
    proc, pids, log = start_long_run(tiny_data, out)
    try:
        os.kill(pids[1], signal.SIGINT)
        err = stderr_of(proc, log)
    finally:
        stop(proc, log, pids)
    assert proc.returncode != 0 and "exitcode: 130" in err, err[-3000:]   # an interrupted run is not a finished one
    assert_checkpoint_whole(out)
    last_step = read_log(out, "train")[-1]["iter"]   # a record every step (--log_interval=1)
    assert read_info(os.path.join(out, "ckpt.safetensors"))["iter_num"] == last_step
