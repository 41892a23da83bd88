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
import mixer_info
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
    add_reliability_files(w, root, docs, tiny_tokenizer)
    return w


def rewrite_checkpoint(src, dst, info=None, state=None, tensors=None):
    """A copy of checkpoint src with its info / train_state JSON or its tensors changed by the given
    functions: the damaged or hostile files a user may be handed."""
    from safetensors import safe_open
    from safetensors.torch import save_file
    with safe_open(src, framework="pt") as f:
        metadata = dict(f.metadata())
        all_tensors = {k: f.get_tensor(k) for k in f.keys()}
    for key, change in (("info", info), ("train_state", state)):
        if change:
            value = json.loads(metadata[key])
            change(value)
            metadata[key] = json.dumps(value)
    if tensors:
        tensors(all_tensors)
    save_file(all_tensors, dst, metadata=metadata)
    return dst


def run_with(w, root, name, change_ckpt):
    """A run folder whose ckpt.safetensors is the workspace run's, changed: for --resume cases."""
    folder = root / name
    os.makedirs(folder)
    rewrite_checkpoint(w["ckpt"], str(folder / "ckpt.safetensors"), **change_ckpt)
    return str(folder)


def add_reliability_files(w, root, docs, tiny_tokenizer):
    """The files of the edges where users slip (issue: Reliability II)."""
    for name, text in {"evil_config": f"import os\nos.system('touch {w['marker']}')\n",
                       "loop_config": "lr = 1e-3\nwhile True: pass\n", "exit_config": "import sys\nsys.exit(0)\n",
                       "call_config": "lr = max(1e-3, 2e-3)\n", "two_lengths_config": "max_iters = 5\nepochs = 2.0\n"}.items():
        w[name] = str(root / f"{name}.py")
        open(w[name], "w").write(text)
    w["binary_config"] = str(root / "binary_config.py")
    open(w["binary_config"], "wb").write(bytes(range(256)) * 4)
    # checkpoints: NaN weights, integer weights, a config claiming more than the tensors hold, a bad tokenizer entry
    nan = lambda t: t.__setitem__("model.norm.weight", torch.full_like(t["model.norm.weight"], float("nan")))
    w["nan_ckpt"] = rewrite_checkpoint(w["ckpt"], str(root / "nan.safetensors"), tensors=nan)
    ints = lambda t: t.__setitem__("model.norm.weight", t["model.norm.weight"].long())
    w["int_ckpt"] = rewrite_checkpoint(w["ckpt"], str(root / "int.safetensors"), tensors=ints)
    w["deep_ckpt"] = rewrite_checkpoint(w["ckpt"], str(root / "deep.safetensors"),
                                        info=lambda i: i["model_config"].update(n_layers=200))
    w["huge_vocab_ckpt"] = rewrite_checkpoint(w["ckpt"], str(root / "huge_vocab.safetensors"),
                                              info=lambda i: i["model_config"].update(vocab_size=10**12))
    w["bad_tok_ckpt"] = rewrite_checkpoint(w["ckpt"], str(root / "bad_tok.safetensors"),
                                           info=lambda i: i["tokenizer"].update(blob="%%% not base64 %%%"))
    w["unknown_tok_ckpt"] = rewrite_checkpoint(w["ckpt"], str(root / "unknown_tok.safetensors"),
                                               info=lambda i: i["tokenizer"].update(backend="wordpiece"))
    # run folders to --resume from, each with one fault in its checkpoint
    w["resume_no_iter"] = run_with(w, root, "resume_no_iter", {"info": lambda i: i.pop("iter_num")})
    w["resume_text_iter"] = run_with(w, root, "resume_text_iter", {"info": lambda i: i.update(iter_num="two")})
    w["resume_bad_rng"] = run_with(w, root, "resume_bad_rng",
                                   {"tensors": lambda t: t.__setitem__("rng.torch", t["rng.torch"][:100].clone())})
    w["resume_no_moment"] = run_with(w, root, "resume_no_moment", {"tensors": lambda t: t.pop("optimizer.0.exp_avg")})
    w["resume_no_weight"] = run_with(w, root, "resume_no_weight",
                                     {"tensors": lambda t: t.pop("model.layers.0.attention.wq.weight")})
    w["resume_groups"] = run_with(w, root, "resume_groups",
                                  {"state": lambda s: s["optimizer_groups"].append(dict(s["optimizer_groups"][0]))})
    # export folders: invalid JSON, a string where a number goes, an index naming a file outside the folder
    for name, fault in {"export_bad_json": lambda d: open(os.path.join(d, "config.json"), "w").write("{not json"),
                        "export_text_number": lambda d: json.dump({**json.load(open(os.path.join(d, "config.json"))),
                                                                   "hidden_size": "big"},
                                                                  open(os.path.join(d, "config.json.new"), "w")),
                        "export_escape": None, "export_with_notes": None}.items():
        folder = str(root / name)
        os.makedirs(folder)
        for f in os.listdir(w["export"]):
            open(os.path.join(folder, f), "wb").write(open(os.path.join(w["export"], f), "rb").read())
        if fault:
            fault(folder)
        if os.path.exists(os.path.join(folder, "config.json.new")):
            os.replace(os.path.join(folder, "config.json.new"), os.path.join(folder, "config.json"))
        w[name] = folder
    os.remove(os.path.join(w["export_escape"], "model.safetensors"))
    json.dump({"weight_map": {"lm_head.weight": "../../elsewhere.safetensors"}},
              open(os.path.join(w["export_escape"], "model.safetensors.index.json"), "w"))
    open(os.path.join(w["export_with_notes"], "my_notes.txt"), "w").write("the user's own file")
    # data folders: meta.json values of the wrong type; a tokenizer that feeds no BOS (another tokenizer)
    for name, change in {"meta_text_vocab": lambda m: m.update(vocab_size="many"),
                         "meta_huge_vocab": lambda m: m.update(vocab_size=10**12),
                         "other_bos": lambda m: m.update(bos_input=False)}.items():
        path = write_data_dir(str(root / name), docs, tiny_tokenizer)
        meta = json.load(open(os.path.join(path, "meta.json")))
        change(meta)
        json.dump(meta, open(os.path.join(path, "meta.json"), "w"))
        w[name] = path
    w["binary_log"] = str(root / "binary_log")
    os.makedirs(w["binary_log"])
    open(os.path.join(w["binary_log"], "log.jsonl"), "wb").write(bytes(range(128, 256)) * 8)
    w["fifo"] = str(root / "pairs_fifo.jsonl")
    os.mkfifo(w["fifo"])


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
    # mixer_info.py
    (mixer_info.main, lambda w: ["info", w["root"] + "/nothing"], "no meta.json"),
    (mixer_info.main, lambda w: ["info", w["data"], "--eta=0"], "eta"),
    (mixer_info.main, lambda w: ["prior", "eng", "xyz"], "xyz"),
    # config files are parsed, never run
    (train.main, lambda w: [w["evil_config"], *trained(w)], "evil_config.py:1: import is not allowed"),
    (train.main, lambda w: [w["loop_config"], *trained(w)], "loop_config.py:2: a while loop is not allowed"),
    (train.main, lambda w: [w["exit_config"], *trained(w)], "exit_config.py:1: import is not allowed"),
    (train.main, lambda w: [w["call_config"], *trained(w)], "call_config.py:1: a call of max is not allowed"),
    (train.main, lambda w: [w["binary_config"], *trained(w)], "binary_config.py: not a text file"),
    (train.main, lambda w: [w["two_lengths_config"], *trained(w)[:-1]], "sets max_iters and epochs"),
    (tokenize_data.main, lambda w: [w["evil_config"], "--corpus", w["corpus"], "--out", w["root"] + "/t"],
     "evil_config.py:1: import is not allowed"),
    # train.py: values a typo or a hostile file gives
    (train.main, lambda w: trained(w, "--batch_size=1000000"), "over 1,048,576 tokens a micro-batch"),
    (train.main, lambda w: trained(w, "--eta=0.5"), "eta set without a mixer"),
    (train.main, lambda w: trained(w, "--languages=eng,xxx"), "languages set without a mixer"),
    (train.main, lambda w: trained(w, f"--out_dir={w['data']}"), "out_dir and data_dir are both"),
    (train.main, lambda w: trained(w, f"--out_dir={w['run']}"), "holds a run at iteration 2: add --resume"),
    (train.main, lambda w: trained(w, f"--data_dir={w['meta_text_vocab']}"), "meta.json: vocab_size 'many'"),
    (train.main, lambda w: trained(w, f"--data_dir={w['meta_huge_vocab']}"), "meta.json: vocab_size 1000000000000"),
    (train.main, lambda w: trained(w, f"--init_from={w['nan_ckpt']}"), "holds NaN or inf"),
    (train.main, lambda w: trained(w, f"--init_from={w['deep_ckpt']}"), "missing layers.1."),
    (train.main, lambda w: trained(w, f"--init_from={w['huge_vocab_ckpt']}"), "vocab_size=1000000000000 must be"),
    (train.main, lambda w: trained(w, f"--init_from={w['export_escape']}"), "the weight files must be plain names"),
    (train.main, lambda w: trained(w, f"--init_from={w['export_text_number']}"), "not a usable LLaMA config.json"),
    (train.main, lambda w: trained(w, f"--data_dir={w['other_bos']}", "--samples=lines", f"--init_from={w['ckpt']}"),
     "trained with another tokenizer"),
    # train.py --resume: every value read from the checkpoint is checked before use
    (train.main, lambda w: trained(w, f"--out_dir={w['resume_no_iter']}", "--resume"), "iter_num"),
    (train.main, lambda w: trained(w, f"--out_dir={w['resume_text_iter']}", "--resume"), "iter_num='two'"),
    (train.main, lambda w: trained(w, f"--out_dir={w['resume_bad_rng']}", "--resume"), "rng.torch has 100 bytes"),
    (train.main, lambda w: trained(w, f"--out_dir={w['resume_no_moment']}", "--resume"), "lacks AdamW's exp_avg"),
    (train.main, lambda w: trained(w, f"--out_dir={w['resume_no_weight']}", "--resume"),
     "missing layers.0.attention.wq.weight"),
    (train.main, lambda w: trained(w, f"--out_dir={w['resume_groups']}", "--resume"), "optimizer"),
    # eval_blimp.py: outputs that are inputs, bad checkpoints and exports
    (eval_blimp.main, lambda w: [w["ckpt"], "--suite", w["pairs"], "--out", w["ckpt"]], "an input of this command"),
    (eval_blimp.main, lambda w: [w["ckpt"], "--suite", w["pairs"], "--predictions", w["pairs"]], "an input of this command"),
    (eval_blimp.main, lambda w: [w["nan_ckpt"], "--suite", w["pairs"]], "holds NaN or inf"),
    (eval_blimp.main, lambda w: [w["int_ckpt"], "--suite", w["pairs"]], "holds int64, not float32 weights"),
    (eval_blimp.main, lambda w: [w["bad_tok_ckpt"], "--suite", w["pairs"]], "tokenizer is not readable"),
    (eval_blimp.main, lambda w: [w["unknown_tok_ckpt"], "--suite", w["pairs"]], "tokenizer is not readable"),
    (eval_blimp.main, lambda w: [w["export_bad_json"], "--suite", w["pairs"]], "not a usable LLaMA config.json"),
    (eval_blimp.main, lambda w: [w["ckpt"], "--suite", w["pairs"], "--device", "cuda"], "no CUDA GPU"),
    (eval_blimp.main, lambda w: [w["ckpt"], "--suite", w["fifo"]], "not a regular file"),
    (eval_blimp.main, lambda w: [w["ckpt"], "--suite", w["pairs"], "--columns", "good=sentence_good,bad=sentence_good"],
     "for both the good and the bad sentence"),
    # export_hf.py
    (export_hf.main, lambda w: [w["nan_ckpt"], w["root"] + "/exported"], "holds NaN or inf"),
    (export_hf.main, lambda w: [w["ckpt"], w["export_with_notes"], "--force"], "also holds my_notes.txt"),
    # sample.py
    (sample.main, lambda w: [w["nan_ckpt"]], "holds NaN or inf"),
    (sample.main, lambda w: [w["bad_tok_ckpt"]], "tokenizer is not readable"),
    (sample.main, lambda w: [w["export_escape"]], "the weight files must be plain names"),
    # report.py
    (report.main, lambda w: [w["run"], "--json", os.path.join(w["run"], "log.jsonl")], "an input of this command"),
    (report.main, lambda w: [w["run"], "--json", w["root"]], "is a folder"),
    (report.main, lambda w: [w["binary_log"]], "log.jsonl: not a text file"),
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
                                                   "report", "mixer_info"}


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


