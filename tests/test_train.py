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
    cfg = train.TrainConfig(lr=1.0, min_lr=0.1, warmup_iters=10)
    lrs = [train.learning_rate(i, cfg, 110) for i in range(111)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.55)          # half way through the decay: the mean of lr and min_lr
    assert lrs[110] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


# ----------------------------------------------------------------------------- the plain batch source

def test_token_windows_visit_every_window_once_per_epoch(tiny_data):
    meta = data.read_meta(tiny_data)
    src = data.TokenWindows(tiny_data, meta, batch_size=2, block_size=8, grad_accum=1, seed=0)
    n = src.n_windows
    seen = [src.position(i) for i in range(n)]
    assert len(set(seen)) == n                       # n distinct windows within an epoch
    assert all(off % 8 == 0 for _, off in seen)      # non-overlapping: at multiples of block_size
    second = [src.position(n + i) for i in range(n)]
    assert sorted(second) == sorted(seen) and second != seen  # the next epoch: same windows, new order


def test_aligned_windows_start_at_the_first_bos_of_their_stretch(tmp_path):
    # documents (BOS = 0) at 0, 10, 13 and 33 of 42 tokens: five windows of 8 (+1) tokens
    tokens = np.full(42, 5, dtype=np.uint16)
    tokens[[0, 10, 13, 33]] = 0
    os.makedirs(tmp_path / "eng")
    tokens.tofile(tmp_path / "eng" / "train.bin")
    meta = {"dtype": "uint16", "bos_id": 0, "vocab_size": 6, "languages": {"eng": {}}}
    plain = data.TokenWindows(str(tmp_path), meta, batch_size=1, block_size=8, grad_accum=1, seed=0)
    aligned = data.TokenWindows(str(tmp_path), meta, batch_size=1, block_size=8, grad_accum=1, seed=0,
                                 align_windows=True)
    assert plain.offsets[0].tolist() == [0, 8, 16, 24, 32]
    # stretches [0, 8) and [8, 16) hold a BOS (0, 10); [16, 24) and [24, 32) none; [32, 40) the one at 33
    assert aligned.offsets[0].tolist() == [0, 10, 16, 24, 33]
    windows = [aligned.window(i)[1] for i in range(aligned.n_windows)]
    assert all(len(w) == 9 for w in windows)                     # the last one still fits
    assert sorted(w[0] for w in windows) == [0, 0, 0, 5, 5]


def test_ddp_ranks_draw_disjoint_parts_of_the_same_global_batch(tiny_data):
    meta = data.read_meta(tiny_data)
    one = data.TokenWindows(tiny_data, meta, batch_size=2, block_size=8, grad_accum=2, seed=0)
    ranks = [data.TokenWindows(tiny_data, meta, batch_size=2, block_size=8, grad_accum=1, seed=0, rank=r, world_size=2)
             for r in range(2)]
    # step s of one process with accumulation 2 sees what step s of 2 ranks without accumulation see
    for step in range(3):
        single = torch.cat([one.get_batch(step, m)[0] for m in range(2)])
        both = torch.cat([ranks[r].get_batch(step, 0)[0] for r in range(2)])
        assert torch.equal(single, both)


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
    monkeypatch.setattr(train, "MILESTONES", [1000, 2000, 3000, 10**9])  # scaled down: tokens, not millions
    out = str(tmp_path / "run")
    assert run_train(tiny_data, out, "--max_iters=13", "--milestone_unit=tokens") == 0  # 256 tokens per iteration
    names = sorted(os.listdir(os.path.join(out, "checkpoints")))
    assert names == ["chck_0.001M.safetensors", "chck_0.002M.safetensors", "chck_0.003M.safetensors"]
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
    ("--dim=-4", "model: dim=-4 must be at least 1"),
    ("--n_layers=0", "model: n_layers=0 must be at least 1"),
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


def test_a_new_run_in_an_old_folder_starts_a_new_log(tiny_data, tmp_path):
    out = str(tmp_path / "run")
    assert run_train(tiny_data, out, "--max_iters=3", "--log_interval=1") == 0
    assert run_train(tiny_data, out, "--max_iters=2", "--log_interval=1") == 0
    assert [r["iter"] for r in read_log(out, "train")] == [1, 2]


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

