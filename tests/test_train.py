"""train.py as a user meets it (configurator.py: tests/test_configurator.py)."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from conftest import ROOT, checkpoint_weights, write_data_dir, synthetic_text
from dataclasses import asdict
from model import ModelConfig, Transformer
import checkpoint
import data
import load
import train

TINY_MODEL = ["--dim=32", "--n_layers=2", "--n_heads=4", "--hidden_dim=64", "--max_seq_len=32",
              "--block_size=32", "--batch_size=4", "--grad_accum=2", "--eval_windows=4", "--warmup_iters=2",
              "--milestone_unit=none", "--dropout=0.1"]


def run_train(data_dir, out_dir, *extra):
    return train.main([f"--data_dir={data_dir}", f"--out_dir={out_dir}", *TINY_MODEL, *extra])


def read_log(out_dir, kind):
    with open(os.path.join(out_dir, "log.jsonl")) as f:
        return [r for r in map(json.loads, f) if r["kind"] == kind]


# ----------------------------------------------------------------------------- schedule

def test_learning_rate_warmup_then_cosine_to_the_floor():
    lrs = [train.learning_rate(i, lr=1.0, min_lr=0.1, warmup_iters=10, max_iters=110) for i in range(111)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.55)          # half way through the decay: the mean of lr and min_lr
    assert lrs[110] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_wsd_holds_the_peak_then_cools_down_as_one_minus_a_square_root():
    lrs = [train.learning_rate(i, lr=1.0, min_lr=0.1, warmup_iters=10, max_iters=110, decay="wsd", cooldown=0.2)
           for i in range(111)]
    assert lrs[9] == 1.0 and lrs[50] == 1.0 and lrs[88] == 1.0       # warmup, then stable until step 88
    assert lrs[99] == pytest.approx(0.1 + 0.9 * (1 - (11 / 22) ** 0.5))  # half way through the 22 steps of cooldown
    assert lrs[110] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


# ----------------------------------------------------------------------------- training runs

def test_a_short_run_learns_and_logs(tiny_data, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert run_train(tiny_data, out, "--max_iters=30", "--lr=3e-3", "--eval_interval=15", "--log_interval=5") == 0
    # off a terminal the progress bar is silent: each evaluation prints a line instead
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("iter ")]
    assert [line.split(":")[0] for line in printed] == ["iter 15/30", "iter 30/30"]
    assert "train loss" in printed[0] and "tok/s" in printed[0] and "val loss eng" in printed[0] and printed[1].endswith("0m00s left")
    evals = read_log(out, "eval")
    assert [e["iter"] for e in evals] == [0, 15, 30]
    assert set(evals[0]["val_loss"]) == {"eng", "nld"}
    assert evals[-1]["val_loss_mean"] < evals[0]["val_loss_mean"] - 1.0   # from ~ln(300) = 5.7 down
    records = read_log(out, "train")
    assert [r["iter"] for r in records] == [5, 10, 15, 20, 25, 30]
    assert records[-1]["tokens"] == 30 * 4 * 32 * 2
    # tok_per_s leaves out the time spent evaluating and saving; seconds is the wall clock
    assert records[3]["tok_per_s"] > 5 * 4 * 32 * 2 / records[3]["seconds"]
    weights, info = checkpoint_weights(os.path.join(out, "ckpt.safetensors"))
    assert info["iter_num"] == 30 and not any(k.startswith("_orig_mod.") for k in weights)
    assert json.load(open(os.path.join(out, "config.json")))["lr"] == 3e-3


def test_resume_continues_bit_for_bit(tiny_data, tmp_path):
    """A run stopped at step 7 and resumed has the same losses and weights as one that ran straight
    through: the checkpoint carries model, optimizer, LR step, sampler and RNG (dropout) states."""
    common = ["--max_iters=14", "--lr=3e-3", "--eval_interval=5", "--log_interval=1"]
    straight, split = str(tmp_path / "straight"), str(tmp_path / "split")
    assert run_train(tiny_data, straight, *common) == 0
    assert run_train(tiny_data, split, *common, "--stop_iter=7") == 0
    assert checkpoint.read_info(os.path.join(split, "ckpt.safetensors"))["iter_num"] == 7
    assert run_train(tiny_data, split, *common, "--resume") == 0
    a = [r["loss"] for r in read_log(straight, "train")]
    b = [r["loss"] for r in read_log(split, "train")]
    assert len(a) == len(b) == 14 and a == b
    assert [e["val_loss"] for e in read_log(straight, "eval")] == [e["val_loss"] for e in read_log(split, "eval")]
    sa, _ = checkpoint_weights(os.path.join(straight, "ckpt.safetensors"))
    sb, _ = checkpoint_weights(os.path.join(split, "ckpt.safetensors"))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_the_weight_average_is_the_mean_of_the_weights_so_far_then_an_ema():
    model = Transformer(ModelConfig(dim=8, n_layers=1, n_heads=2, hidden_dim=16, vocab_size=10, max_seq_len=8))
    average = train.WeightAverage(model, decay=0.75)
    seen = []
    for step in range(1, 7):
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(step ** 2)  # weights 1, 4, 9, 16, 25, 36
        average.update(model, step)
        seen.append(next(average.model.parameters())[0, 0].item())
    # the plain mean while 1/step > 1 - decay (steps 1-4), then each step moves 1/4 of the way
    assert seen[:4] == pytest.approx([1, 5 / 2, 14 / 3, 30 / 4])
    assert seen[4] == pytest.approx(0.75 * 7.5 + 0.25 * 25)
    assert seen[5] == pytest.approx(0.75 * seen[4] + 0.25 * 36)
    assert next(model.parameters())[0, 0].item() == 36  # the model itself is untouched


def test_a_run_with_ema_decay_saves_its_average_and_resumes_it_bit_for_bit(tiny_data, tmp_path, capsys):
    common = ["--max_iters=14", "--lr=3e-3", "--eval_interval=5", "--log_interval=1", "--ema_decay=0.9"]
    straight, split = str(tmp_path / "straight"), str(tmp_path / "split")
    assert run_train(tiny_data, straight, *common) == 0
    assert run_train(tiny_data, split, *common, "--stop_iter=7") == 0
    assert run_train(tiny_data, split, *common, "--resume") == 0
    ema_a, info = checkpoint_weights(os.path.join(straight, checkpoint.EMA_FILE))
    ema_b, _ = checkpoint_weights(os.path.join(split, checkpoint.EMA_FILE))
    last, _ = checkpoint_weights(os.path.join(straight, "ckpt.safetensors"))
    assert info["iter_num"] == 14 and info["weights"] == "ema" and info["config"]["ema_decay"] == 0.9
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_a)
    assert not torch.equal(ema_a["tok_embeddings.weight"], last["tok_embeddings.weight"])
    evals = read_log(split, "eval")
    assert "val_loss_ema" not in evals[0]  # before the first step the average is the weights: no second pass
    assert evals[-1]["val_loss_ema"] != evals[-1]["val_loss"] and set(evals[-1]["val_loss_ema"]) == {"eng", "nld"}
    # evaluation scores the average like any checkpoint
    model, _ = load.load_model(os.path.join(straight, checkpoint.EMA_FILE))
    assert torch.equal(model.tok_embeddings.weight, ema_a["tok_embeddings.weight"])
    # a run saved without an average cannot grow one on resume: its average would miss the first steps
    plain = str(tmp_path / "plain")
    assert run_train(tiny_data, plain, "--max_iters=14", "--stop_iter=3") == 0
    capsys.readouterr()
    with pytest.raises(SystemExit, match="saved without a weight average"):
        run_train(tiny_data, plain, "--max_iters=14", "--ema_decay=0.9", "--resume")


def test_a_resumed_run_keeps_the_precision_it_started_in(tiny_data, tmp_path, capsys):
    """dtype auto on resume is the run's own precision, not this machine's choice: a run moved to
    another machine (or resumed after the probe decided otherwise) does not change precision half-way."""
    import machine
    auto = machine.choose_dtype("auto", "cpu")[0]
    other = "bfloat16" if auto == "float32" else "float32"
    out = str(tmp_path / "run")
    assert run_train(tiny_data, out, "--max_iters=6", f"--dtype={other}", "--stop_iter=3") == 0
    capsys.readouterr()
    assert run_train(tiny_data, out, "--max_iters=6", "--resume") == 0
    assert f"{other} (auto, resumed: the precision the run started in" in capsys.readouterr().out
    assert json.load(open(os.path.join(out, "config.json")))["dtype_resolved"] == other


def test_an_interrupted_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    import safetensors.torch
    path = str(tmp_path / "ckpt.safetensors")
    model = Transformer(ModelConfig(dim=32, n_layers=1, n_heads=2, hidden_dim=64, vocab_size=50, max_seq_len=16))
    checkpoint.save_checkpoint(path, model, {"model_config": asdict(model.cfg), "iter_num": 1})

    def dies_halfway(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_checkpoint(path, model, {"model_config": asdict(model.cfg), "iter_num": 2})
    monkeypatch.undo()
    assert checkpoint.read_info(path)["iter_num"] == 1
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]   # no temporary file left behind


@pytest.mark.slow
def test_epochs_set_the_number_of_iterations(tiny_data, tmp_path):
    out = str(tmp_path / "run")
    assert run_train(tiny_data, out, "--epochs=2", "--eval_interval=1000") == 0
    meta = data.read_meta(tiny_data)
    n_windows = sum((meta["languages"][l]["train"]["tokens"] - 1) // 32 for l in meta["languages"])
    cfg = json.load(open(os.path.join(out, "config.json")))
    assert cfg["max_iters_resolved"] == -(-2 * n_windows * 32 // (4 * 32 * 2))


@pytest.mark.slow
def test_milestone_checkpoints_follow_the_babylm_schedule(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "MILESTONES", [1000, 2000, 3000, 10**9])  # scaled down: tokens, not millions
    out = str(tmp_path / "run")
    assert run_train(tiny_data, out, "--max_iters=13", "--milestone_unit=tokens") == 0  # 256 tokens per iteration
    names = sorted(os.listdir(os.path.join(out, "checkpoints")))
    # in tokens, named so that no one takes them for BabyLM's words milestones (chck_1M is read as words)
    assert names == ["chck_tok_0.001M.safetensors", "chck_tok_0.002M.safetensors", "chck_tok_0.003M.safetensors"]
    saved = [r["tokens"] for r in read_log(out, "checkpoint") if "chck_" in r["path"]]
    assert saved == [1024, 2048, 3072]            # the first iteration at or past each milestone


# ----------------------------------------------------------------------------- bad input: one clear line

def fails_with(capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        train.main(argv)
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_a_missing_data_folder_is_one_line_naming_it(tmp_path, capsys):
    fails_with(capsys, [f"--data_dir={tmp_path}/nothing", "--max_iters=1"], "no meta.json")


def test_a_vocab_smaller_than_the_token_ids_is_one_line(tiny_data, tmp_path, capsys):
    fails_with(capsys, [f"--data_dir={tiny_data}", f"--out_dir={tmp_path}/o", *TINY_MODEL, "--vocab_size=100", "--max_iters=1"],
               "but the model's vocab_size is 100")


def test_a_dim_that_n_heads_does_not_divide_is_one_line(tiny_data, tmp_path, capsys):
    fails_with(capsys, [f"--data_dir={tiny_data}", *TINY_MODEL, "--n_heads=5", "--max_iters=1"],
               "dim=32 is not divisible by n_heads=5")


def test_resuming_with_another_model_shape_names_the_field_that_differs(tiny_data, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert run_train(tiny_data, out, "--max_iters=2") == 0
    fails_with(capsys, [f"--data_dir={tiny_data}", f"--out_dir={out}", *TINY_MODEL, "--dim=64", "--max_iters=4", "--resume"],
               "checkpoint has another architecture than the config (dim: config 64, checkpoint 32)")


def test_init_from_loads_the_checkpoints_weights_whatever_init_and_dropout_are_set(tiny_data, tmp_path):
    """scaled_residual_init only decides how fresh weights are drawn and dropout only how they are
    trained: loading a checkpoint under other values is not a change of architecture, and the loaded
    weights are the checkpoint's."""
    out = str(tmp_path / "run")
    assert run_train(tiny_data, out, "--max_iters=2") == 0
    assert run_train(tiny_data, str(tmp_path / "b"), "--max_iters=2", "--scaled_residual_init=False", "--dropout=0.1",
                     f"--init_from={out}/ckpt.safetensors", "--lr=1e-12", "--min_lr=0") == 0
    a, _ = checkpoint.load_checkpoint(f"{out}/ckpt.safetensors")
    b, _ = checkpoint.load_checkpoint(f"{tmp_path}/b/ckpt.safetensors")
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-9, msg=name)  # lr 1e-12: two steps move nothing


