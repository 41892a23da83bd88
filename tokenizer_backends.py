"""
The tokenizers other than our ByteLevel BPE: SentencePiece models and OpenAI's .tiktoken files, each
with its conversion to a tokenizer.json for export.

    python tokenize_data.py --backend spm --out data/spm                         # trains one (train_spm)
    python tokenize_data.py --backend tiktoken --tokenizer cl100k_base --out data/cl100k

You do not call this file to use such a tokenizer: tokenizer.load_tokenizer and Tokenizer.from_dict open
a data folder or checkpoint of any backend, and a Tokenizer whose backend is "spm" or "tiktoken" holds one
of the classes below (`tokenizer.inner`) and hands it its encoding and decoding. The common part (BOS,
documents, the bin layout, to_dict) stays in tokenizer.py, so these classes only encode and decode.
That is why this file imports nothing from tokenizer.py: tokenizer.py imports it (only when a tokenizer
of these backends is opened), and the other way round would be a cycle. The data command
(tokenize_data.py) and the exporter (hf_tokenizer.py, for export_hf.py) use the rest of it.

  spm       SentencePiece BPE or unigram with byte fallback (the original LLaMA tokenizer's design).
            Lossless except for U+2581 "▁", which SentencePiece uses for the space and decodes as one.
  tiktoken  one of OpenAI's .tiktoken files (r50k_base, p50k_base, cl100k_base, o200k_base), read
            locally and recognised by its sha256 (nothing is downloaded); <s> </s> <pad> are added
            after its last id. Encoded by bpe_fast.JoinedEncoder, as our BPE is.

Export (hf_tokenizer.tokenizer_files): spm_tokenizer_json and tiktoken_tokenizer_json build the
tokenizer.json that gives the same ids in Transformers; tests/test_export_hf.py checks both.
"""

import base64
import hashlib
import os
import re
import struct

from bpe_fast import PIECE_CHARS, JoinedEncoder, bytes_to_unicode


class SentencePiece:
    """A SentencePiece model (the blob is its .model file): ids, encode_batch, decode, special_names."""

    def __init__(self, blob: bytes):
        import sentencepiece
        self.sp = sentencepiece.SentencePieceProcessor(model_proto=blob)
        self.vocab_size = self.sp.get_piece_size()
        if self.vocab_size == 0:  # sentencepiece takes any bytes and is then an empty model
            raise ValueError("not a SentencePiece model")
        # SentencePiece says -1 for a special token the model does not have (the original LLaMA's pad)
        self.bos_id, self.eos_id, self.pad_id = (i if i >= 0 else None for i in
                                                 (self.sp.bos_id(), self.sp.eos_id(), self.sp.pad_id()))
        self.joined = None  # no faster encoder: tokenizer.py cuts long documents and glues the pieces

    def encode_batch(self, texts: list) -> list:
        return self.sp.encode(texts, num_threads=os.cpu_count() or 1)

    def decode(self, ids: list) -> str:
        return self.sp.decode(ids)

    def special_names(self) -> tuple:
        """The model's own names for BOS, EOS and padding (None for one it lacks)."""
        return tuple(None if i is None else self.sp.id_to_piece(i) for i in (self.bos_id, self.eos_id, self.pad_id))


def train_spm(texts: list, vocab_size: int, model_type: str, character_coverage: float, special_tokens) -> bytes:
    """SentencePiece (Kudo & Richardson 2018), BPE or unigram (Kudo 2018), with byte fallback, identity
    normalization and no dummy prefix, so that it is lossless; special_tokens (BOS, EOS, padding) are ids
    0-2 and <unk> is 3. Returns the .model file's bytes."""
    import io
    import sentencepiece
    model = io.BytesIO()
    bos, eos, pad = special_tokens
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_writer=model, model_type=model_type, vocab_size=vocab_size,
            byte_fallback=True, character_coverage=character_coverage, normalization_rule_name="identity",
            add_dummy_prefix=False, remove_extra_whitespaces=False, allow_whitespace_only_pieces=True,
            bos_id=0, eos_id=1, pad_id=2, unk_id=3, bos_piece=bos, eos_piece=eos, pad_piece=pad,
            unk_piece="<unk>", max_sentence_length=4 * PIECE_CHARS, input_sentence_size=0,
            num_threads=os.cpu_count() or 1, minloglevel=2)
    except RuntimeError as e:  # e.g. "Vocabulary size is smaller than required_chars"
        raise SystemExit(f"sentencepiece: {str(e).splitlines()[0][-200:]}")
    return model.getvalue()


