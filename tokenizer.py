"""
The tokenizer: one interface over three backends, and the one place that decides where BOS goes.

    from tokenizer import load_tokenizer
    tok = load_tokenizer("data/model_a")          # a data folder, or tokenizer.json / .model / .tiktoken
    ids = tok.encode_document("The cat sat.")     # [BOS] + ids: a document as training sees it
    text = tok.decode(ids[1:])

Backends:
  bpe       Hugging Face `tokenizers` ByteLevel BPE (GPT-2's byte-level scheme): lossless on any text.
  spm       SentencePiece BPE or unigram with byte fallback (the original LLaMA tokenizer's design).
  tiktoken  one of OpenAI's .tiktoken files, read locally (nothing is downloaded).

BOS. Training puts <s> before every document and no </s> after it (tokenize_data.py writes
[BOS d1 BOS d2 ...]); a sentence is scored given that <s> (eval_blimp.py); generation starts from
it and stops at the next one (`end_ids`). `encode_document` is where that rule lives.
"""

import base64
import hashlib
import itertools
import json
import os

SPECIAL_TOKENS = ["<s>", "</s>", "<pad>"]  # BOS, EOS, padding: ids 0, 1, 2 for the bpe and spm backends
PIECE_CHARS = 65_536  # documents longer than this are encoded in pieces (see split_long)