def test_an_empty_token_file_is_one_line(tiny_data, tmp_path, capsys):
    open(os.path.join(tiny_data, "eng", "train.bin"), "wb").close()
    fails_with(capsys, [f"--data_dir={tiny_data}", *TINY_MODEL, "--max_iters=1"], "missing or empty token file")


@pytest.mark.parametrize("flag, message", [
    ("--batch_size=0", "batch_size=0: must be at least 1"),
    ("--log_interval=-1", "log_interval=-1: must be at least 1"),
    ("--eval_interval=0", "eval_interval=0: must be at least 1"),
    ("--eval_windows=0", "eval_windows=0: must be at least 1"),
    ("--grad_accum=0", "grad_accum=0: must be at least 1"),
    ("--max_iters=0", "max_iters=0: must be positive"),
    ("--decay=cosin", "decay='cosin': expected one of cosine, linear, constant"),
    ("--milestone_unit=sentences", "milestone_unit='sentences': expected 'words', 'tokens' or 'none'"),
    ("--dtype=float64", "dtype='float64': expected auto or one of float32, bfloat16, float16"),
    ("--device=tpu", "device='tpu': expected auto, cpu, cuda, cuda:N or mps"),
    ("--lr=-1", "need 0 <= min_lr <= lr, lr > 0"),
    ("--beta2=1.5", "each must be in [0, 1)"),
    ("--dim=-4", "model: dim=-4 must be between 1 and 16,384"),
    ("--n_layers=0", "model: n_layers=0 must be between 1 and 256"),
    ("--n_layers=1000000", "model: n_layers=1000000 must be between 1 and 256"),
    ("--vocab_size=1000000000000", "model: vocab_size=1000000000000 must be between 1 and 4,194,304"),
    ("--max_seq_len=1000000000", "model: max_seq_len=1000000000 must be between 1 and 131,072"),
    ("--batch_size=1000000", "batch_size=1000000 x block_size=32: over 1,048,576 tokens a micro-batch"),
    ("--eta=0.5", "eta set without a mixer"),
    ("--languages=eng,xxx", "languages set without a mixer"),
    ("--dropout=1.0", "0 <= dropout < 1"),
])
def test_an_invalid_config_value_stops_before_any_file_is_written(tiny_data, tmp_path, capsys, flag, message):
    fails_with(capsys, [f"--data_dir={tiny_data}", f"--out_dir={tmp_path}/run", *TINY_MODEL, "--max_iters=2", flag], message)
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_asked_for_on_a_machine_without_it_is_one_line_and_writes_nothing(tiny_data, tmp_path, capsys):
    fails_with(capsys, [f"--data_dir={tiny_data}", f"--out_dir={tmp_path}/run", *TINY_MODEL, "--max_iters=2",
                        "--device=cuda"], "device='cuda' but this machine has no CUDA GPU")
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_data, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert run_train(tiny_data, out, "--max_iters=4", "--eval_interval=2", "--log_interval=1") == 0
    good, good_info = checkpoint_weights(os.path.join(out, "ckpt.safetensors"))
    # resume with an absurd learning rate: the loss overflows to inf/nan within a few steps
    code = run_train(tiny_data, out, "--max_iters=40", "--eval_interval=1000", "--log_interval=1", "--lr=1e30",
                     "--warmup_iters=0", "--grad_clip=0", "--resume")
    assert code == 1
    assert "; stopping without saving (the last checkpoint is" in capsys.readouterr().err
    kept, kept_info = checkpoint_weights(os.path.join(out, "ckpt.safetensors"))
    assert kept_info["iter_num"] == good_info["iter_num"] and all(torch.equal(kept[k], good[k]) for k in good)