@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MB file system that fills up (tmpfs; mounting needs root, as CI and these machines have),
    unmounted afterwards; None where it cannot be mounted."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True).returncode:
        yield None
        return
    try:
        yield mount
    finally:  # lazily: a file a failed test left open must not keep the mount (and its 1 MB) alive
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(folder, leave: int):
    """Fill the file system of folder up to `leave` free bytes."""
    st = os.statvfs(folder)
    with open(os.path.join(folder, "ballast"), "ab") as f:
        f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))


def test_a_real_full_disk_is_one_line_in_every_writer_and_keeps_what_was_there(ws, small_disk, monkeypatch):
    """safetensors reports a full disk as its own SafetensorError, not OSError: each command must still
    end in one line, with the last checkpoint intact. On a real full file system where one can be
    mounted, else with the library's own exception."""
    import safetensors
    if small_disk is None:  # the library's own error type, raised where it would be
        import safetensors.torch

        def full(*args, **kwargs):
            raise safetensors.SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        monkeypatch.setattr(safetensors.torch, "save_file", full)
        with pytest.raises(SystemExit, match="No space left on device"):
            export_hf.main([ws["ckpt"], os.path.join(ws["root"], "never_exported")])
        return
    out = str(small_disk / "run")
    assert train.main(trained(ws, f"--out_dir={out}", "--eval_interval=1", "--force")) == 0
    before = open(os.path.join(out, "ckpt.safetensors"), "rb").read()
    fill(small_disk, leave=len(before) // 2)  # room for half a checkpoint: the next save fails mid-file
    with pytest.raises(SystemExit) as e:
        train.main(trained(ws, f"--out_dir={out}", "--eval_interval=1", "--max_iters=4", "--resume"))
    assert "No space left on device" in str(e.value) and "the last checkpoint is" in str(e.value), e.value
    assert open(os.path.join(out, "ckpt.safetensors"), "rb").read() == before
    assert not [n for n in os.listdir(out) if ".tmp" in n]
    for command, argv in [(export_hf.main, [ws["ckpt"], str(small_disk / "exported")]),
                          (eval_blimp.main, [ws["ckpt"], "--suite", ws["pairs"], "--no-progress",
                                             "--predictions", str(small_disk / "predictions.jsonl")]),
                          (report.main, [ws["run"], "--json", str(small_disk / "summary.json")])]:
        fill(small_disk, leave=0)
        with pytest.raises(SystemExit) as e:
            command(argv)
        assert "No space left on device" in str(e.value) and "\n" not in str(e.value), (command.__module__, e.value)
    assert sorted(os.listdir(small_disk)) == ["ballast", "run"]  # no half-written export, JSON or predictions


def test_a_read_only_file_system_is_one_line(ws, small_disk):
    if small_disk is None:
        pytest.skip("cannot mount a file system here (not root)")
    assert train.main(trained(ws, f"--out_dir={small_disk / 'run'}", "--force")) == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    for command, argv in [(train.main, trained(ws, f"--out_dir={small_disk / 'run'}", "--max_iters=3", "--resume")),
                          (export_hf.main, [ws["ckpt"], str(small_disk / "exported")]),
                          (eval_blimp.main, [ws["ckpt"], "--suite", ws["pairs"], "--no-progress",
                                             "--out", str(small_disk / "scores.json")])]:
        with pytest.raises(SystemExit) as e:
            command(argv)
        assert "Read-only file system" in str(e.value) and "\n" not in str(e.value), (command.__module__, e.value)