class Tokenizer:
    """One interface over the tokenizer backends. Every backend gives:

    encode(text) -> list[int]        plain text to ids, no special tokens added, lossless
    encode_batch(texts) -> list[list[int]]   the same for many texts, in parallel on all cores
    decode(ids) -> str               decode(encode(t)) == t
    vocab_size, bos_id, eos_id, pad_id
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

    def __init__(self, backend: str, blob: bytes):
        self.backend = backend
        self.blob = blob
        self.sha256 = hashlib.sha256(blob).hexdigest()
        self._threads = os.cpu_count() or 1
        if backend == "bpe":
            from tokenizers import Tokenizer as HFTokenizer
            self._tok = HFTokenizer.from_str(blob.decode("utf-8"))
            # literal "<s>" in a text is text, not a BOS token: keeps encode lossless
            self._tok.encode_special_tokens = True
            self.vocab_size = self._tok.get_vocab_size()
            self.bos_id, self.eos_id, self.pad_id = (self._tok.token_to_id(t) for t in SPECIAL_TOKENS)
        elif backend == "spm":
            import sentencepiece
            self._sp = sentencepiece.SentencePieceProcessor(model_proto=blob)
            self.vocab_size = self._sp.get_piece_size()
            self.bos_id, self.eos_id, self.pad_id = self._sp.bos_id(), self._sp.eos_id(), self._sp.pad_id()
        elif backend == "tiktoken":
            import tiktoken
            known = _tiktoken_known().get(self.sha256)
            if known is None:
                names = ", ".join(sorted({k["name"] for k in _tiktoken_known().values()}))
                raise ValueError(f"not one of the OpenAI tiktoken files ({names}); sha256 {self.sha256[:16]}...")
            ranks = {}
            for line in blob.splitlines():
                if line:
                    token, rank = line.split()
                    ranks[base64.b64decode(token)] = int(rank)
            specials = dict(known["special_tokens"])
            first = max(max(ranks.values()), max(specials.values(), default=-1)) + 1
            self.bos_id, self.eos_id, self.pad_id = first, first + 1, first + 2
            specials.update(zip(SPECIAL_TOKENS, (first, first + 1, first + 2)))
            self._enc = tiktoken.Encoding(known["name"], pat_str=known["pat_str"], mergeable_ranks=ranks,
                                          special_tokens=specials)
            self.vocab_size = first + 3
        else:
            raise ValueError(f"tokenizer: unknown backend {backend!r} (bpe, spm or tiktoken)")

    def encode(self, text: str) -> list:
        if self.backend == "bpe":
            return self._tok.encode(text, add_special_tokens=False).ids
        if self.backend == "spm":
            return self._sp.encode(text)
        return self._enc.encode_ordinary(text)

    def encode_batch(self, texts) -> list:
        texts = list(texts)
        if self.backend == "bpe":  # rayon threads inside `tokenizers`; no offsets computed
            return [e.ids for e in self._tok.encode_batch_fast(texts, add_special_tokens=False)]
        if self.backend == "spm":
            return self._sp.encode(texts, num_threads=self._threads)
        return self._enc.encode_ordinary_batch(texts, num_threads=self._threads)

    def encode_document(self, text: str, bos: bool = True) -> list:
        """A document as training sees it: [BOS] + encode(text). bos=False gives the ids alone
        (for a model trained without BOS, whose first token is then only context)."""
        return self.encode_documents([text], bos)[0]

    def encode_documents(self, texts, bos: bool = True) -> list:
        """encode_document for many texts in one parallel call; a text longer than PIECE_CHARS is
        encoded in pieces (split_long), which gives exactly the ids of the whole."""
        texts = list(texts)
        pieces, n_pieces = [], []
        for text in texts:
            parts = split_long(text) if len(text) > PIECE_CHARS else [text]
            pieces.extend(parts)
            n_pieces.append(len(parts))
        ids = self.encode_batch(pieces)
        if len(ids) != len(texts):  # glue the pieces of long documents back together
            at, joined = 0, []
            for n in n_pieces:
                joined.append(list(itertools.chain.from_iterable(ids[at:at + n])))
                at += n
            ids = joined
        return [[self.bos_id] + d for d in ids] if bos else ids

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids]
        if self.backend == "bpe":
            return self._tok.decode(ids, skip_special_tokens=False)
        if self.backend == "spm":
            return self._sp.decode(ids)
        return self._enc.decode_bytes(ids).decode("utf-8", errors="replace")

    @property
    def end_ids(self) -> tuple:
        """Training puts BOS before every document and no EOS after it, so a model ends a document by
        starting the next one: generation stops at either."""
        return (self.eos_id, self.bos_id)

    def to_dict(self) -> dict:
        return {"backend": self.backend, "blob": base64.b64encode(self.blob).decode("ascii"), "sha256": self.sha256}

    @staticmethod
    def from_dict(d: dict) -> "Tokenizer":
        return Tokenizer(d["backend"], base64.b64decode(d["blob"]))


TOKENIZER_FILES = {"bpe": "tokenizer.json", "spm": "tokenizer.model", "tiktoken": "tokenizer.tiktoken"}


def load_tokenizer(path: str) -> Tokenizer:
    """Load from a data folder (reads meta.json's tokenizer entry) or a tokenizer file
    (tokenizer.json -> bpe, *.model -> spm, *.tiktoken -> tiktoken)."""
    if os.path.isdir(path):
        meta_path = os.path.join(path, "meta.json")
        if not os.path.isfile(meta_path):
            raise SystemExit(f"{path}: no meta.json (not a folder written by tokenize_data.py)")
        try:
            with open(meta_path, encoding="utf-8") as f:
                info = json.load(f)["tokenizer"]
            file = os.path.join(path, info["file"])
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
        return Tokenizer(backend, blob)
    except Exception as e:
        raise SystemExit(f"{path}: not a readable {backend} tokenizer ({type(e).__name__}: {str(e)[:200]})")


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


def train_tokenizer(texts: list, backend: str, vocab_size: int, spm_model_type: str = "bpe",
                    spm_character_coverage: float = 0.9995) -> Tokenizer:
    """Train a tokenizer on a list of documents.

    bpe: byte-level BPE (Radford et al. 2019, GPT-2; Sennrich et al. 2016): text -> UTF-8 bytes, each byte shown
    as one printable character, split by the GPT-2 pattern (no prefix space, no normalizer), then merges learnt
    from pair counts. All 256 bytes are in the initial alphabet, so any text encodes and decodes exactly.
    spm: SentencePiece (Kudo & Richardson 2018), BPE or unigram (Kudo 2018) with byte fallback, identity
    normalization, no dummy prefix, so that it is lossless too.
    """
    if backend == "bpe":
        from tokenizers import Tokenizer as HFTokenizer, decoders, models, pre_tokenizers, processors, trainers
        tok = HFTokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), min_frequency=2)
        tok.train_from_iterator(texts, trainer, length=len(texts))
        # transformers' PreTrainedTokenizerFast(tokenizer_file=...) then puts BOS before a text, as training does;
        # our own encode() never adds special tokens.
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                           special_tokens=[("<s>", 0)])
        return Tokenizer("bpe", tok.to_str().encode("utf-8"))
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
        return Tokenizer("spm", model.getvalue())
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