@pytest.mark.slow
def test_sample_py_generates_from_a_checkpoint(tiny_data, tmp_path):
    out = str(tmp_path / "run")
    assert run_train(tiny_data, out, "--max_iters=2") == 0
    res = subprocess.run([sys.executable, os.path.join(ROOT, "sample.py"), os.path.join(out, "ckpt.safetensors"),
                          "--prompt", "the cat", "--max_new_tokens=5", "--temperature=0"],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("the cat")


# ----------------------------------------------------------------------------- what survives what

@pytest.mark.slow
def test_a_loss_gone_to_nan_between_logs_never_reaches_a_checkpoint(tiny_data, tmp_path, capsys):
    """log_interval=7 does not divide eval_interval=2: the checkpoint at an evaluation is refused
    when the loss since the last log (or the held-out loss) is not finite."""
    out = str(tmp_path / "run")
    assert run_train(tiny_data, out, "--max_iters=4", "--eval_interval=2", "--log_interval=1") == 0
    good, _ = checkpoint_weights(os.path.join(out, "ckpt.safetensors"))
    code = run_train(tiny_data, out, "--max_iters=40", "--eval_interval=2", "--log_interval=7", "--lr=1e30",
                     "--warmup_iters=0", "--grad_clip=0", "--resume")
    assert code == 1 and "the last checkpoint is" in capsys.readouterr().err
    kept, info = checkpoint_weights(os.path.join(out, "ckpt.safetensors"))
    assert info["iter_num"] == 4 and all(torch.equal(kept[k], good[k]) for k in good)
    evals = read_log(out, "eval")
    assert all(np.isfinite(list(e["val_loss"].values())).all() for e in evals)   # no NaN logged as a result


def test_a_loss_gone_to_nan_before_any_save_says_no_checkpoint_was_saved(tiny_data, tmp_path, capsys):
    out = str(tmp_path / "run")
    code = run_train(tiny_data, out, "--max_iters=40", "--eval_interval=1000", "--log_interval=1", "--lr=1e30",
                     "--warmup_iters=0", "--grad_clip=0")
    assert code == 1 and "no checkpoint was saved" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(out, "ckpt.safetensors"))


