"""
Turn raw text into what train.py and the mixer read: a tokenizer and per-language token bins.

(The pipeline is being written; this file currently holds the Tokenizer interface the other
files share.)
"""

import base64
import hashlib
import json
import os

SPECIAL_TOKENS = ["<s>", "</s>", "<pad>"]  # BOS, EOS, padding: ids 0, 1, 2 for the BPE backend


class Tokenizer:
    """One interface over the tokenizer backends. Every backend gives:

    encode(text) -> list[int]        plain text to ids, no special tokens added, lossless
    encode_batch(texts) -> list[list[int]]
    decode(ids) -> str               decode(encode(t)) == t
    vocab_size, bos_id, eos_id, pad_id
    to_dict() / Tokenizer.from_dict(d): the tokenizer as plain data, stored inside checkpoints
    """

    def __init__(self, backend: str, blob: bytes):
        self.backend = backend
        self.blob = blob  # the tokenizer file's bytes: it travels with data and checkpoints
        self.sha256 = hashlib.sha256(blob).hexdigest()
        if backend == "bpe":
            from tokenizers import Tokenizer as HFTokenizer
            self._tok = HFTokenizer.from_str(blob.decode("utf-8"))
            # literal "<s>" in a text is text, not a BOS token: keeps encode lossless
            self._tok.encode_special_tokens = True
            self.vocab_size = self._tok.get_vocab_size()
            self.bos_id, self.eos_id, self.pad_id = (self._tok.token_to_id(t) for t in SPECIAL_TOKENS)
        else:
            raise ValueError(f"tokenizer: unknown backend {backend!r}")

    def encode(self, text: str) -> list:
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts) -> list:
        return [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=False)

    def to_dict(self) -> dict:
        return {"backend": self.backend, "blob": base64.b64encode(self.blob).decode("ascii"), "sha256": self.sha256}

    @staticmethod
    def from_dict(d: dict) -> "Tokenizer":
        return Tokenizer(d["backend"], base64.b64decode(d["blob"]))


TOKENIZER_FILES = {"bpe": "tokenizer.json"}


def load_tokenizer(path: str) -> Tokenizer:
    """Load from a data folder (reads meta.json's tokenizer entry) or a tokenizer file."""
    if os.path.isdir(path):
        meta_path = os.path.join(path, "meta.json")
        if not os.path.isfile(meta_path):
            raise SystemExit(f"{path}: no meta.json (not a folder written by tokenize_data.py)")
        with open(meta_path) as f:
            info = json.load(f)["tokenizer"]
        file = os.path.join(path, info["file"])
        with open(file, "rb") as f:
            return Tokenizer(info["backend"], f.read())
    for backend, name in TOKENIZER_FILES.items():
        if path.endswith(name.split(".")[-1]):
            with open(path, "rb") as f:
                return Tokenizer(backend, f.read())
    raise SystemExit(f"{path}: not a tokenizer file or data folder")
