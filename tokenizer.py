"""
The tokenizer: a byte-level BPE, trained, loaded, and the one place that decides where BOS goes.

    from tokenizer import load_tokenizer, train_tokenizer
    tok = load_tokenizer("data/model_a")          # a data folder (its meta.json), or a tokenizer.json
    ids = tok.encode_document("The cat sat.")     # [BOS] + ids: a document as training sees it
    text = tok.decode(ids[1:])
    tok = train_tokenizer(texts, "bpe", 16000)    # what tokenize_data.py does

Byte-level BPE (Radford et al. 2019, GPT-2; Sennrich et al. 2016), by Hugging Face `tokenizers`: text
-> (normalizer ->) UTF-8 bytes, each byte shown as one printable character, split by GPT-2's pattern,
then merges learnt from pair counts. Every byte is a token, so any text encodes, and decodes back
(unless a normalizer changed it); a literal "<s>" in a text is text, never BOS.

BOS. Training puts <s> before every document and no </s> after it (a bin holds [BOS d1 BOS d2 ...]);
a sentence is scored given that <s> (eval_blimp.py); generation starts from it and stops at the next
one (`end_ids`). A tokenizer made with bos_input=False (the Model A card's way) feeds a document without
it: encode_document gives the ids alone, and the BOS in the bins only marks where a document starts.
bos_input lives in one place, the Tokenizer: to_dict carries it into checkpoints, a data folder's
meta.json stores it (older folders also wrote it into tokenizer.json; meta.json always had it, and is
what is read). Only an export writes it into a tokenizer.json, for Transformers (hf_tokenizer.py).

Normalizer. A tokenizer.json may carry a `tokenizers` normalizer (NORMALIZERS: the card's NFD ->
Lowercase -> Strip), which then applies wherever the tokenizer does, a Transformers export included.
`normalize` applies it first, by the normalizer object itself, so every encoder sees the same text.

The same ids, faster: where tiktoken gives exactly `tokenizers`' ids (a trained ByteLevel BPE always
does), it encodes instead (bpe_fast.py; `encoder` says which one runs, `encoder_note` why not tiktoken).

Other backends: a SentencePiece model ("spm") or an OpenAI .tiktoken file ("tiktoken") loads here too,
from a data folder or a checkpoint, and works everywhere a Tokenizer does. The Tokenizer keeps what every
backend shares (BOS, documents, the bin layout, to_dict), so there is one copy of it, and hands their
encoding and decoding to an `inner` object from tokenizer_backends.py, imported only when such a tokenizer
is opened or trained. That file imports nothing from this one (no cycle), and a reader of this one meets
no SentencePiece or tiktoken-file code.
"""

import base64
import hashlib
import itertools
import json
import os

import numpy as np

from bpe_fast import encoder_for_bpe, split_long

SPECIAL_TOKENS = ["<s>", "</s>", "<pad>"]  # BOS, EOS, padding: ids 0, 1, 2 in our recipe
TOKENIZER_FILES = {"bpe": "tokenizer.json", "spm": "tokenizer.model", "tiktoken": "tokenizer.tiktoken"}
BPE_RECIPES = ("ours", "model_a_card")
# --normalize choices: name -> the `tokenizers` normalizers, in order (JSON as tokenizer.json stores them)
NORMALIZERS = {
    "none": None,
    "nfd_lower_strip": {"type": "Sequence", "normalizers": [  # the Model A card's (MODEL_A_CARD.md)
        {"type": "NFD"}, {"type": "Lowercase"}, {"type": "Strip", "strip_left": True, "strip_right": True}]},
}