@pytest.mark.slow
def test_resuming_at_or_past_stop_iter_trains_nothing(tiny_data, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert run_train(tiny_data, out, "--max_iters=10", "--stop_iter=4", "--log_interval=1") == 0
    before = open(os.path.join(out, "ckpt.safetensors"), "rb").read()
    for stop in (4, 3):
        assert run_train(tiny_data, out, "--max_iters=10", f"--stop_iter={stop}", "--resume") == 0
        assert "already at iteration 4" in capsys.readouterr().out
    assert open(os.path.join(out, "ckpt.safetensors"), "rb").read() == before
    assert max(r["iter"] for r in read_log(out, "train")) == 4


@pytest.mark.slow
def test_a_resumed_run_drops_the_log_records_it_redoes_and_stale_temporaries(tiny_data, tmp_path):
    """After a crash at step 7 (checkpoint at 5), the log holds records of steps 6 and 7 and a
    half-written temporary file may be left: resuming removes both, so iterations never go back."""
    out = str(tmp_path / "run")
    common = ["--max_iters=10", "--eval_interval=5", "--log_interval=1"]
    assert run_train(tiny_data, out, *common, "--stop_iter=5") == 0
    with open(os.path.join(out, "log.jsonl"), "a") as f:
        f.write(json.dumps({"kind": "train", "iter": 6, "loss": 1.0}) + "\n" + json.dumps({"kind": "train", "iter": 7}) + "\n")
    open(os.path.join(out, ".ckpt.safetensors.tmp99999"), "wb").write(b"half a checkpoint")
    assert run_train(tiny_data, out, *common, "--resume") == 0
    iters = [r["iter"] for r in read_log(out, "train")]
    assert iters == list(range(1, 11))
    assert not [n for n in os.listdir(out) if ".tmp" in n]


def test_a_new_run_in_a_folder_holding_a_run_is_refused_and_force_starts_over(tiny_data, tmp_path):
    out = str(tmp_path / "run")
    assert run_train(tiny_data, out, "--max_iters=3", "--log_interval=1") == 0
    log_before = open(os.path.join(out, "log.jsonl")).read()
    ckpt_before = open(os.path.join(out, "ckpt.safetensors"), "rb").read()
    open(os.path.join(out, "checkpoints", "chck_1M.safetensors"), "wb").write(ckpt_before)  # as if a milestone
    with pytest.raises(SystemExit, match="holds a run at iteration 3: add --resume to continue it, or --force"):
        run_train(tiny_data, out, "--max_iters=2", "--log_interval=1")
    assert open(os.path.join(out, "log.jsonl")).read() == log_before  # nothing of the old run lost
    assert open(os.path.join(out, "ckpt.safetensors"), "rb").read() == ckpt_before
    assert run_train(tiny_data, out, "--max_iters=2", "--log_interval=1", "--force") == 0
    assert [r["iter"] for r in read_log(out, "train")] == [1, 2]
    assert os.listdir(os.path.join(out, "checkpoints")) == []  # the old run's milestones went with it


def test_a_second_run_on_one_folder_stops_with_one_line_naming_the_first(tiny_data, tmp_path):
    """Two real train.py processes on one out_dir: the first holds out_dir/.lock for its life; the
    second stops with one line naming the first's PID and writes nothing; the first runs on."""
    out = str(tmp_path / "run")
    first = subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), f"--data_dir={tiny_data}",
                              f"--out_dir={out}", *TINY_MODEL, "--max_iters=100000", "--eval_interval=100000"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        log = os.path.join(out, "log.jsonl")
        deadline = time.time() + 120
        while not (os.path.exists(log) and os.path.getsize(log)) and first.poll() is None and time.time() < deadline:
            time.sleep(0.2)  # the first run is training once its first record is logged
        assert first.poll() is None, first.stderr.read()
        log_before = open(log).read()
        second = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), f"--data_dir={tiny_data}",
                                 f"--out_dir={out}", *TINY_MODEL, "--max_iters=2"],
                                capture_output=True, text=True, cwd=ROOT)
        assert second.returncode == 1 and second.stderr.count("\n") == 1, second.stderr
        assert f"in use by another process (PID {first.pid})" in second.stderr
        assert open(log).read().startswith(log_before) and first.poll() is None  # the first run is untouched
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=120)
    assert first.returncode == 128 + signal.SIGTERM  # it finished its step and saved, as ever


