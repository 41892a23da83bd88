"""Shared test fixtures: a tiny tokenizer and a tiny data folder in the layout tokenize_data.py writes."""

import json
import os
import random
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SHARED_DATA = os.path.join(ROOT, "..", "shared", "data")

WORDS = ("the cat dog sat on a mat and ran to big small red house tree bird sang "
         "de het een kat hond liep naar huis boom 猫 狗 在 家 树 鸟 唱").split()


def synthetic_text(n_lines, seed):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) + "." for _ in range(n_lines)]


def tiny_bpe(lines, vocab_size=300):
    """A small ByteLevel BPE, trained as tokenize_data.py trains one."""
    from tokenizer import train_tokenizer
    return train_tokenizer(lines, "bpe", vocab_size)


def write_data_dir(path, docs_by_lang, tokenizer, val_fraction=0.2):
    """Write meta.json, tokenizer.json and <lang>/{train,val}.bin (BOS before every document)."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "tokenizer.json"), "wb") as f:
        f.write(tokenizer.blob)
    meta = {"vocab_size": tokenizer.vocab_size, "dtype": "uint16", "bos_id": tokenizer.bos_id,
            "eos_id": tokenizer.eos_id, "pad_id": tokenizer.pad_id,
            "tokenizer": {"backend": "bpe", "file": "tokenizer.json", "sha256": tokenizer.sha256},
            "languages": {}, "command": "tests/conftest.py"}
    for lang, docs in docs_by_lang.items():
        os.makedirs(os.path.join(path, lang), exist_ok=True)
        n_val = max(1, int(len(docs) * val_fraction))
        info = {"byte_premium": 1.0}
        for split, part in (("train", docs[n_val:]), ("val", docs[:n_val])):
            ids = []
            for d in part:
                ids += [tokenizer.bos_id] + tokenizer.encode(d)
            np.array(ids, dtype=np.uint16).tofile(os.path.join(path, lang, f"{split}.bin"))
            info[split] = {"tokens": len(ids), "bytes": sum(len(d.encode()) for d in part),
                           "words": sum(len(d.split()) for d in part), "documents": len(part)}
        meta["languages"][lang] = info
    with open(os.path.join(path, "meta.json"), "w") as f:
        json.dump(meta, f)
    return path


def checkpoint_weights(path):
    """{name: tensor} of a train.py checkpoint, and its info dict."""
    from checkpoint import load_checkpoint
    model, info = load_checkpoint(str(path))
    return model.state_dict(), info


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return tiny_bpe(synthetic_text(400, seed=0))


@pytest.fixture
def tiny_data(tmp_path, tiny_tokenizer):
    """Two languages of synthetic text, a few thousand tokens each."""
    docs = {"eng": synthetic_text(300, seed=1), "nld": synthetic_text(200, seed=2)}
    return write_data_dir(str(tmp_path / "data"), docs, tiny_tokenizer)
