"""A run interrupted at random moments and resumed each time ends exactly where an uninterrupted run ends."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from checkpoint import read_info
from conftest import ROOT, checkpoint_weights
from test_train import TINY_MODEL

pytestmark = pytest.mark.slow  # subprocesses that train (minutes on 2 cores): the full suite only

STEPS = 100
COMMON = [*TINY_MODEL, f"--max_iters={STEPS}", "--eval_interval=4", "--log_interval=1", "--lr=3e-3"]


def train_command(data_dir, out_dir, *extra):
    return [sys.executable, os.path.join(ROOT, "train.py"), f"--data_dir={data_dir}", f"--out_dir={out_dir}", *COMMON, *extra]


def iterations_logged(out_dir):
    path = os.path.join(out_dir, "log.jsonl")
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line)["iter"] for line in f if line.strip()]


def test_random_sigkill_sigterm_and_sigint_then_resume_end_bit_identical(tiny_data, tmp_path):
    straight = str(tmp_path / "straight")
    assert subprocess.run(train_command(tiny_data, straight), cwd=ROOT, capture_output=True).returncode == 0

    out = str(tmp_path / "interrupted")
    rng = random.Random(0)
    signals = [signal.SIGKILL, signal.SIGTERM, signal.SIGINT] * 4   # 12 interruptions
    rng.shuffle(signals)
    interrupted = 0
    for signum in signals:
        resume = ["--resume"] if os.path.isfile(os.path.join(out, "ckpt.safetensors")) else []
        proc = subprocess.Popen(train_command(tiny_data, out, *resume), cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        # in a step, an evaluation or a save: the moment is random
        logged, deadline = len(iterations_logged(out)), time.time() + 60
        while proc.poll() is None and len(iterations_logged(out)) == logged and time.time() < deadline:
            time.sleep(0.02)   # the run has started training (so the test always progresses)
        time.sleep(rng.uniform(0.0, 0.05))
        if proc.poll() is None:
            proc.send_signal(signum)
            interrupted += 1
        err = proc.communicate(timeout=120)[1]
        assert "Traceback" not in err, err[-2000:]
        checkpoint = os.path.join(out, "ckpt.safetensors")
        if os.path.isfile(checkpoint) and read_info(checkpoint)["iter_num"] == STEPS:
            break   # the run reached its end before this signal (or got it while the interpreter exited)
        assert proc.returncode in (-signal.SIGKILL, 128 + signal.SIGTERM, 128 + signal.SIGINT), (signum, err[-2000:])
        assert not [n for n in os.listdir(out) if ".tmp" in n] or signum == signal.SIGKILL
    assert interrupted >= 10
    if not read_info(os.path.join(out, "ckpt.safetensors"))["iter_num"] == STEPS:
        res = subprocess.run(train_command(tiny_data, out, "--resume"), cwd=ROOT, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr[-2000:]

    assert not [n for n in os.listdir(out) if ".tmp" in n]
    a, _ = checkpoint_weights(os.path.join(straight, "ckpt.safetensors"))
    b, _ = checkpoint_weights(os.path.join(out, "ckpt.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    iters = iterations_logged(out)
    assert iters == sorted(iters), "the log's iterations went backwards"
    with open(os.path.join(straight, "log.jsonl")) as f, open(os.path.join(out, "log.jsonl")) as g:
        losses = lambda lines: [(r["iter"], r["loss"]) for r in map(json.loads, lines) if r["kind"] == "train"]
        assert losses(f) == losses(g)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_torch_imports_is_one_line_and_128_plus_the_signal(tiny_data, tmp_path, signum):
    """The first seconds of a run are spent importing torch: a Ctrl-C or SIGTERM there is one line, not a
    KeyboardInterrupt traceback or a silent -15, and nothing is written."""
    out = str(tmp_path / "run")
    proc = subprocess.Popen(train_command(tiny_data, out), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)  # python is up (a few ms), torch is importing (a second or more)
    proc.send_signal(signum)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err and err.strip().count("\n") == 0 and "stopped while starting" in err, err
    assert not os.path.exists(out)