class Tokenizer:
    """encode(text) -> ids, no special tokens added; decode(ids) -> text, decode(encode(t)) == t.
    encode_document(s): a document as the model reads it (BOS or not). encode_flat: what a bin holds.
    vocab_size, bos_id, eos_id, pad_id, bos_input; to_dict() / Tokenizer.from_dict(d) as plain data.
    The blob is the tokenizer file's bytes (bpe: a tokenizer.json), so it travels with data and checkpoints."""

    def __init__(self, backend: str, blob: bytes, bos_input: bool = True):
        self.backend, self.blob, self.bos_input = backend, blob, bool(bos_input)
        self.sha256 = hashlib.sha256(blob).hexdigest()
        self._normalize = None    # text -> normalized text, or None
        self.normalizer = "none"  # its name in NORMALIZERS, or "other"
        self.encoder, self.encoder_note = backend, ""
        self.inner = None         # spm, tiktoken: the tokenizer_backends object that encodes and decodes
        if backend == "bpe":
            from tokenizers import Tokenizer as HFTokenizer
            self._hf = HFTokenizer.from_str(blob.decode("utf-8"))
            self._hf.encode_special_tokens = True  # a literal "<s>" in a text is text: encode stays lossless
            self.vocab_size = self._hf.get_vocab_size()
            self.bos_id, self.eos_id, self.pad_id = (self._hf.token_to_id(t) for t in SPECIAL_TOKENS)
            spec = json.loads(blob)
            if self._hf.normalizer is not None:  # applied by normalize(), so the encoders get normalized text
                self.normalizer = next((k for k, v in NORMALIZERS.items() if v == spec["normalizer"]), "other")
                self._normalize = make_normalize(self._hf.normalizer, self.normalizer)
                self._hf.normalizer = None
            self._joined, self.encoder_note = encoder_for_bpe(spec, self.vocab_size)
            self.encoder = "tiktoken" if self._joined else "tokenizers"
        elif backend in ("spm", "tiktoken"):
            from tokenizer_backends import SentencePiece, TiktokenFile
            self.inner = SentencePiece(blob) if backend == "spm" else TiktokenFile(blob, SPECIAL_TOKENS)
            self.vocab_size = self.inner.vocab_size
            self.bos_id, self.eos_id, self.pad_id = self.inner.bos_id, self.inner.eos_id, self.inner.pad_id
            self._joined = self.inner.joined
        else:
            raise ValueError(f"tokenizer: unknown backend {backend!r} (bpe, spm or tiktoken)")

    def normalize(self, text: str) -> str:
        """The text as the tokenizer sees it: its normalizer applied, else the text itself."""
        return self._normalize(text) if self._normalize else text

    def encode(self, text: str) -> list:
        return self.encode_batch([text])[0]

    def encode_batch(self, texts) -> list:
        """encode for many texts, in parallel on all cores."""
        texts = [self.normalize(t) for t in texts]
        if self._joined is not None:
            return self._joined.encode_batch(texts)
        return self._encode_plain(texts)

    def encode_document(self, text: str, bos: bool = None) -> list:
        """A document as the model reads it: [BOS] + encode(text), or the ids alone when the tokenizer was
        made without BOS input (bos_input=False: its first token is then only context). bos overrides."""
        return self.encode_documents([text], bos)[0]

    def encode_documents(self, texts, bos: bool = None) -> list:
        """encode_document for many texts in one parallel call (through encode_flat)."""
        skip = 0 if (self.bos_input if bos is None else bos) else 1
        ids, lengths = self.encode_flat(texts)
        flat, ends = ids.tolist(), np.cumsum(lengths).tolist()
        return [flat[end - n + skip:end] for end, n in zip(ends, lengths.tolist())]

    def encode_flat(self, texts) -> tuple:
        """Many documents as one array, the layout of a token bin: (ids, lengths) with ids = [BOS d1 BOS
        d2 ...] (uint32) and lengths[i] the tokens of document i, its BOS included. The BOS is there
        whatever bos_input says: in a bin it marks where a document starts (a tokenizer without one, as a
        SentencePiece model may be, has 0 there, which encode_documents(bos=False) drops). A document
        longer than bpe_fast.PIECE_CHARS is encoded in pieces (split_long), which gives the ids of the whole."""
        texts = [self.normalize(t) for t in texts]
        bos = self.bos_id if self.bos_id is not None else 0
        if self._joined is not None:
            return self._joined.encode_flat(texts, bos)
        pieces = [split_long(t) for t in texts]
        encoded = iter(self._encode_plain(list(itertools.chain.from_iterable(pieces))))
        docs = [[bos] + list(itertools.chain.from_iterable(next(encoded) for _ in parts)) for parts in pieces]
        lengths = np.array([len(d) for d in docs], np.int64)
        return np.fromiter(itertools.chain.from_iterable(docs), np.uint32, int(lengths.sum())), lengths

    def _encode_plain(self, texts: list) -> list:
        """Normalized texts -> ids by `tokenizers` (in parallel, no offsets) or by SentencePiece."""
        if self.inner is not None:
            return self.inner.encode_batch(texts)
        return [e.ids for e in self._hf.encode_batch_fast(texts, add_special_tokens=False)]

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids]
        if self.inner is not None:
            return self.inner.decode(ids)
        return self._hf.decode(ids, skip_special_tokens=False)

    def special_names(self) -> tuple:
        """The text of the BOS, EOS and padding tokens (None for one it lacks): <s> </s> <pad>, except in a
        SentencePiece model that names them otherwise."""
        if self.inner is not None:
            return self.inner.special_names()
        ids = (self.bos_id, self.eos_id, self.pad_id)
        return tuple(None if i is None else name for i, name in zip(ids, SPECIAL_TOKENS))

    @property
    def end_ids(self) -> tuple:
        """Training puts BOS before every document and no EOS after it, so a model ends a document by
        starting the next one: generation stops at either."""
        return (self.eos_id, self.bos_id)

    def to_dict(self) -> dict:
        return {"backend": self.backend, "blob": base64.b64encode(self.blob).decode("ascii"), "sha256": self.sha256,
                "bos_input": self.bos_input}

    @staticmethod
    def from_dict(d: dict) -> "Tokenizer":
        return Tokenizer(d["backend"], base64.b64decode(d["blob"]), d.get("bos_input", True))


def hf_normalizer(name: str):
    """The `tokenizers` normalizer object for a NORMALIZERS name (None for "none")."""
    from tokenizers import normalizers
    if name == "nfd_lower_strip":
        return normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase(), normalizers.Strip()])
    return None


