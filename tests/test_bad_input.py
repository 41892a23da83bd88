"""Every command, given bad input, stops with one line naming the file or key and the problem:
no traceback, a non-zero exit, and no file created or changed. And no command ever runs code
from a checkpoint or export it reads."""

import gzip
import json
import os
import pickle
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest
import torch

from conftest import ROOT, synthetic_text, write_data_dir
from checkpoint import save_checkpoint
from model import ModelConfig, Transformer

import eval_blimp
import export_hf
import mixer
import report
import sample
import tokenize_data
import train

TINY = ["--dim=32", "--n_layers=1", "--n_heads=2", "--hidden_dim=64", "--max_seq_len=32", "--block_size=16",
        "--batch_size=2", "--grad_accum=1", "--eval_windows=2", "--milestone_unit=none"]


class Evil:
    """Unpickling this runs a command: the payload of a malicious "checkpoint"."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def ws(tmp_path_factory, tiny_tokenizer):
    """A workspace: data, a trained run, an export, pair files, a corpus and broken or hostile files."""
    root = tmp_path_factory.mktemp("ws")
    w = {"root": str(root)}
    docs = {"eng": synthetic_text(120, seed=1), "nld": synthetic_text(80, seed=2)}
    w["data"] = write_data_dir(str(root / "data"), docs, tiny_tokenizer)
    w["run"] = str(root / "run")
    assert train.main([f"--data_dir={w['data']}", f"--out_dir={w['run']}", *TINY, "--max_iters=2"]) == 0
    w["ckpt"] = os.path.join(w["run"], "ckpt.safetensors")
    w["export"] = str(root / "export")
    export_hf.main([w["ckpt"], w["export"]])
    model = Transformer(ModelConfig(dim=32, n_layers=1, n_heads=2, hidden_dim=64, vocab_size=tiny_tokenizer.vocab_size,
                                    max_seq_len=32))
    w["weights_only"] = str(root / "milestone.safetensors")
    save_checkpoint(w["weights_only"], model, {"model_config": asdict(model.cfg), "tokenizer": tiny_tokenizer.to_dict()})
    w["marker"] = str(root / "code_ran")
    w["evil"] = str(root / "evil.pt")
    torch.save({"model": Evil(w["marker"]), "model_config": {}}, w["evil"])
    with open(root / "plain.pickle", "wb") as f:
        pickle.dump(Evil(w["marker"]), f)
    w["evil_pickle"] = str(root / "plain.pickle")
    w["truncated"] = str(root / "truncated.safetensors")
    open(w["truncated"], "wb").write(open(w["ckpt"], "rb").read()[:5000])
    w["evil_export"] = str(root / "evil_export")       # an export folder whose weights file is a pickle
    os.makedirs(w["evil_export"])
    for name in os.listdir(w["export"]):
        if name != "model.safetensors":
            open(os.path.join(w["evil_export"], name), "wb").write(open(os.path.join(w["export"], name), "rb").read())
    open(os.path.join(w["evil_export"], "model.safetensors"), "wb").write(open(w["evil"], "rb").read())
    w["file"] = str(root / "a_file")
    open(w["file"], "w").write("not a folder")
    w["pairs"] = str(root / "pairs.jsonl")
    open(w["pairs"], "w").write(json.dumps({"sentence_good": "the cat sat.", "sentence_bad": "the cat sit."}) + "\n")
    w["corpus"] = str(root / "corpus")
    os.makedirs(os.path.join(w["corpus"], "en"))
    with gzip.open(os.path.join(w["corpus"], "en", "a.txt.gz"), "wt") as f:
        f.write("\n".join(synthetic_text(200, seed=3)) + "\n")
    # broken data folders, each a copy of the good one with one fault
    broken = {"odd_bytes": lambda d: open(os.path.join(d, "eng", "train.bin"), "ab").write(b"\x01"),
              "big_ids": lambda d: np.array([0, 65000, 3], np.uint16).tofile(os.path.join(d, "nld", "train.bin")),
              "no_tokenizer": lambda d: os.remove(os.path.join(d, "tokenizer.json")),
              "truncated_meta": lambda d: open(os.path.join(d, "meta.json"), "w").write('{"vocab_size": 3'),
              "ckpt_is_milestone": None}
    for name, fault in broken.items():
        path = write_data_dir(str(root / name), docs, tiny_tokenizer)
        if fault:
            fault(path)
        w[name] = path
    w["resume_milestone"] = str(root / "resume_milestone")
    os.makedirs(w["resume_milestone"])
    open(os.path.join(w["resume_milestone"], "ckpt.safetensors"), "wb").write(open(w["weights_only"], "rb").read())
    w["bad_log"] = str(root / "bad_log")
    os.makedirs(w["bad_log"])
    open(os.path.join(w["bad_log"], "log.jsonl"), "w").write('{"kind": "train"\n')
    return w


def trained(w, *flags):
    return [f"--data_dir={w['data']}", f"--out_dir={w['root']}/new_run", *TINY, "--max_iters=2", *flags]


# (command, arguments given the workspace, what the line must say)
CASES = [
    # tokenize_data.py
    (tokenize_data.main, lambda w: ["--corpus", w["root"] + "/nothing", "--out", w["root"] + "/t"], "no such folder"),
    (tokenize_data.main, lambda w: ["--corpus", w["corpus"], "--out", w["root"] + "/t", "--vocab-size", "-5"], "--vocab-size -5"),
    (tokenize_data.main, lambda w: ["--corpus", w["corpus"], "--out", w["root"] + "/t", "--vocab-size", "0"], "--vocab-size 0"),
    (tokenize_data.main, lambda w: ["--corpus", w["corpus"], "--out", w["root"] + "/t", "--vocab-size", "4000000000"], "--vocab-size 4000000000"),
    (tokenize_data.main, lambda w: ["--corpus", w["corpus"], "--out", w["root"] + "/t", "--unit", "parsecs"], "--unit parsecs"),
    (tokenize_data.main, lambda w: ["--corpus", w["corpus"], "--out", w["file"] + "/sub"], "a_file"),
    (tokenize_data.main, lambda w: ["--corpus", w["corpus"], "--out", w["root"] + "/t", "--budget", "lots"], "lots"),
    (tokenize_data.main, lambda w: ["--corpus", w["corpus"], "--out", w["root"] + "/t", "--val-fraction", "1.5"], "--val-fraction 1.5"),
    (tokenize_data.main, lambda w: ["--corpus", w["corpus"]], "--out"),
    (tokenize_data.main, lambda w: ["--corpus", w["corpus"], "--out", w["root"] + "/t", "--languages", "xx"], "xx"),
    (tokenize_data.main, lambda w: ["--corpus", w["corpus"], "--out", w["root"] + "/t", "--mode", "sideways"], "--mode sideways"),
    (tokenize_data.main, lambda w: ["--corpus", w["corpus"], "--out", w["root"] + "/t", "--vocabsize", "3"], "did you mean"),
    # train.py: values
    (train.main, lambda w: trained(w, "--batch_size=0"), "batch_size=0"),
    (train.main, lambda w: trained(w, "--log_interval=0"), "log_interval=0"),
    (train.main, lambda w: trained(w, "--eval_interval=-3"), "eval_interval=-3"),
    (train.main, lambda w: trained(w, "--eval_windows=0"), "eval_windows=0"),
    (train.main, lambda w: trained(w, "--max_iters=0"), "max_iters=0"),
    (train.main, lambda w: trained(w, "--decay=cosin"), "decay='cosin'"),
    (train.main, lambda w: trained(w, "--milestone_unit=sentences"), "milestone_unit='sentences'"),
    (train.main, lambda w: trained(w, "--dtype=float64"), "dtype='float64'"),
    (train.main, lambda w: trained(w, "--lrr=1"), "unknown config key 'lrr'"),
    (train.main, lambda w: trained(w, "--n_heads=5"), "n_heads=5"),
    # train.py: files
    (train.main, lambda w: trained(w, f"--data_dir={w['root']}/nothing"), "no meta.json"),
    (train.main, lambda w: trained(w, f"--data_dir={w['truncated_meta']}"), "meta.json: not a readable meta.json"),
    (train.main, lambda w: trained(w, f"--data_dir={w['odd_bytes']}"), "train.bin"),
    (train.main, lambda w: trained(w, f"--data_dir={w['big_ids']}"), "train.bin: token id 65000"),
    (train.main, lambda w: trained(w, f"--data_dir={w['no_tokenizer']}"), "tokenizer.json"),
    (train.main, lambda w: trained(w, f"--out_dir={w['resume_milestone']}", "--resume"), "holds weights only"),
    (train.main, lambda w: trained(w, f"--init_from={w['truncated']}"), "truncated.safetensors: not a readable checkpoint"),
    (train.main, lambda w: trained(w, f"--init_from={w['evil']}"), "evil.pt: not a readable checkpoint"),
    (train.main, lambda w: trained(w, f"--init_from={w['evil_export']}"), "model.safetensors: not a readable safetensors"),
    (train.main, lambda w: trained(w, f"--out_dir={w['file']}/run"), "cannot write the run folder"),
    (train.main, lambda w: trained(w, f"--out_dir={w['root']}/never_ran", "--resume"), "nothing to resume"),
    # eval_blimp.py
    (eval_blimp.main, lambda w: [w["evil"], "--suite", w["pairs"]], "evil.pt: not a readable checkpoint"),
    (eval_blimp.main, lambda w: [w["truncated"], "--suite", w["pairs"]], "truncated.safetensors: not a readable checkpoint"),
    (eval_blimp.main, lambda w: [w["evil_export"], "--suite", w["pairs"]], "model.safetensors: not a readable safetensors"),
    (eval_blimp.main, lambda w: [w["ckpt"], "--suite", w["root"] + "/no_pairs.jsonl"], "no_pairs.jsonl"),
    (eval_blimp.main, lambda w: [w["ckpt"], "--suite", w["pairs"], "--out", w["file"] + "/result.json"], "a_file"),
    (eval_blimp.main, lambda w: [w["ckpt"], "--suite", w["pairs"], "--out", w["data"]], "is a folder"),
    # export_hf.py
    (export_hf.main, lambda w: [w["evil"], w["root"] + "/exported"], "evil.pt: not a readable checkpoint"),
    (export_hf.main, lambda w: [w["evil_pickle"], w["root"] + "/exported"], "plain.pickle: not a readable checkpoint"),
    (export_hf.main, lambda w: [w["root"] + "/missing.safetensors", w["root"] + "/exported"], "no such checkpoint"),
    (export_hf.main, lambda w: [w["ckpt"], w["file"] + "/exported"], "a_file"),
    (export_hf.main, lambda w: [w["ckpt"], w["root"] + "/exported", "--eval", w["file"]], "a_file: not a readable JSON"),
    # sample.py
    (sample.main, lambda w: [w["evil"]], "evil.pt: not a readable checkpoint"),
    (sample.main, lambda w: [w["ckpt"], "--top_k", "0"], "top_k"),
    (sample.main, lambda w: [w["ckpt"], "--temperature", "-1"], "temperature"),
    # report.py
    (report.main, lambda w: [w["root"] + "/nothing"], "no log"),
    (report.main, lambda w: [w["bad_log"]], "log.jsonl:1: not a JSON record"),
    # mixer.py
    (mixer.main, lambda w: ["info", w["root"] + "/nothing"], "no meta.json"),
    (mixer.main, lambda w: ["info", w["data"], "--eta=0"], "eta"),
    (mixer.main, lambda w: ["prior", "eng", "xyz"], "xyz"),
]


def snapshot(root):
    """Every file under root with its size and modification time."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            st = os.stat(path)
            out[path] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.mark.parametrize("command, argv, message", CASES,
                         ids=[f"{c.__module__}-{i}" for i, (c, _, _) in enumerate(CASES)])