def test_an_out_dir_through_a_file_is_one_line(tiny_data, tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    fails_with(capsys, [f"--data_dir={tiny_data}", f"--out_dir={tmp_path}/file/run", *TINY_MODEL, "--max_iters=2"],
               "cannot write the run folder")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_finish_the_step_save_and_exit_with_128_plus_the_signal(tiny_data, tmp_path, signum):
    out = str(tmp_path / "run")
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), f"--data_dir={tiny_data}",
                             f"--out_dir={out}", *TINY_MODEL, "--max_iters=100000", "--eval_interval=100000",
                             "--log_interval=1"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = os.path.join(out, "log.jsonl")
    deadline = time.time() + 60
    while time.time() < deadline and not (os.path.isfile(log) and len(read_log(out, "train")) >= 3):
        time.sleep(0.1)
    proc.send_signal(signum)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 128 + signum, err[-2000:]
    assert "Traceback" not in err
    last = read_log(out, "train")[-1]["iter"]
    assert checkpoint.read_info(os.path.join(out, "ckpt.safetensors"))["iter_num"] == last


def test_a_mixer_runs_checkpoint_carries_what_the_model_card_reports(tiny_data, tmp_path):
    out = str(tmp_path / "run")
    assert run_train(tiny_data, out, "--max_iters=4", "--eval_interval=2", "--mixer=taam", "--budget=1e9") == 0
    info = checkpoint.read_info(os.path.join(out, "ckpt.safetensors"))
    mixing = info["mixer"]
    assert mixing["mixer"] == "taam" and set(mixing["pi"]) == {"eng", "nld"}
    assert abs(sum(mixing["pi"].values()) - 1) < 1e-9
    assert sum(mixing["exposures"].values()) == info["tokens_seen"] == 4 * 4 * 32 * 2
    plain = str(tmp_path / "plain")
    assert run_train(tiny_data, plain, "--max_iters=2") == 0
    assert checkpoint.read_info(os.path.join(plain, "ckpt.safetensors"))["mixer"] is None