def test_documents_are_cut_into_pieces_of_at_most_block_size_and_one_token_pieces_dropped():
    # BOS = 0; documents of 5, 1, 9 and 2 tokens after their BOS
    tokens = np.array([0, 1, 2, 3, 4, 5, 0, 6, 0, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 16, 17], np.uint16)
    starts, lengths = data.document_pieces(tokens, 0, block_size=4, bos_input=False)
    pieces = [tokens[s:s + n].tolist() for s, n in zip(starts, lengths)]
    assert pieces == [[1, 2, 3, 4], [7, 8, 9, 10], [11, 12, 13, 14], [16, 17]]   # [5], [6], [15] predict nothing
    starts, lengths = data.document_pieces(tokens, 0, block_size=4, bos_input=True)
    assert [tokens[s:s + n].tolist() for s, n in zip(starts, lengths)] == \
        [[0, 1, 2, 3], [4, 5], [0, 6], [0, 7, 8, 9], [10, 11, 12, 13], [14, 15], [0, 16, 17]]


def test_packed_rows_give_the_loss_and_gradients_of_the_pieces_one_at_a_time():
    """The step's loss is the mean over all target tokens; packing pieces side by side into rows with
    their own positions and a block-diagonal mask changes nothing (fp32, 1e-5)."""
    torch.manual_seed(0)
    model = Transformer(ModelConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=64, vocab_size=50, max_seq_len=16))
    rng = np.random.default_rng(0)
    pieces = [rng.integers(1, 50, size=n) for n in (2, 17, 5, 9, 3, 17, 12, 2)]   # <= block_size + 1 tokens
    batch = data.pack(pieces, row_len=16)
    assert batch.x.shape[0] < len(pieces)                                        # several pieces share a row
    _, loss = model(batch.x, batch.y, positions=batch.positions, mask=batch.mask)
    loss.backward()
    packed = {k: p.grad.clone() for k, p in model.named_parameters()}
    model.zero_grad()
    n_targets = sum(len(p) - 1 for p in pieces)
    reference = 0.0
    for p in pieces:
        x, y = torch.from_numpy(p[None, :-1]), torch.from_numpy(p[None, 1:])
        _, piece_loss = model(x, y)
        reference = reference + piece_loss * (len(p) - 1) / n_targets
    reference.backward()
    torch.testing.assert_close(loss, reference, rtol=0, atol=1e-5)
    for k, p in model.named_parameters():
        torch.testing.assert_close(packed[k], p.grad, rtol=0, atol=1e-5)


def test_line_samples_visit_every_piece_once_per_epoch_and_weigh_the_step_by_its_tokens(tiny_data):
    meta = data.read_meta(tiny_data)
    one = data.LineSamples(tiny_data, meta, batch_size=4, block_size=8, grad_accum=2, seed=0)
    ranks = [data.LineSamples(tiny_data, meta, batch_size=4, block_size=8, grad_accum=1, seed=0, rank=r, world_size=2)
             for r in range(2)]
    per_epoch = one.n_pieces // 8
    seen = [p for step in range(per_epoch) for m in range(2) for p in one.pieces_of(step, m, 0)]
    assert len(set(seen)) == len(seen) == per_epoch * 8
    for step in range(3):
        assert [p for m in range(2) for p in one.pieces_of(step, m, 0)] == \
            [p for r in range(2) for p in ranks[r].pieces_of(step, 0, r)]           # two ranks: the same global step
        weights = [one.get_batch(step, m).weight for m in range(2)]
        assert abs(sum(weights) - 1) < 1e-12
        shares = [ranks[r].get_batch(step, 0).weight / 2 for r in range(2)]          # DDP averages over ranks
        assert abs(sum(shares) - 1) < 1e-12


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
    source = data.LineSamples(tiny_data, meta, batch_size=4, block_size=16, grad_accum=2, seed=1337)
    epochs = str(tmp_path / "epochs")
    assert run_train(tiny_data, epochs, "--samples=lines", "--block_size=16", "--epochs=2", "--stop_iter=1") == 0
    assert json.load(open(os.path.join(epochs, "config.json")))["max_iters_resolved"] == -(-2 * source.n_pieces // 8)
    real = sum(int(source.length[p]) - 1 for s in range(8) for m in range(2) for p in source.pieces_of(s, m, 0))
    assert a[-1]["tokens"] == real < 8 * 4 * 2 * 15                             # not the padded positions