# -----------------------------------------------------------------------------
# OpenAI's .tiktoken files

_R50K = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
_URL = "https://openaipublic.blob.core.windows.net/encodings/"
# sha256 of each file -> its name, URL, split pattern and special tokens: tiktoken_ext/openai_public.py
# (tiktoken 0.14) says the same, but only inside functions that download the file
TIKTOKEN_FILES = {
    "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930": {
        "name": "r50k_base", "url": _URL + "r50k_base.tiktoken", "pat_str": _R50K,
        "special_tokens": {"<|endoftext|>": 50256}},
    "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069": {
        "name": "p50k_base", "url": _URL + "p50k_base.tiktoken", "pat_str": _R50K,
        "special_tokens": {"<|endoftext|>": 50256}},
    "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7": {
        "name": "cl100k_base", "url": _URL + "cl100k_base.tiktoken",
        "pat_str": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|"""
                   r"""\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
        "special_tokens": {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                           "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}},
    "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d": {
        "name": "o200k_base", "url": _URL + "o200k_base.tiktoken",
        "pat_str": "|".join([
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""", r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""", r"""\s*[\r\n]+""", r"""\s+(?!\S)""", r"""\s+"""]),
        "special_tokens": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}},
}


class TiktokenFile:
    """One of OpenAI's .tiktoken files (the blob), with added_tokens (<s> </s> <pad>) after its last id."""

    def __init__(self, blob: bytes, added_tokens):
        known = TIKTOKEN_FILES.get(hashlib.sha256(blob).hexdigest())
        if known is None:
            names = ", ".join(sorted(k["name"] for k in TIKTOKEN_FILES.values()))
            raise ValueError(f"not one of the OpenAI tiktoken files ({names}); sha256 "
                             f"{hashlib.sha256(blob).hexdigest()[:16]}...")
        self.ranks = read_tiktoken_ranks(blob)
        self.pattern = known["pat_str"]
        first = max(max(self.ranks.values()), max(known["special_tokens"].values(), default=-1)) + 1
        self.bos_id, self.eos_id, self.pad_id = first, first + 1, first + 2
        self.vocab_size = first + 3
        self.added_tokens = tuple(added_tokens)
        # the file's own special tokens and ours: decoded, never matched in text
        self.special_tokens = {**known["special_tokens"], **dict(zip(self.added_tokens, (first, first + 1, first + 2)))}
        self.joined = JoinedEncoder(known["name"], self.pattern, self.ranks, self.special_tokens, self.vocab_size)

    def encode_batch(self, texts: list) -> list:
        return self.joined.encode_batch(texts)

    def decode(self, ids: list) -> str:
        return self.joined.decode(ids)

    def special_names(self) -> tuple:
        return self.added_tokens


def read_tiktoken_ranks(blob: bytes) -> dict:
    """A .tiktoken file (one "base64(token bytes) rank" per line) -> {token bytes: rank}."""
    ranks = {}
    for line in blob.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def find_tiktoken_file(name_or_path: str) -> str:
    """A local .tiktoken file: the path itself, or for an encoding name (cl100k_base) the copy in tiktoken's
    download cache. Nothing is downloaded; a clear error says where to get the file."""
    if os.path.isfile(name_or_path):
        return name_or_path
    by_name = {k["name"]: k for k in TIKTOKEN_FILES.values()}
    if name_or_path in by_name:
        url = by_name[name_or_path]["url"]
        import tempfile
        cache = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR") or \
            os.path.join(tempfile.gettempdir(), "data-gym-cache")
        cached = os.path.join(cache, hashlib.sha1(url.encode()).hexdigest())  # tiktoken's cache file name
        if os.path.isfile(cached):
            return cached
        raise SystemExit(f"{name_or_path}: no local copy (looked in {cache}); download {url} where there is "
                         f"internet and pass --tokenizer path/to/{name_or_path}.tiktoken")
    raise SystemExit(f"{name_or_path}: no such .tiktoken file (or encoding name: {', '.join(sorted(by_name))})")


# -----------------------------------------------------------------------------
# Export: the same ids as a tokenizer.json


def added_token(content: str, i: int) -> dict:
    return {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True}


def tiktoken_tokenizer_json(tiktoken_file: TiktokenFile) -> dict:
    """A tiktoken vocabulary as a tokenizer.json (the conversion Transformers itself uses for tiktoken
    models): its split pattern, then bytes as ByteLevel characters; a BPE whose merges are every split of
    every token into two tokens, ordered by the rank of the token they make, and ignore_merges, so that a
    piece that is one token stays one, as tiktoken does. Then `tokenizers`' BPE makes, step by step, the
    lowest-ranked token it can, which is tiktoken's rule."""
    table = bytes_to_unicode()
    ranks = tiktoken_file.ranks
    as_text = {t: "".join(table[b] for b in t) for t in ranks}
    merges = sorted(((ranks[t], ranks[t[:i]], ranks[t[i:]]), as_text[t[:i]], as_text[t[i:]])
                    for t in ranks for i in range(1, len(t)) if t[:i] in ranks and t[i:] in ranks)
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added_token(t, i) for t, i in sorted(tiktoken_file.special_tokens.items(), key=lambda x: x[1])],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": onig_pattern(tiktoken_file.pattern)}, "behavior": "Isolated",
             "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": {as_text[t]: r for t, r in sorted(ranks.items(), key=lambda x: x[1])},
                  "merges": [[a, b] for _, a, b in merges]},
    }