# ----------------------------------------------------------------------------- line samples (the card's way)

def test_a_line_samples_run_learns_resumes_bit_for_bit_and_counts_real_tokens(tiny_data, tmp_path):
    common = ["--samples=lines", "--block_size=16", "--max_iters=8", "--lr=3e-3", "--eval_interval=4", "--log_interval=1"]
    straight, split = str(tmp_path / "straight"), str(tmp_path / "split")
    assert run_train(tiny_data, straight, *common) == 0
    assert run_train(tiny_data, split, *common, "--stop_iter=3") == 0
    assert run_train(tiny_data, split, *common, "--resume") == 0
    a, b = read_log(straight, "train"), read_log(split, "train")
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    evals = read_log(straight, "eval")
    assert evals[-1]["val_loss_mean"] < evals[0]["val_loss_mean"]
    wa, _ = checkpoint_weights(os.path.join(straight, "ckpt.safetensors"))
    wb, _ = checkpoint_weights(os.path.join(split, "ckpt.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    meta = data.read_meta(tiny_data)
    source = data.LineSamples(tiny_data, meta, data.Shard(batch_size=4, block_size=16, grad_accum=2, seed=1337))
    epochs = str(tmp_path / "epochs")
    assert run_train(tiny_data, epochs, "--samples=lines", "--block_size=16", "--epochs=2", "--stop_iter=1") == 0
    assert json.load(open(os.path.join(epochs, "config.json")))["max_iters_resolved"] == -(-2 * source.n_pieces // 8)
    real = sum(int(source.length[p]) - 1 for s in range(8) for m in range(2) for p in source.pieces_of(s, m, 0))
    assert a[-1]["tokens"] == real < 8 * 4 * 2 * 15                             # not the padded positions


# ----------------------------------------------------------------------------- the core a student reads

@pytest.mark.parametrize("entry", ["main", "run"])
def test_a_run_in_this_process_gives_back_the_callers_signal_handlers(tiny_data, tmp_path, entry):
    def mine(signum, frame):
        pass
    before = signal.signal(signal.SIGINT, mine), signal.getsignal(signal.SIGTERM)
    try:
        argv = [f"--data_dir={tiny_data}", f"--out_dir={tmp_path}/run", *TINY_MODEL, "--max_iters=2"]
        assert getattr(train, entry)(argv) == 0
        assert signal.getsignal(signal.SIGINT) is mine
        assert signal.getsignal(signal.SIGTERM) is before[1]
    finally:
        signal.signal(signal.SIGINT, before[0])


def test_train_main_stays_short_enough_to_read_in_one_sitting():
    import inspect
    lines, _ = inspect.getsourcelines(train.main)
    assert len(lines) <= 120, f"train.main has {len(lines)} lines; move a part of it into a function below it"


# ----------------------------------------------------------------------------- the BabyLM path (babylm.py)

def write_pairs(path, n=6):
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"sentence_good": "the cat sat on a mat.", "sentence_bad": "cat the mat a on sat.",
                                "UID": f"order_{i % 2}"}) + "\n")
    return str(path)


