"""
The same ids, faster: tiktoken encodes a ByteLevel BPE with exactly the ids `tokenizers` gives.

    encoder, why_not = encoder_for_bpe(json.loads(tokenizer_json), vocab_size)  # None (and why) when it would differ
    ids, lengths = encoder.encode_flat(texts, bos_id)                 # [BOS d1 BOS d2 ...], as a bin holds

tokenizer.py uses this when it can, the way eval_blimp.py scores with prefix trees: the numbers are
the plain ones, and tests/test_tokenizer.py checks that on every line of the shared corpora (English,
Dutch, Chinese). tokenizer_backends.py uses the same encoder for OpenAI's own .tiktoken files.

Why it is the same. A ByteLevel BPE is the same object as a tiktoken encoding: its tokens are byte
strings, its ids are merge ranks and its pre-tokenizer is GPT-2's split pattern. tiktoken merges, at
each step, the adjacent pair whose joined bytes have the lowest id; `tokenizers` the pair that comes
first in its merge list. These agree when every merge makes a new token whose id grows with the
merge's place in the list, which is true of a trained BPE; `tiktoken_ranks_from_bpe` checks that and
the rest of the shape, and says why not for a tokenizer of any other shape.

Why it is faster. tiktoken's BPE is several times faster per byte, and many documents go through it in
few calls: they are joined with separators that tiktoken treats as special tokens (DOC_MARK between
documents, PIECE_MARK between the pieces of a long one), so it ends one text and starts the next exactly
as separate calls would; large inputs are cut into parts encoded on all cores (tiktoken releases the GIL).
"""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# GPT-2's split pattern, as `tokenizers`' ByteLevel pre-tokenizer writes it (tiktoken's r50k_base is the same)
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
PIECE_CHARS = 65_536  # documents longer than this are encoded in pieces (split_long)
# Special tokens that split a joined text where documents and the pieces of a long document meet.
# U+FFFF is a noncharacter; a text that holds it is encoded on its own.
DOC_MARK, PIECE_MARK = "\uffff<doc>\uffff", "\uffff<piece>\uffff"
JOINED_CHARS = 1 << 20  # characters per tiktoken call when many documents are encoded on several threads


def split_long(text: str, limit: int = PIECE_CHARS) -> list:
    """Cut a very long document into pieces of at most `limit` characters (a BPE's time grows with the
    square of a word's length, and SentencePiece refuses long sentences). Each cut is made at a space that
    is followed by a non-space where there is one: every backend starts a new token there (the GPT-2
    pattern's " word", SentencePiece's "▁word"), so the pieces encode exactly as the whole would. Without
    such a space (e.g. a long run of Chinese), the cut falls at the limit. Every encoder cuts the same way,
    so the ids never depend on which one ran."""
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
    the same ids, or (None, None, why not). Besides merges in id order (module docstring), the pre-tokenizer
    must be GPT-2's pattern over bytes, every byte must be a token, and no added token other than the
    specials may be matched in text (tokenizer.py keeps a literal <s> as text)."""
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


def encoder_for_bpe(spec: dict, vocab_size: int) -> tuple:
    """(JoinedEncoder, "") for a bpe tokenizer.json (parsed) that tiktoken encodes with the same ids,
    or (None, why not)."""
    ranks, pattern, why_not = tiktoken_ranks_from_bpe(spec)
    if ranks is None:
        return None, why_not
    return JoinedEncoder("bpe", pattern, ranks, {}, vocab_size), ""


class JoinedEncoder:
    """A tiktoken.Encoding over `ranks` (with `specials` for decode), which encodes many documents in few
    calls. The marks get ids vocab_size and vocab_size + 1, which no real token has."""

    def __init__(self, name: str, pattern: str, ranks: dict, specials: dict, vocab_size: int):
        import tiktoken
        # built in memory, not through tiktoken's registry of named encodings (which downloads files)
        self.enc = tiktoken.Encoding(name, pat_str=pattern, mergeable_ranks=ranks,
                                     special_tokens={**specials, DOC_MARK: vocab_size, PIECE_MARK: vocab_size + 1})
        self.doc_id, self.piece_id = vocab_size, vocab_size + 1
        self.threads = os.cpu_count() or 1

    def encode_batch(self, texts: list) -> list:
        ids, lengths = self.encode_flat(texts, self.doc_id, pieces=False)
        flat, ends = ids.tolist(), np.cumsum(lengths).tolist()
        return [flat[end - n + 1:end] for end, n in zip(ends, lengths.tolist())]

    def encode_flat(self, texts: list, bos_id: int, pieces: bool = True) -> tuple:
        """(ids, lengths) with ids = [BOS d1 BOS d2 ...] (uint32) and lengths[i] the tokens of document i,
        its BOS included; a document longer than PIECE_CHARS is encoded in pieces (split_long)."""
        parts, size = [[]], 0
        for text in texts:
            if size > JOINED_CHARS:
                parts.append([])
                size = 0
            parts[-1].append(text)
            size += len(text)
        if len(parts) > 1 and self.threads > 1:
            with ThreadPoolExecutor(self.threads) as pool:
                done = list(pool.map(lambda p: self._encode_part(p, bos_id, pieces), parts))
        else:
            done = [self._encode_part(p, bos_id, pieces) for p in parts]
        return np.concatenate([d[0] for d in done]), np.concatenate([d[1] for d in done])

    def _encode_part(self, texts: list, bos_id: int, pieces: bool) -> tuple:
        if any("\uffff" in t for t in texts):  # a text that could hold a mark: encode one at a time
            ids = [np.array([self.doc_id], np.uint32)]
            for t in texts:
                parts = split_long(t) if pieces and len(t) > PIECE_CHARS else [t]
                ids += [self.enc.encode_to_numpy(p, disallowed_special=()) for p in parts]
                ids.append(np.array([self.doc_id], np.uint32))
            ids = np.concatenate(ids)[:-1]
        else:
            joined = DOC_MARK + DOC_MARK.join(
                PIECE_MARK.join(split_long(t)) if pieces and len(t) > PIECE_CHARS else t for t in texts)
            ids = self.enc.encode_to_numpy(joined, allowed_special={DOC_MARK, PIECE_MARK}, disallowed_special=())
            if pieces and any(len(t) > PIECE_CHARS for t in texts):
                ids = ids[ids != self.piece_id]
        ids = ids if ids.flags.writeable else ids.copy()  # tiktoken's buffer is read-only
        starts = np.flatnonzero(ids == self.doc_id)
        ids[starts] = bos_id
        return ids, np.diff(np.append(starts, len(ids))).astype(np.int64)

    def decode(self, ids: list) -> str:
        return self.enc.decode_bytes(ids).decode("utf-8", errors="replace")