def onig_pattern(pattern: str) -> str:
    """tiktoken's split pattern as `tokenizers` (Oniguruma, Ruby syntax) reads it the same way: without
    possessive quantifiers (in Ruby syntax {1,3}+ repeats a repeat; in these patterns each possessive one
    matches where its greedy form does), and with $ as \\z, the end of the text (Ruby's $ also matches
    before a newline, tiktoken's does not)."""
    return re.sub(r"([+*?]|\{\d+(?:,\d*)?\})\+", r"\1", pattern).replace("$", r"\z")


SPM_TYPES = {1: "normal", 2: "unknown", 3: "control", 4: "user_defined", 5: "unused", 6: "byte"}


def spm_tokenizer_json(blob: bytes) -> dict:
    """A SentencePiece model (its .model bytes) as a tokenizer.json (as Transformers' own converter builds
    one for LLaMA): the space becomes "▁" (after a "▁" in front of the text when the model adds a dummy
    prefix), then
    - BPE: every split of every piece into two pieces is a merge, ordered by the piece's score, so that
      `tokenizers`' BPE, like SentencePiece's, joins the pair that makes the best-scored piece first;
    - unigram: the pieces with their scores, for the same best segmentation (Viterbi);
    with byte fallback for characters that are not pieces. Control, unknown and byte pieces are added
    tokens, never matched in text, as in SentencePiece. Only models that leave text as it is (identity
    normalization, whitespace kept: ours, and the original LLaMA's) are converted."""
    spec = read_spm_model(blob)
    norm, model_type = spec["normalizer"], spec["model_type"]
    if norm["name"] != "identity" or norm["remove_extra_whitespaces"] or not norm["escape_whitespaces"] \
            or any(kind == 4 for _, _, kind in spec["pieces"]) or model_type not in (1, 2):
        raise SystemExit(f"SentencePiece model (normalization {norm['name']!r}, remove_extra_whitespaces "
                         f"{norm['remove_extra_whitespaces']}, model type {model_type}) cannot be exported: only "
                         f"BPE or unigram models with identity normalization that keep whitespace can")
    pieces = [(piece, score, SPM_TYPES.get(kind, "normal")) for piece, score, kind in spec["pieces"]]
    normal = {p: i for i, (p, _, kind) in enumerate(pieces) if kind in ("normal", "unused")}
    special = [(p, i) for i, (p, _, kind) in enumerate(pieces) if kind in ("unknown", "control")]
    unk = next((i for p, i in special if pieces[i][2] == "unknown"), None)
    steps = ([{"type": "Prepend", "prepend": "▁"}] if norm["add_dummy_prefix"] else []) + \
        [{"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]
    decoder = [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
               {"type": "Fuse"}] + ([{"type": "Strip", "content": " ", "start": 1, "stop": 0}]
                                    if norm["add_dummy_prefix"] else [])
    if model_type == 2:
        merges = sorted(((-pieces[normal[p]][1], normal[p[:i]], normal[p[i:]]), p[:i], p[i:])
                        for p in normal for i in range(1, len(p)) if p[:i] in normal and p[i:] in normal)
        model = {"type": "BPE", "dropout": None, "unk_token": pieces[unk][0] if unk is not None else None,
                 "continuing_subword_prefix": None, "end_of_word_suffix": None, "fuse_unk": True,
                 "byte_fallback": spec["byte_fallback"], "ignore_merges": False,
                 "vocab": {p: i for i, (p, _, _) in enumerate(pieces)}, "merges": [[a, b] for _, a, b in merges]}
    else:  # pieces SentencePiece never matches in text: control and unknown ones get a name no normalized
        # text holds (it has no " "; the added token keeps the real name), byte pieces a score no segmentation
        # of text that has other pieces would choose
        lowest = min(score for _, score, kind in pieces if kind == "normal")
        model = {"type": "Unigram", "unk_id": unk, "byte_fallback": spec["byte_fallback"],
                 "vocab": [[p, score] if kind == "normal" else [p, lowest - 1e6] if kind == "byte" else [p + " ", 0.0]
                           for p, score, kind in pieces]}
    return {"version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [added_token(p, i) for p, i in special],
            "normalizer": {"type": "Sequence", "normalizers": steps}, "pre_tokenizer": None,
            "post_processor": None, "decoder": {"type": "Sequence", "decoders": decoder}, "model": model}


def read_spm_model(blob: bytes) -> dict:
    """The parts of a SentencePiece ModelProto (sentencepiece_model.proto) the conversion needs, read from
    the protobuf wire format directly (sentencepiece's own reader needs the protobuf package): the pieces
    (piece, score, type), the trainer's model_type and byte_fallback, the normalizer's settings."""

    def fields(buf):
        at = 0
        while at < len(buf):
            key, at = varint(buf, at)
            number, wire = key >> 3, key & 7
            if wire == 0:
                value, at = varint(buf, at)
            elif wire == 1:
                value, at = buf[at:at + 8], at + 8
            elif wire == 2:
                size, at = varint(buf, at)
                value, at = buf[at:at + size], at + size
            elif wire == 5:
                value, at = buf[at:at + 4], at + 4
            else:
                raise ValueError(f"protobuf wire type {wire}")
            yield number, value

    def varint(buf, at):
        value, shift = 0, 0
        while True:
            b = buf[at]
            value |= (b & 0x7F) << shift
            at, shift = at + 1, shift + 7
            if b < 0x80:
                return value, at

    spec = {"pieces": [], "model_type": 1, "byte_fallback": False,  # the proto's defaults
            "normalizer": {"name": "", "add_dummy_prefix": True, "remove_extra_whitespaces": True,
                           "escape_whitespaces": True}}
    for number, value in fields(blob):
        if number == 1:  # SentencePiece: piece = 1, score = 2, type = 3 (NORMAL by default)
            piece = {1: b"", 2: struct.pack("<f", 0.0), 3: 1} | dict(fields(value))
            spec["pieces"].append((piece[1].decode("utf-8"), struct.unpack("<f", piece[2])[0], piece[3]))
        elif number == 2:  # TrainerSpec: model_type = 3, byte_fallback = 35
            trainer = dict(fields(value))
            spec["model_type"] = trainer.get(3, 1)
            spec["byte_fallback"] = bool(trainer.get(35, 0))
        elif number == 3:  # NormalizerSpec: name = 1, add_dummy_prefix = 3, remove_extra_whitespaces = 4, ...
            norm = dict(fields(value))
            spec["normalizer"] = {"name": norm.get(1, b"").decode("utf-8"),
                                  "add_dummy_prefix": bool(norm.get(3, 1)),
                                  "remove_extra_whitespaces": bool(norm.get(4, 1)),
                                  "escape_whitespaces": bool(norm.get(5, 1))}
    return spec
