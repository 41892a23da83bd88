"""
The tokenizer: one interface over three backends, and the one place that decides where BOS goes.

    from tokenizer import load_tokenizer
    tok = load_tokenizer("data/model_a")          # a data folder, or tokenizer.json / .model / .tiktoken
    ids = tok.encode_document("The cat sat.")     # [BOS] + ids: a document as training sees it
    text = tok.decode(ids[1:])

Backends:
  bpe       Hugging Face `tokenizers` ByteLevel BPE (GPT-2's byte-level scheme): lossless on any text
            (unless it has a normalizer). Encoded by tiktoken where that gives the same ids (see below).
  spm       SentencePiece BPE or unigram with byte fallback (the original LLaMA tokenizer's design).
  tiktoken  one of OpenAI's .tiktoken files, read locally (nothing is downloaded).

BOS. By default training puts <s> before every document and no </s> after it (tokenize_data.py writes
[BOS d1 BOS d2 ...]); a sentence is scored given that <s> (eval_blimp.py); generation starts from it
and stops at the next one (`end_ids`). A tokenizer made with bos_input=False (the Model A card's way)
feeds a document without it: encode_document gives the ids alone. The bins keep the BOS between
documents either way, as the separator that tells where a document starts. `encode_document` is where
that rule lives; `bos_input` travels with the tokenizer (to_dict, meta.json, the export).

Normalizer. A bpe tokenizer may carry a `tokenizers` normalizer in its tokenizer.json (NORMALIZERS:
the card's NFD -> Lowercase -> Strip), which then applies wherever the tokenizer does: training,
eval_blimp.py, sample.py and a Transformers export, with no code of ours in between.

Encoding a bpe tokenizer by tiktoken. A ByteLevel BPE is the same object as a tiktoken encoding: its
tokens are byte strings, its ids are merge ranks and its pre-tokenizer is GPT-2's split pattern.
tiktoken's BPE is several times faster than `tokenizers`' per byte, so `Tokenizer` hands the vocabulary
to a tiktoken.Encoding built in memory (tiktoken_from_bpe) and encodes with it. The two agree where the
tokenizer has the shape checked there (byte-level pre-tokenizer with GPT-2's pattern, every byte in the
vocabulary, merges in id order, no other added tokens); tests/test_tokenizer.py checks every line of
the shared corpora, English, Dutch and Chinese. A tokenizer of any other shape is encoded by `tokenizers`
itself (`encoder_note` says why). A normalizer is applied first in Python (`normalize`), by the
normalizer object itself, so it is the same one.
"""

import base64
import hashlib
import itertools
import json
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

SPECIAL_TOKENS = ["<s>", "</s>", "<pad>"]  # BOS, EOS, padding: ids 0, 1, 2 for the bpe and spm backends
PIECE_CHARS = 65_536  # documents longer than this are encoded in pieces (see split_long)

# --normalize choices: name -> the `tokenizers` normalizers, in order (JSON as tokenizer.json stores them)
NORMALIZERS = {
    "none": None,
    "nfd_lower_strip": {"type": "Sequence", "normalizers": [  # the Model A card's (MODEL_A_CARD.md)
        {"type": "NFD"}, {"type": "Lowercase"}, {"type": "Strip", "strip_left": True, "strip_right": True}]},
}
# GPT-2's split pattern, as `tokenizers`' ByteLevel pre-tokenizer writes it (tiktoken's r50k_base is the same)
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# Separators for encoding many documents in one tiktoken call (see Tokenizer._encode_joined): special tokens
# that split the text where documents and the pieces of a long document meet. U+FFFF is a noncharacter.
DOC_MARK, PIECE_MARK = "\uffff<doc>\uffff", "\uffff<piece>\uffff"
JOINED_CHARS = 1 << 20  # characters per tiktoken call when many documents are encoded on several threads