def test_bad_input_is_one_line_with_no_file_written(ws, command, argv, message):
    before = snapshot(ws["root"])
    with pytest.raises(SystemExit) as e:
        command(argv(ws))
    text = str(e.value.code)
    assert e.value.code not in (0, None) and message in text and "\n" not in text, text
    assert snapshot(ws["root"]) == before, "files were created or changed"
    assert not os.path.exists(ws["marker"]), "code from a file ran"


def test_at_least_forty_cases_cover_every_command():
    assert len(CASES) >= 40
    assert {c.__module__ for c, _, _ in CASES} == {"tokenize_data", "train", "eval_blimp", "export_hf", "sample",
                                                   "report", "mixer"}


@pytest.mark.slow
@pytest.mark.parametrize("script, argv", [
    ("eval_blimp.py", lambda w: [w["evil"], "--suite", w["pairs"]]),
    ("export_hf.py", lambda w: [w["evil"], w["root"] + "/exported"]),
    ("sample.py", lambda w: [w["evil"]]),
    ("train.py", lambda w: trained(w, f"--init_from={w['evil']}")),
    ("train.py", lambda w: trained(w, f"--init_from={w['evil_export']}")),
    ("eval_blimp.py", lambda w: [w["evil_export"], "--suite", w["pairs"]]),
])
def test_a_pickle_that_would_run_code_is_refused_by_every_reader_as_a_real_user_sees_it(ws, script, argv):
    """The full path a user meets: exit status 1, one line on stderr, no traceback, and the pickle's
    payload (touch a file) never ran."""
    r = subprocess.run([sys.executable, os.path.join(ROOT, script), *argv(ws)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr.count("\n") == 1 and "not a readable" in r.stderr, r.stderr
    assert not os.path.exists(ws["marker"])


def test_a_resume_from_a_pickled_checkpoint_is_refused(ws, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "ckpt.safetensors").write_bytes(open(ws["evil"], "rb").read())
    with pytest.raises(SystemExit, match="not a readable checkpoint"):
        train.main(trained(ws, f"--out_dir={out}", "--resume"))
    assert not os.path.exists(ws["marker"])


def test_a_full_disk_while_checkpointing_keeps_the_last_checkpoint(ws, tmp_path, monkeypatch):
    import safetensors.torch
    out = str(tmp_path / "run")
    assert train.main(trained(ws, f"--out_dir={out}", "--eval_interval=1")) == 0
    before = open(os.path.join(out, "ckpt.safetensors"), "rb").read()

    def no_space(tensors, filename, metadata=None):
        open(filename, "wb").write(b"part of a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", no_space)
    with pytest.raises(SystemExit) as e:
        train.main(trained(ws, f"--out_dir={out}", "--eval_interval=1", "--max_iters=4", "--resume"))
    assert "No space left on device" in str(e.value) and "the last checkpoint is" in str(e.value)
    assert open(os.path.join(out, "ckpt.safetensors"), "rb").read() == before
    assert not [n for n in os.listdir(out) if ".tmp" in n]


def test_a_full_disk_while_exporting_or_tokenizing_leaves_nothing(ws, tmp_path, monkeypatch):
    import safetensors.torch

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", no_space)
    with pytest.raises(SystemExit, match="cannot write the export .No space left on device"):
        export_hf.main([ws["ckpt"], str(tmp_path / "exported")])
    monkeypatch.setattr(tokenize_data, "write_data", no_space)
    with pytest.raises(SystemExit, match="cannot write the data .No space left on device"):
        tokenize_data.main(["--corpus", ws["corpus"], "--out", str(tmp_path / "tokens"), "--vocab-size", "300"])
    assert os.listdir(tmp_path) == []