def test_a_run_scores_its_suites_at_the_end_and_at_milestones_then_exports(tiny_data, tmp_path, capsys, monkeypatch):
    import babylm
    monkeypatch.setattr(checkpoint, "MILESTONES", [300, 10**9])  # scaled down: 300 words, reached in 8 steps
    out, export = str(tmp_path / "run"), str(tmp_path / "export")
    pairs = write_pairs(tmp_path / "pairs.jsonl")
    assert run_train(tiny_data, out, "--max_iters=8", "--milestone_unit=words", f"--eval_suites={pairs}",
                     "--eval_milestones", f"--export_to={export}") == 0
    records = read_log(out, "blimp")
    assert [r["at"] for r in records] == ["chck_0.0003M", "end"] and records[-1]["iter"] == 8
    assert set(records[-1]["suites"]) == {"pairs"} and 0 <= records[-1]["suites"]["pairs"] <= 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"done: {out}/ckpt.safetensors at iteration 8; pairs ") and last.endswith(f"exported to {export}")
    assert json.load(open(os.path.join(out, "blimp.json")))["suites"]["pairs"]["total"]["n"] == 6
    assert os.path.isfile(os.path.join(export, "model.safetensors")) and os.path.isfile(os.path.join(export, "config.json"))
    assert babylm.milestone_name(10**6, "words") == "chck_1M" and babylm.milestone_name(10**6, "tokens") == "chck_tok_1M"


def test_the_suites_and_the_export_folder_are_checked_before_training(tiny_data, tmp_path, capsys):
    fails_with(capsys, [f"--data_dir={tiny_data}", f"--out_dir={tmp_path}/a", "--max_iters=1", "--eval_suites=blimpp"],
               "eval_suites: 'blimpp' is neither a suite")
    fails_with(capsys, [f"--data_dir={tiny_data}", f"--out_dir={tmp_path}/b", "--max_iters=1", "--eval_fast"],
               "set eval_suites too")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    fails_with(capsys, [f"--data_dir={tiny_data}", f"--out_dir={tmp_path}/c", "--max_iters=1", f"--export_to={tmp_path}/full"],
               "exists and is not empty")
    assert not os.path.exists(tmp_path / "c")   # nothing trained, nothing written


def test_a_track_checks_the_data_budget_the_epochs_and_the_milestone_unit(tiny_data, tmp_path, capsys, monkeypatch):
    import babylm
    argv = [f"--data_dir={tiny_data}", f"--out_dir={tmp_path}/run", *TINY_MODEL[:-2], "--dropout=0.1"]
    fails_with(capsys, argv + ["--epochs=11", "--track=strict-small"], "the strict-small track allows 10")
    fails_with(capsys, argv + ["--max_iters=1", "--track=strict", "--milestone_unit=tokens"],
               "a track's checkpoints are named by words seen")
    fails_with(capsys, argv + ["--max_iters=1", "--track=sloppy"], "track='sloppy': expected one of strict-small")
    words = sum(info["train"]["words"] for info in data.read_meta(tiny_data)["languages"].values())
    monkeypatch.setitem(babylm.TRACKS, "strict-small", (words - 1, "words"))
    fails_with(capsys, argv + ["--max_iters=1", "--track=strict-small"], f"{words:,} training words, over the strict-small")
    monkeypatch.undo()
    # within the rules a track's run trains; a plain run past 10 epochs is told, once, and trains
    assert train.main(argv + ["--epochs=10", "--track=strict-small", "--stop_iter=1"]) == 0
    assert "notice" not in capsys.readouterr().out
    assert train.main(argv + ["--epochs=11", "--stop_iter=1", "--force"]) == 0
    notices = [line for line in capsys.readouterr().out.splitlines() if line.startswith("notice:")]
    assert len(notices) == 1 and "BabyLM's tracks allow 10" in notices[0]


def test_make_data_builds_a_missing_data_folder_printing_the_command(tmp_path, capsys):
    corpus = tmp_path / "corpus" / "en"
    corpus.mkdir(parents=True)
    (corpus / "a.txt").write_text("\n".join(synthetic_text(400, seed=3)) + "\n")
    data_dir, out = str(tmp_path / "data"), str(tmp_path / "run")
    argv = [f"--data_dir={data_dir}", f"--out_dir={out}", *TINY_MODEL, "--max_iters=2",
            f"--make_data=--corpus {tmp_path / 'corpus'} --vocab-size 300"]
    assert train.main(argv) == 0
    printed = capsys.readouterr().out
    assert f"no data yet; making them: python tokenize_data.py --corpus {tmp_path / 'corpus'} --vocab-size 300 --out {data_dir}" in printed
    assert data.read_meta(data_dir)["vocab_size"] == 300
    fails_with(capsys, argv[:-1] + ["--make_data=--corpus x --out y"], "make_data: leave --out out")