class Tokenizer:
    """One interface over the tokenizer backends. Every backend gives:

    encode(text) -> list[int]        plain text to ids, no special tokens added, lossless
    encode_batch(texts) -> list[list[int]]   the same for many texts, in parallel on all cores
    encode_document(text), encode_documents(texts)   a document as the model reads it (BOS or not)
    encode_flat(texts) -> (ids, lengths)     [BOS d1 BOS d2 ...] as one uint32 array: what a bin holds
    decode(ids) -> str               decode(encode(t)) == t (without a normalizer)
    vocab_size, bos_id, eos_id, pad_id, bos_input
    end_ids                          the ids that end a generated document: (eos_id, bos_id)
    to_dict() / Tokenizer.from_dict(d): the tokenizer as plain data, stored inside checkpoints

    Backends (the blob is the tokenizer file's bytes, so the tokenizer travels with data and checkpoints):
      "bpe"       Hugging Face `tokenizers` ByteLevel BPE; the blob is a tokenizer.json that transformers'
                  PreTrainedTokenizerFast loads. Lossless for any text: every byte is in the vocabulary.
      "spm"       a SentencePiece model (BPE or unigram, byte fallback, no normalization). Lossless except
                  for the character U+2581 "▁", which SentencePiece uses for the space and decodes as one.
      "tiktoken"  an OpenAI .tiktoken file (r50k_base, p50k_base, cl100k_base, o200k_base), recognised by its
                  sha256; <s> </s> <pad> are added after its last id.
    """

    def __init__(self, backend: str, blob: bytes, bos_input: bool = True):
        self.backend = backend
        self.blob = blob
        self.sha256 = hashlib.sha256(blob).hexdigest()
        self.bos_input = bool(bos_input)
        self._threads = os.cpu_count() or 1
        self._enc = None           # a tiktoken.Encoding that encodes (bpe: when it gives the same ids)
        self._normalize = None     # text -> normalized text, or None
        self.normalizer = "none"   # its name in NORMALIZERS, or "other"
        self.encoder, self.encoder_note = backend, ""
        if backend == "bpe":
            from tokenizers import Tokenizer as HFTokenizer
            self._tok = HFTokenizer.from_str(blob.decode("utf-8"))
            # literal "<s>" in a text is text, not a BOS token: keeps encode lossless
            self._tok.encode_special_tokens = True
            self.vocab_size = self._tok.get_vocab_size()
            self.bos_id, self.eos_id, self.pad_id = (self._tok.token_to_id(t) for t in SPECIAL_TOKENS)
            spec = json.loads(blob)
            self._raw = self._tok  # encodes text that is normalized already
            if self._tok.normalizer is not None:
                self.normalizer = next((k for k, v in NORMALIZERS.items() if v == spec["normalizer"]), "other")
                self._normalize = make_normalize(self._tok.normalizer, self.normalizer)
                self._raw = HFTokenizer.from_str(blob.decode("utf-8"))
                self._raw.normalizer = None
                self._raw.encode_special_tokens = True
            ranks, pattern, self.encoder_note = tiktoken_ranks_from_bpe(spec)
            if ranks is not None:
                self._enc = _joined_encoding("bpe", pattern, ranks, {}, self.vocab_size)
                self.encoder = "tiktoken"
            else:
                self.encoder = "tokenizers"
        elif backend == "spm":
            import sentencepiece
            self._sp = sentencepiece.SentencePieceProcessor(model_proto=blob)
            self.vocab_size = self._sp.get_piece_size()
            if self.vocab_size == 0:  # sentencepiece takes any bytes and is then an empty model
                raise ValueError("not a SentencePiece model")
            # SentencePiece says -1 for a special token the model does not have (the original LLaMA's pad)
            self.bos_id, self.eos_id, self.pad_id = (i if i >= 0 else None for i in
                                                     (self._sp.bos_id(), self._sp.eos_id(), self._sp.pad_id()))
        elif backend == "tiktoken":
            known = _tiktoken_known().get(self.sha256)
            if known is None:
                names = ", ".join(sorted({k["name"] for k in _tiktoken_known().values()}))
                raise ValueError(f"not one of the OpenAI tiktoken files ({names}); sha256 {self.sha256[:16]}...")
            self.ranks = read_tiktoken_ranks(blob)
            self.pattern = known["pat_str"]
            self.openai_special_tokens = dict(known["special_tokens"])
            first = max(max(self.ranks.values()), max(self.openai_special_tokens.values(), default=-1)) + 1
            self.bos_id, self.eos_id, self.pad_id = first, first + 1, first + 2
            self.vocab_size = first + 3
            specials = {**self.openai_special_tokens, **dict(zip(SPECIAL_TOKENS, (first, first + 1, first + 2)))}
            self._enc = _joined_encoding(known["name"], known["pat_str"], self.ranks, specials, self.vocab_size)
        else:
            raise ValueError(f"tokenizer: unknown backend {backend!r} (bpe, spm or tiktoken)")

    def normalize(self, text: str) -> str:
        """The text as the tokenizer sees it: its normalizer applied (bpe), else the text itself."""
        return self._normalize(text) if self._normalize else text

    def encode(self, text: str) -> list:
        text = self.normalize(text)
        if self._enc is not None:
            return self._enc.encode_ordinary(text)
        if self.backend == "bpe":
            return self._raw.encode(text, add_special_tokens=False).ids
        return self._sp.encode(text)

    def encode_batch(self, texts) -> list:
        texts = [self.normalize(t) for t in texts]
        if self._enc is not None:
            ids, lengths = self._encode_joined(texts, pieces=False)
            return _split_lists(ids, lengths, 1)
        if self.backend == "bpe":  # rayon threads inside `tokenizers`; no offsets computed
            return [e.ids for e in self._raw.encode_batch_fast(texts, add_special_tokens=False)]
        return self._sp.encode(texts, num_threads=self._threads)

    def encode_document(self, text: str, bos: bool = None) -> list:
        """A document as the model reads it: [BOS] + encode(text), or the ids alone when the tokenizer was
        made without BOS input (bos_input=False: its first token is then only context). bos overrides."""
        return self.encode_documents([text], bos)[0]

    def encode_documents(self, texts, bos: bool = None) -> list:
        """encode_document for many texts in one parallel call; a text longer than PIECE_CHARS is
        encoded in pieces (split_long), which gives exactly the ids of the whole."""
        bos = self.bos_input if bos is None else bos
        ids, lengths = self.encode_flat(texts)
        return _split_lists(ids, lengths, 0 if bos else 1)

    def encode_flat(self, texts) -> tuple:
        """Many documents as one array, the layout of a token bin: (ids, lengths) with ids = [BOS d1 BOS
        d2 ...] (uint32) and lengths[i] the tokens of document i, its BOS included. The BOS is there
        whatever bos_input says: in a bin it marks where a document starts (a tokenizer without one, as a
        SentencePiece model may be, has 0 there, which encode_documents(bos=False) drops)."""
        texts = [self.normalize(t) for t in texts]
        if self._enc is not None:
            return self._encode_joined(texts, pieces=True)
        pieces, n_pieces = [], []
        for text in texts:
            parts = split_long(text) if len(text) > PIECE_CHARS else [text]
            pieces.extend(parts)
            n_pieces.append(len(parts))
        if self.backend == "bpe":
            encoded = [e.ids for e in self._raw.encode_batch_fast(pieces, add_special_tokens=False)]
        else:
            encoded = self._sp.encode(pieces, num_threads=self._threads)
        lengths = np.empty(len(texts), np.int64)
        flat, at = [], 0
        bos = self.bos_id if self.bos_id is not None else 0
        for k, n in enumerate(n_pieces):  # glue the pieces of long documents back together
            flat.append((bos,))
            flat.extend(encoded[at:at + n])
            lengths[k] = 1 + sum(len(p) for p in encoded[at:at + n])
            at += n
        return np.fromiter(itertools.chain.from_iterable(flat), np.uint32, int(lengths.sum())), lengths

    def _encode_joined(self, texts: list, pieces: bool) -> tuple:
        """(ids, lengths) as encode_flat gives them, through tiktoken in few calls: the documents are joined
        with DOC_MARK (and a long one's split_long pieces with PIECE_MARK), special tokens at which tiktoken
        ends one text and starts the next exactly as separate calls would. Large inputs are cut into parts
        of about JOINED_CHARS characters, encoded on all cores (tiktoken releases the GIL)."""
        parts, size = [[]], 0
        for text in texts:
            if size > JOINED_CHARS:
                parts.append([])
                size = 0
            parts[-1].append(text)
            size += len(text)
        if len(parts) > 1 and self._threads > 1:
            with ThreadPoolExecutor(self._threads) as pool:
                done = list(pool.map(lambda p: self._encode_joined_part(p, pieces), parts))
        else:
            done = [self._encode_joined_part(p, pieces) for p in parts]
        return np.concatenate([d[0] for d in done]), np.concatenate([d[1] for d in done])

    def _encode_joined_part(self, texts: list, pieces: bool) -> tuple:
        doc_id, piece_id = self.vocab_size, self.vocab_size + 1  # the marks' ids: no real token has them
        if any("\uffff" in t for t in texts):  # a text that could hold a mark: encode one at a time
            ids = [np.array([doc_id], np.uint32)]
            for t in texts:
                parts = split_long(t) if pieces and len(t) > PIECE_CHARS else [t]
                ids += [self._enc.encode_to_numpy(p, disallowed_special=()) for p in parts]
                ids.append(np.array([doc_id], np.uint32))
            ids = np.concatenate(ids)[:-1]
        else:
            joined = DOC_MARK + DOC_MARK.join(
                PIECE_MARK.join(split_long(t)) if pieces and len(t) > PIECE_CHARS else t for t in texts)
            ids = self._enc.encode_to_numpy(joined, allowed_special=MARKS, disallowed_special=())
            if pieces and any(len(t) > PIECE_CHARS for t in texts):
                ids = ids[ids != piece_id]
        ids = ids if ids.flags.writeable else ids.copy()  # tiktoken's buffer is read-only
        starts = np.flatnonzero(ids == doc_id)
        ids[starts] = self.bos_id if self.bos_id is not None else 0
        return ids, np.diff(np.append(starts, len(ids))).astype(np.int64)

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids]
        if self.backend == "bpe":
            return self._tok.decode(ids, skip_special_tokens=False)
        if self.backend == "spm":
            return self._sp.decode(ids)
        return self._enc.decode_bytes(ids).decode("utf-8", errors="replace")

    def special_names(self) -> tuple:
        """The text of the BOS, EOS and padding tokens (None for one it lacks): <s> </s> <pad>, except in a
        SentencePiece model that names them otherwise."""
        if self.backend == "spm":
            ids = (self.bos_id, self.eos_id, self.pad_id)
            return tuple(None if i is None else self._sp.id_to_piece(i) for i in ids)
        return tuple(None if i is None else name for i, name in zip((self.bos_id, self.eos_id, self.pad_id),
                                                                     SPECIAL_TOKENS))

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