def normalizer_function(name: str):
    """text -> text as a tokenizer with this NORMALIZERS normalizer sees it (None for "none")."""
    normalizer = hf_normalizer(name)
    return make_normalize(normalizer, name) if normalizer is not None else None


def make_normalize(normalizer, name: str):
    """text -> normalizer.normalize_str(text), the `tokenizers` normalizer itself. For the card's
    NFD -> Lowercase -> Strip, ASCII text takes a shortcut that is the same function there (NFD leaves
    ASCII as it is; Lowercase maps A-Z; Strip removes the ASCII White_Space characters), several times
    faster than a call into `tokenizers`, which tracks offsets that we do not need."""
    slow = normalizer.normalize_str
    if name != "nfd_lower_strip":
        return slow

    def normalize(text: str) -> str:
        return text.lower().strip(" \t\n\v\f\r") if text.isascii() else slow(text)
    return normalize


def load_tokenizer(path: str) -> Tokenizer:
    """Load from a data folder (meta.json names the tokenizer file, its backend and sha256, and says
    bos_input) or a tokenizer file (tokenizer.json -> bpe, *.model -> spm, *.tiktoken -> tiktoken), which
    says nothing of BOS: it is taken to put BOS first."""
    bos_input = True
    if os.path.isdir(path):
        meta_path = os.path.join(path, "meta.json")
        if not os.path.isfile(meta_path):
            raise SystemExit(f"{path}: no meta.json (not a folder written by tokenize_data.py)")
        try:
            with open(meta_path, encoding="utf-8") as f:
                meta = json.load(f)
            info = meta["tokenizer"]
            file = os.path.join(path, info["file"])
            bos_input = bool(meta.get("bos_input", True))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SystemExit(f"{meta_path}: no readable tokenizer entry ({type(e).__name__}: {str(e)[:120]})")
        if not os.path.isfile(file):
            raise SystemExit(f"{file}: missing (meta.json names it as the data's tokenizer)")
        with open(file, "rb") as f:
            blob = f.read()
        if hashlib.sha256(blob).hexdigest() != info["sha256"]:
            raise SystemExit(f"{file}: its sha256 differs from the one in meta.json (changed after tokenization?)")
        backend, path = info["backend"], file
    else:
        if not os.path.isfile(path):
            raise SystemExit(f"{path}: no such tokenizer file or data folder")
        backend = {".json": "bpe", ".model": "spm", ".tiktoken": "tiktoken"}.get(os.path.splitext(path)[1])
        if backend is None:
            raise SystemExit(f"{path}: not a tokenizer file (.json for bpe, .model for spm, .tiktoken) or data folder")
        with open(path, "rb") as f:
            blob = f.read()
    try:
        return Tokenizer(backend, blob, bos_input)
    except Exception as e:
        raise SystemExit(f"{path}: not a readable {backend} tokenizer ({type(e).__name__}: {str(e)[:200]})")


def train_tokenizer(texts: list, backend: str, vocab_size: int, spm_model_type: str = "bpe",
                    spm_character_coverage: float = 0.9995, normalize: str = "none", recipe: str = "ours",
                    bos_input: bool = True) -> Tokenizer:
    """Train a tokenizer on a list of documents. bpe, by one of two recipes:
      ours          <s> </s> <pad> are ids 0-2 and all 256 bytes come next, so any text encodes and decodes
                    exactly; a merge needs a pair seen at least twice; vocab_size counts everything.
      model_a_card  the Model A card's trainer (BpeTrainer with its defaults): the alphabet is the characters
                    of the data, merges go down to pairs seen once, and vocab_size counts those tokens alone,
                    so its ids are the card's. The bytes the data lacks and <s> </s> <pad> come after them,
                    so that any text still encodes.
    spm: SentencePiece, lossless too (tokenizer_backends.train_spm)."""
    if backend == "spm":
        from tokenizer_backends import train_spm
        blob = train_spm(texts, vocab_size, spm_model_type, spm_character_coverage, SPECIAL_TOKENS)
        return Tokenizer("spm", blob, bos_input)
    if backend != "bpe":
        raise SystemExit(f"--backend {backend}: only bpe and spm are trained here; tiktoken needs --tokenizer FILE")
    from tokenizers import Tokenizer as HFTokenizer, decoders, models, pre_tokenizers, trainers
    tok = HFTokenizer(models.BPE())
    if normalize != "none":
        tok.normalizer = hf_normalizer(normalize)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    if recipe == "ours":
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), min_frequency=2)
    else:
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False)
    tok.train_from_iterator(texts, trainer, length=len(texts))
    spec = json.loads(tok.to_str())
    if recipe != "ours":  # the bytes the data lacked, then the special tokens, after the card's ids
        vocab = spec["model"]["vocab"]
        for c in sorted(pre_tokenizers.ByteLevel.alphabet()):  # the library returns them in no fixed order
            vocab.setdefault(c, len(vocab))
        spec["added_tokens"] = [
            {"id": len(vocab) + k, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True} for k, t in enumerate(SPECIAL_TOKENS)]
    return Tokenizer("bpe", json.dumps(spec, ensure_ascii=False).encode("utf-8"), bos_input)