MARKS = frozenset((DOC_MARK, PIECE_MARK))


def _joined_encoding(name: str, pattern: str, ranks: dict, specials: dict, vocab_size: int):
    """A tiktoken.Encoding over ranks that also knows DOC_MARK and PIECE_MARK (ids vocab_size and vocab_size
    + 1, which no real token has) and the given special tokens (for decode)."""
    import tiktoken
    return tiktoken.Encoding(name, pat_str=pattern, mergeable_ranks=ranks,
                             special_tokens={**specials, DOC_MARK: vocab_size, PIECE_MARK: vocab_size + 1})


def _split_lists(ids: np.ndarray, lengths: np.ndarray, skip: int) -> list:
    """[BOS d1 BOS d2 ...] -> [[BOS] + d1, [BOS] + d2, ...] (skip=0) or [d1, d2, ...] (skip=1)."""
    flat = ids.tolist()
    ends = np.cumsum(lengths).tolist()
    return [flat[end - n + skip:end] for end, n in zip(ends, lengths.tolist())]


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


# -----------------------------------------------------------------------------
# Byte-level BPE <-> tiktoken


def bytes_to_unicode() -> dict:
    """GPT-2's table from byte to the printable character that stands for it in a ByteLevel vocabulary:
    printable Latin-1 bytes stand for themselves, the others get the characters from U+0100 on."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {b: chr(b) for b in printable}, 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def tiktoken_ranks_from_bpe(spec: dict) -> tuple:
    """A bpe tokenizer.json (parsed) -> (mergeable ranks, split pattern, "") for a tiktoken.Encoding that gives
    the same ids, or (None, None, why not). tiktoken merges, at each step, the adjacent pair whose joined bytes
    have the lowest id; `tokenizers` the pair that comes first in its merge list. These agree when every merge
    makes a new token whose id grows with the merge's place in the list (true of a trained BPE); the
    pre-tokenizer must be GPT-2's pattern over bytes, every byte must be a token, and no added token other than
    the specials may be matched in text (encode_special_tokens keeps <s> as text)."""
    model, pre = spec.get("model") or {}, spec.get("pre_tokenizer") or {}
    if model.get("type") != "BPE":
        return None, None, "not a BPE model"
    for key in ("dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix"):
        if model.get(key):
            return None, None, f"the BPE model has {key} {model[key]!r}"
    if model.get("byte_fallback") or model.get("ignore_merges"):
        return None, None, "the BPE model has byte_fallback or ignore_merges"
    if not (pre.get("type") == "ByteLevel" and pre.get("use_regex", True) and not pre.get("add_prefix_space")):
        return None, None, "the pre-tokenizer is not ByteLevel with GPT-2's pattern and no prefix space"
    specials = {a["content"]: a["id"] for a in spec.get("added_tokens", [])}
    if not all(a.get("special") for a in spec.get("added_tokens", [])):
        return None, None, "it has added tokens that are not special (matched in text)"
    to_byte = {c: b for b, c in bytes_to_unicode().items()}
    ranks = {}
    for token, i in model["vocab"].items():
        if specials.get(token) == i:
            continue
        if any(c not in to_byte for c in token):
            return None, None, f"vocabulary entry {token!r} is not byte-level"
        ranks[bytes(to_byte[c] for c in token)] = i
    if len(ranks) < len(model["vocab"]) - len(specials) or sum(len(t) == 1 for t in ranks) < 256:
        return None, None, "not every byte is a token, or two entries are the same bytes"
    merged = [a + b for a, b in (m.split(" ", 1) if isinstance(m, str) else m for m in model["merges"])]
    ids = [model["vocab"].get(t) for t in merged]
    if any(t in specials for t in merged) or not all(i is not None for i in ids) or \
            any(a >= b for a, b in zip(ids, ids[1:])):
        return None, None, "its merges do not make new tokens in id order"
    return ranks, GPT2_PATTERN, ""


def read_tiktoken_ranks(blob: bytes) -> dict:
    """A .tiktoken file (one "base64(token bytes) rank" per line) -> {token bytes: rank}."""
    ranks = {}
    for line in blob.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


TOKENIZER_FILES = {"bpe": "tokenizer.json", "spm": "tokenizer.model", "tiktoken": "tokenizer.tiktoken"}


def load_tokenizer(path: str) -> Tokenizer:
    """Load from a data folder (reads meta.json's tokenizer entry and bos_input) or a tokenizer file
    (tokenizer.json -> bpe, *.model -> spm, *.tiktoken -> tiktoken). A bpe tokenizer.json written by
    train_tokenizer says in its post-processor whether a document starts with BOS; other files do not,
    and are taken to put BOS first."""
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
        if backend == "bpe":
            bos_input = bos_in_post_processor(blob, default=True)
    try:
        return Tokenizer(backend, blob, bos_input)
    except Exception as e:
        raise SystemExit(f"{path}: not a readable {backend} tokenizer ({type(e).__name__}: {str(e)[:200]})")


def document_template(bos_input: bool) -> dict:
    """tokenizers' TemplateProcessing for one document (and a pair), as JSON: "<s> $A" when a document
    starts with BOS, "$A" when it does not. Transformers 4.x and 5.x apply tokenizer.json's post-processor
    as it is, so this is what makes AutoTokenizer(text) give encode_document(text)."""
    bos = [{"SpecialToken": {"id": "<s>", "type_id": 0}}] if bos_input else []
    bos_b = [{"SpecialToken": {"id": "<s>", "type_id": 1}}] if bos_input else []
    return {"type": "TemplateProcessing",
            "single": bos + [{"Sequence": {"id": "A", "type_id": 0}}],
            "pair": bos + [{"Sequence": {"id": "A", "type_id": 0}}] + bos_b + [{"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {}}


def with_document_template(spec: dict, bos_input: bool) -> dict:
    """A bpe tokenizer.json (parsed) with document_template(bos_input) as its post-processor."""
    template = document_template(bos_input)
    if bos_input:
        bos_id = next(a["id"] for a in spec["added_tokens"] if a["content"] == "<s>")
        template["special_tokens"] = {"<s>": {"id": "<s>", "ids": [bos_id], "tokens": ["<s>"]}}
    return {**spec, "post_processor": template}


def with_bos_input(tokenizer: Tokenizer, bos_input: bool) -> Tokenizer:
    """The same tokenizer (the same ids) with documents read with or without BOS; a bpe tokenizer.json says
    so in its post-processor (document_template)."""
    blob = tokenizer.blob
    if tokenizer.backend == "bpe":
        blob = json.dumps(with_document_template(json.loads(blob), bos_input), ensure_ascii=False).encode("utf-8")
    return Tokenizer(tokenizer.backend, blob, bos_input)


def bos_in_post_processor(blob: bytes, default: bool):
    """Whether a tokenizer.json's TemplateProcessing (alone or last in a Sequence) starts a text with <s>;
    default when it has none."""
    pp = json.loads(blob).get("post_processor") or {}
    if pp.get("type") == "Sequence" and pp.get("processors"):
        pp = pp["processors"][-1]
    if pp.get("type") != "TemplateProcessing":
        return default
    first = pp["single"][0] if pp.get("single") else {}
    return first.get("SpecialToken", {}).get("id") == "<s>"


_TIKTOKEN_KNOWN = None


def _tiktoken_known() -> dict:
    """sha256 of each OpenAI .tiktoken file -> its name, URL, split pattern and special tokens, read from
    tiktoken's own registry (tiktoken_ext.openai_public) with its file loader stubbed out: nothing is downloaded."""
    global _TIKTOKEN_KNOWN
    if _TIKTOKEN_KNOWN is None:
        from unittest import mock
        import tiktoken_ext.openai_public as public
        known = {}
        for name, make in public.ENCODING_CONSTRUCTORS.items():
            seen = []
            stub = lambda url, expected_hash=None, seen=seen: seen.append((url, expected_hash)) or {0: 0}
            try:
                with mock.patch.object(public, "load_tiktoken_bpe", stub), \
                        mock.patch.object(public, "data_gym_to_mergeable_bpe_ranks", None):
                    spec = make()
            except Exception:  # gpt2 ships in another format (vocab.bpe + encoder.json): not supported
                continue
            for url, sha in seen:
                known.setdefault(sha, {"name": name, "url": url, "pat_str": spec["pat_str"],
                                       "special_tokens": spec["special_tokens"]})
        _TIKTOKEN_KNOWN = known
    return _TIKTOKEN_KNOWN


def find_tiktoken_file(name_or_path: str) -> str:
    """A local .tiktoken file: the path itself, or for an encoding name (cl100k_base) the copy in tiktoken's
    download cache. Nothing is downloaded; a clear error says where to get the file."""
    if os.path.isfile(name_or_path):
        return name_or_path
    by_name = {k["name"]: k for k in _tiktoken_known().values()}
    if name_or_path in by_name:
        url = by_name[name_or_path]["url"]
        import tempfile
        cache = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR") or \
            os.path.join(tempfile.gettempdir(), "data-gym-cache")
        cached = os.path.join(cache, hashlib.sha1(url.encode()).hexdigest())
        if os.path.isfile(cached):
            return cached
        raise SystemExit(f"{name_or_path}: no local copy (looked in {cache}); download {url} where there is "
                         f"internet and pass --tokenizer path/to/{name_or_path}.tiktoken")
    raise SystemExit(f"{name_or_path}: no such .tiktoken file (or encoding name: {', '.join(sorted(by_name))})")


# -----------------------------------------------------------------------------
# Training


BPE_RECIPES = ("ours", "model_a_card")


def train_tokenizer(texts: list, backend: str, vocab_size: int, spm_model_type: str = "bpe",
                    spm_character_coverage: float = 0.9995, normalize: str = "none", recipe: str = "ours",
                    bos_input: bool = True) -> Tokenizer:
    """Train a tokenizer on a list of documents.

    bpe: byte-level BPE (Radford et al. 2019, GPT-2; Sennrich et al. 2016): text -> (normalizer ->) UTF-8
    bytes, each byte shown as one printable character, split by the GPT-2 pattern (no prefix space), then
    merges learnt from pair counts. Two recipes:
      ours          <s> </s> <pad> are ids 0-2 and all 256 bytes come next, so any text encodes and decodes
                    exactly; a merge needs a pair seen at least twice; vocab_size counts everything.
      model_a_card  the Model A card's trainer (BpeTrainer with its defaults): the alphabet is the characters
                    of the data, merges go down to pairs seen once, and vocab_size counts those tokens alone,
                    so its ids are the card's. The bytes the data lacks and <s> </s> <pad> come after them,
                    so that any text still encodes.
    spm: SentencePiece (Kudo & Richardson 2018), BPE or unigram (Kudo 2018) with byte fallback, identity
    normalization, no dummy prefix, so that it is lossless too.
    """
    if backend == "bpe":
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
        # transformers' PreTrainedTokenizerFast(tokenizer_file=...) then puts BOS before a text when training
        # does (and not when it does not); our own encode() never adds special tokens.
        spec = with_document_template(spec, bos_input)
        return Tokenizer("bpe", json.dumps(spec, ensure_ascii=False).encode("utf-8"), bos_input)
    if backend == "spm":
        import io
        import sentencepiece
        model = io.BytesIO()
        try:
            sentencepiece.SentencePieceTrainer.train(
                sentence_iterator=iter(texts), model_writer=model, model_type=spm_model_type, vocab_size=vocab_size,
                byte_fallback=True, character_coverage=spm_character_coverage, normalization_rule_name="identity",
                add_dummy_prefix=False, remove_extra_whitespaces=False, allow_whitespace_only_pieces=True,
                bos_id=0, eos_id=1, pad_id=2, unk_id=3, bos_piece="<s>", eos_piece="</s>", pad_piece="<pad>",
                unk_piece="<unk>", max_sentence_length=4 * PIECE_CHARS, input_sentence_size=0,
                num_threads=os.cpu_count() or 1, minloglevel=2)
        except RuntimeError as e:  # e.g. "Vocabulary size is smaller than required_chars"
            raise SystemExit(f"sentencepiece: {str(e).splitlines()[0][-200:]}")
        return Tokenizer("spm", model.getvalue(), bos_input)
    raise SystemExit(f"--backend {backend}: only bpe and spm are trained here; tiktoken needs --tokenizer FILE")


def split_long(text: str, limit: int = PIECE_CHARS) -> list:
    """Cut a very long document into pieces of at most `limit` characters. Each cut is made at a space that
    is followed by a non-space where there is one: all three backends start a new token there (the GPT-2
    pattern's " word", SentencePiece's "▁word"), so the pieces encode exactly as the whole would. Without
    such a space (e.g. a long run of Chinese), the cut falls at the limit."""
    pieces, start = [], 0
    while len(text) - start > limit:
        cut = text.rfind(" ", start + 1, start + limit)
        while cut > start and text[cut + 1].isspace():
            cut = text.rfind(" ", start + 1, cut)
        cut = cut if cut > start else start + limit
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces
