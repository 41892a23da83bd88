"""
Turn raw text into what train.py and the mixer read: a tokenizer and per-language token bins.

    python tokenize_data.py --corpus ../shared/data/corpora --out data/eng_nld_zho   # eng+nld+zho, one shared BPE
    python tokenize_data.py --corpus ../shared/data/corpora --out data/model_a --model-a  # 2 MB of English
    python tokenize_data.py --corpus ../shared/data/corpora --out data/nld --languages nld --tokenizer data/eng_nld_zho
    python tokenize_data.py --corpus ../shared/data/corpora --out data/b1m --budget 1M --unit eng_bytes

Input: a corpus folder with one sub-folder per language (en/ nl/ zh/, or eng/ nld/ zho/), each holding
UTF-8 text files (.txt, .train, .dev, optionally .gz), one document per line. Every file is a "source".

What happens, in order (each step is one function below):
  1. scan      read every line once and keep a few numbers per document (bytes, words, a hash of the text;
               never the text itself); bad UTF-8, CRLF, empty and huge lines are reported.
  2. hold out  a document goes to validation when the hash of its text falls below --val-fraction: the
               split does not depend on the seed, the budget or the other files, so validation loss is
               comparable across runs.
  3. select    the training documents within a per-language budget (bytes, words, tokens or English-
               equivalent bytes), either at random (--mode random) or round-robin over the sources with
               equal amounts per source (--mode round_robin, Model A). A budget larger than the data fails.
  4. tokenizer train a ByteLevel BPE (or SentencePiece) on a language-balanced sample of the selected
               documents, or reuse one (--tokenizer), or load a local tiktoken file.
  5. encode    stream the selected documents through the tokenizer in parallel batches, writing
               [BOS d1 BOS d2 ...] to <lang>/train.bin and <lang>/val.bin; then meta.json.
Everything is written to a temporary folder that is renamed to --out at the end, so a failure leaves
nothing behind, and an existing --out is only replaced with --force.

Output (the README's "Data layout"):  <out>/meta.json, <out>/tokenizer.json (or .model / .tiktoken),
<out>/<lang>/train.bin, <out>/<lang>/val.bin  -- read with np.memmap(path, dtype=meta["dtype"], mode="r").
"""

import argparse
import array
import collections
import csv
import gzip
import hashlib
import heapq
import itertools
import json
import os
import shlex
import shutil
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Optional

import numpy as np

from tokenizer import PIECE_CHARS, TOKENIZER_FILES, Tokenizer, find_tiktoken_file, load_tokenizer, split_long, train_tokenizer


# Language folders and what we need to know about each language. To add one, add a line to each dict.
LANGUAGE_FOLDERS = {"en": "eng", "eng": "eng", "nl": "nld", "nld": "nld", "zh": "zho", "zho": "zho"}
BYTE_PREMIUM_KEYS = {"eng": "eng_latn", "nld": "nld_latn", "zho": "zho_hans"}  # rows of the byte-premium table
BYTE_PREMIUM_TABLE = "byte_coefs_20240233.tsv"  # the BabyBabelLM pipeline's table (../shared/data/byte_premium)
HAN_WORDS = {"zho"}  # written without spaces: each Han character counts as one word (see count_words)

TEXT_SUFFIXES = (".txt", ".train", ".dev")  # each may also end in .gz
LONG_LINE_BYTES = 1_000_000  # lines longer than this are reported (and still kept as one document)
BATCH_CHARS = 1 << 16        # characters per parallel encoding call (more only costs memory: ~3 bytes each in Chinese)
GATHER_DOCS = 1 << 16        # documents per block when a token budget picks from the encoded candidates


# -----------------------------------------------------------------------------
# Configuration


@dataclass
class DataConfig:
    corpus: str = "../shared/data/corpora"
    out: str = "data/eng_nld_zho"
    languages: Optional[str] = None     # "eng,nld" (folder names or ISO 639-3); None = every language folder
    sources: Optional[str] = None       # "ud_ewt,commonvoice_en": file names without .txt/.gz; None = all files
    # tokenizer
    backend: str = "bpe"                # bpe | spm | tiktoken
    tokenizer: Optional[str] = None     # reuse: a data folder or tokenizer file (tiktoken: file or encoding name)
    vocab_size: int = 16000
    spm_model_type: str = "bpe"         # bpe | unigram
    spm_character_coverage: float = 0.9995
    tokenizer_sample: str = "3M"        # per language, in English-equivalent bytes (or bytes, see balance)
    tokenizer_balance: str = "eng_bytes"  # eng_bytes: equal bytes after the byte premium | bytes: equal bytes
    # what goes into train.bin
    budget: Optional[str] = None        # "2M" for every language, or "eng=2M,nld=1.5M"; None = all the data
    unit: str = "bytes"                 # bytes | words | tokens | eng_bytes (bytes / byte premium)
    mode: str = "random"                # random | round_robin (equal amounts per source)
    seed: int = 1337                    # which documents a budget takes
    # held-out split (by documents, from a hash of their text)
    val_fraction: float = 0.05
    val_docs: Optional[int] = None      # a fixed number of validation documents per language instead
    val_seed: int = 0
    # input handling
    on_bad_utf8: str = "fail"           # fail | skip
    byte_premium_table: Optional[str] = None  # default: <corpus>/../byte_premium/ or ../shared/data/byte_premium/
    force: bool = False


def parse_args(argv) -> tuple:
    """Command line -> (DataConfig, set of the options given explicitly). Every DataConfig field is a flag
    (--vocab-size for vocab_size); --model-a and --total-bytes are shorthands for a few of them."""
    p = argparse.ArgumentParser(description="Tokenize a corpus into per-language token bins (see the docstring).")
    defaults = DataConfig()
    for f in fields(DataConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type is bool:
            p.add_argument(flag, action="store_true")
        elif f.name == "out":
            p.add_argument(flag, required=True, help="the data folder to write (must not exist, unless --force)")
        else:
            kind = int if f.type in (int, Optional[int]) else float if f.type in (float, Optional[float]) else str
            p.add_argument(flag, type=kind, default=None, help=f"default: {getattr(defaults, f.name)}")
    p.add_argument("--total-bytes", type=str, default=None, help="one language: --budget N --unit bytes")
    p.add_argument("--model-a", action="store_true",
                   help="Model A: --languages eng --mode round_robin --budget 2000000 --unit bytes")
    given = {k: v for k, v in vars(p.parse_args(argv)).items() if v is not None and v is not False}
    if given.pop("model_a", False):
        for k, v in {"languages": "eng", "mode": "round_robin", "budget": "2000000", "unit": "bytes"}.items():
            given.setdefault(k, v)
    total = given.pop("total_bytes", None)
    if total is not None:
        if "budget" in given or given.get("unit", "bytes") != "bytes":
            raise SystemExit("--total-bytes: give either --total-bytes or --budget/--unit, not both")
        given.update(budget=total, unit="bytes")
    cfg = DataConfig(**given)
    choices = {"backend": ("bpe", "spm", "tiktoken"), "spm_model_type": ("bpe", "unigram"),
               "tokenizer_balance": ("eng_bytes", "bytes"), "unit": ("bytes", "words", "tokens", "eng_bytes"),
               "mode": ("random", "round_robin"), "on_bad_utf8": ("fail", "skip")}
    for k, allowed in choices.items():
        if getattr(cfg, k) not in allowed:
            raise SystemExit(f"--{k.replace('_', '-')} {getattr(cfg, k)}: expected one of {', '.join(allowed)}")
    if not 0 <= cfg.val_fraction < 1:
        raise SystemExit(f"--val-fraction {cfg.val_fraction}: expected a number in [0, 1)")
    explicit = set(given) | ({"total_bytes"} if total is not None else set())
    return cfg, explicit


def parse_amount(text: str, what: str) -> float:
    """'2M' -> 2e6, '500k' -> 5e5, '1.5G' -> 1.5e9, '2000000' -> 2e6 (decimal prefixes, as in '2 MB')."""
    t = text.strip().upper().rstrip("B")
    scale = {"K": 1e3, "M": 1e6, "G": 1e9}.get(t[-1:], 1.0)
    try:
        value = float(t[:-1] if scale != 1.0 else t) * scale
    except ValueError:
        raise SystemExit(f"{what} {text!r}: not an amount (examples: 2000000, 2M, 500K)")
    if value <= 0:
        raise SystemExit(f"{what} {text!r}: must be positive")
    return value


def parse_budget(text: Optional[str], langs: list) -> dict:
    """'2M' -> the same budget for every language; 'eng=2M,nl=1M' -> per language (others: all their data)."""
    if text is None:
        return {}
    if "=" not in text:
        return {lang: parse_amount(text, "--budget") for lang in langs}
    budgets = {}
    for part in text.split(","):
        name, _, amount = part.partition("=")
        lang = LANGUAGE_FOLDERS.get(name.strip())
        if lang not in langs:
            raise SystemExit(f"--budget {text}: {name.strip()!r} is not one of the languages ({', '.join(langs)})")
        budgets[lang] = parse_amount(amount, f"--budget {lang}=")
    return budgets


# -----------------------------------------------------------------------------
# 1. Sources and scanning


@dataclass
class Source:
    name: str   # file name without .gz and .txt: "ud_ewt", "childes.train"
    path: str
    rel: str    # "en/ud_ewt.txt.gz", as stored in meta.json


def find_sources(cfg: DataConfig) -> dict:
    """{lang: [Source, ...]} from the corpus folder's language sub-folders, files sorted by name."""
    corpus = cfg.corpus
    if not os.path.isdir(corpus):
        raise SystemExit(f"{corpus}: no such folder (expected a corpus folder with en/ nl/ zh/ sub-folders)")
    wanted = None
    if cfg.languages:
        wanted = []
        for name in cfg.languages.split(","):
            if name.strip() not in LANGUAGE_FOLDERS:
                raise SystemExit(f"--languages {cfg.languages}: unknown language {name.strip()!r} "
                                 f"(known: {', '.join(sorted(LANGUAGE_FOLDERS))})")
            wanted.append(LANGUAGE_FOLDERS[name.strip()])
    found = {}
    for entry in sorted(os.listdir(corpus)):
        path = os.path.join(corpus, entry)
        if not os.path.isdir(path):
            if entry.endswith(tuple(s + z for s in TEXT_SUFFIXES for z in ("", ".gz"))):
                raise SystemExit(f"{path}: text files go in a language sub-folder (en/, nl/, zh/ ...)")
            continue  # a README, SOURCES.md ...
        lang = LANGUAGE_FOLDERS.get(entry)
        if lang is None:
            if wanted is not None:
                continue  # only the languages asked for are read
            raise SystemExit(f"{path}: unknown language folder {entry!r} (known: {', '.join(sorted(LANGUAGE_FOLDERS))}"
                             f"; add it to LANGUAGE_FOLDERS in tokenize_data.py, or choose with --languages)")
        if wanted is not None and lang not in wanted:
            continue
        if lang in found:
            raise SystemExit(f"{path}: a second folder for {lang} (next to {os.path.dirname(found[lang][0].path)})")
        sources = []
        for name in sorted(os.listdir(path)):
            base = name[:-3] if name.endswith(".gz") else name
            if not base.endswith(TEXT_SUFFIXES) or not os.path.isfile(os.path.join(path, name)):
                print(f"{os.path.join(path, name)}: ignored (not a .txt, .train or .dev file)")
                continue
            source = base[:-4] if base.endswith(".txt") else base
            if any(s.name == source for s in sources):
                raise SystemExit(f"{os.path.join(path, name)}: a second file for source {source!r}")
            sources.append(Source(source, os.path.join(path, name), f"{entry}/{name}"))
        if not sources:
            raise SystemExit(f"{path}: no .txt, .txt.gz, .train or .dev files")
        found[lang] = sources
    if not found:
        raise SystemExit(f"{corpus}: no language folders (expected en/ nl/ zh/ or eng/ nld/ zho/ holding text files)")
    if wanted is not None:
        missing = [lang for lang in wanted if lang not in found]
        if missing:
            raise SystemExit(f"{corpus}: no folder for {', '.join(missing)}")
    if cfg.sources:
        names = [s.strip() for s in cfg.sources.split(",")]
        every = {s.name for ss in found.values() for s in ss}
        unknown = [n for n in names if n not in every]
        if unknown:
            raise SystemExit(f"--sources: {', '.join(unknown)} not found (sources: {', '.join(sorted(every))})")
        found = {lang: [s for s in ss if s.name in names] for lang, ss in found.items()}
        found = {lang: ss for lang, ss in found.items() if ss}
    return found


def read_lines(path: str):
    """Yield (line number, line bytes without its line end) for a plain or gzip'd file, streaming.
    A CRLF line end loses its CR as well; the caller is told through a trailing flag."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            for n, raw in enumerate(f, 1):
                if raw.endswith(b"\n"):
                    raw = raw[:-1]
                if raw.endswith(b"\r"):
                    yield n, raw[:-1], True
                else:
                    yield n, raw, False
    except (OSError, EOFError, zlib.error) as e:
        raise SystemExit(f"{path}: cannot read ({type(e).__name__}: {e})")


_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_HAN_WORDS = None


def count_words(text: str, lang: str) -> int:
    """Words as BabyLM counts them: whitespace-separated. Chinese has no spaces, so there every Han character
    is a word, and so is every run of other letters or digits (a Latin word, a number); punctuation is not."""
    if lang not in HAN_WORDS:
        return len(text.split())
    global _HAN_WORDS
    if _HAN_WORDS is None:
        import re
        _HAN_WORDS = re.compile(f"[{_HAN}]|[^\\W{_HAN}]+")
    return len(_HAN_WORDS.findall(text))


@dataclass
class Docs:
    """One language's documents (non-blank lines), in file order: document i is line line[i] of
    sources[src[i]]. Only numbers are kept, never the text, so memory stays small on large corpora."""
    lang: str
    sources: list
    src: np.ndarray     # (N,) index into sources
    line: np.ndarray    # (N,) line number in its file, from 1
    nbytes: np.ndarray  # (N,) UTF-8 bytes of the text (line end excluded)
    nwords: np.ndarray  # (N,) words (count_words)
    hash: np.ndarray    # (N,) uint64 hash of the text: decides the validation split and the sampling order
    skipped: dict       # {"empty": n, "bad_utf8": n}


def scan(lang: str, sources: list, on_bad_utf8: str) -> Docs:
    """Step 1: read every line once and keep its size, words and hash. Reports, per file, invalid UTF-8
    (fail, or skip with a count), CRLF line ends (the CR is dropped), blank lines (skipped), huge lines."""
    src, line, nbytes, nwords, hashes = (array.array(t) for t in "hiiiQ")  # int16, int32 x3, uint64: 22 B/doc
    skipped = {"empty": 0, "bad_utf8": 0}
    for s_index, source in enumerate(sources):
        n_docs, bad, crlf, empty, first_bad, long_lines = 0, 0, 0, 0, 0, []
        for n, raw, had_cr in read_lines(source.path):
            crlf += had_cr
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                if on_bad_utf8 == "fail":
                    raise SystemExit(f"{source.path}:{n}: invalid UTF-8 ({e.reason} at byte {e.start} of the line); "
                                     f"fix the file or pass --on-bad-utf8 skip")
                bad += 1
                first_bad = first_bad or n
                continue
            if n == 1 and text.startswith("\ufeff"):  # a byte-order mark is not text
                text, raw = text[1:], raw[3:]
            if not text.strip():
                empty += 1
                continue
            if len(raw) > LONG_LINE_BYTES:
                long_lines.append((n, len(raw)))
            src.append(s_index)
            line.append(n)
            nbytes.append(len(raw))
            nwords.append(count_words(text, lang))
            hashes.append(int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little"))
            n_docs += 1
        if bad:
            print(f"{source.path}: skipped {bad} line(s) with invalid UTF-8 (first: line {first_bad})")
        if crlf:
            print(f"{source.path}: {crlf} line(s) end in CRLF; the CR is dropped")
        for n, size in long_lines:
            print(f"{source.path}:{n}: a {size / 1e6:.1f} MB line; kept as one document, encoded in pieces")
        if n_docs == 0:
            print(f"{source.path}: no text (empty or only blank lines); skipped")
        skipped["empty"] += empty
        skipped["bad_utf8"] += bad
    columns = (np.frombuffer(a, dtype=a.typecode).copy() for a in (src, line, nbytes, nwords, hashes))
    docs = Docs(lang, sources, *columns, skipped)
    if len(docs.src) == 0:
        raise SystemExit(f"{os.path.dirname(sources[0].path)}: no text in any of its {len(sources)} file(s)")
    return docs


def iter_texts(docs: Docs, wanted: np.ndarray):
    """Yield (document index, text) for the documents where wanted is True, in file order, reading the files
    again (streaming). The lines were checked by scan(), so they decode."""
    for s_index, source in enumerate(docs.sources):
        index = np.flatnonzero(wanted & (docs.src == s_index))
        if len(index) == 0:
            continue
        lines = docs.line[index]
        k = 0
        for n, raw, _ in read_lines(source.path):
            if n == lines[k]:
                text = raw.decode("utf-8")
                yield int(index[k]), text[1:] if n == 1 and text.startswith("\ufeff") else text
                k += 1
                if k == len(index):
                    break


# -----------------------------------------------------------------------------
# 2-3. Held-out split, byte premium, budgets


def mix64(x: np.ndarray, seed: int) -> np.ndarray:
    """A keyed 64-bit hash of x: the splitmix64 finalizer (Steele, Lea & Flood 2014) of x + seed·φ.
    Turns the text hashes into an independent random order for each seed."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15) % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def hold_out(docs: Docs, val_fraction: float, val_docs: Optional[int], val_seed: int) -> np.ndarray:
    """Step 2: the validation documents (a boolean mask). A document is held out when its keyed text hash,
    read as a number in [0, 1), is below val_fraction (or is among the val_docs smallest), so the split depends
    only on the text: not on the budget, the training seed, or which other files are present. Duplicates of a
    held-out line are held out too, so none of them leaks into training."""
    key = mix64(docs.hash, val_seed)
    n = len(key)
    if val_docs is not None:
        if val_docs >= n:
            raise SystemExit(f"{docs.lang}: --val-docs {val_docs} but only {n} documents")
        val = np.zeros(n, bool)
        val[np.argsort(key, kind="stable")[:val_docs]] = True
    else:
        val = key < np.uint64(int(val_fraction * 2.0**64))  # key / 2^64 < val_fraction
        if val_fraction > 0 and not val.any() and n > 1:  # a small language still gets one
            val[np.argmin(key)] = True
    if val.all():
        raise SystemExit(f"{docs.lang}: no training documents left after holding out {int(val.sum())} for validation")
    return val


def read_byte_premium(path: str, langs: list, required: bool = True) -> dict:
    """{lang: byte premium} from a byte-premium table (Arnett, Chang & Bergen 2024, "A Bit of a Problem"):
    how many UTF-8 bytes the language needs for the content that English says in one byte.
    Reads either table in ../shared/data/byte_premium: byte_coefs_*.tsv (lang_script, byte_coef) or
    all_merged_*.tsv (lang, byte_coef_nllb, ...), preferring the NLLB-based coefficient.
    Not required (only recorded in meta.json): a missing table or language gives None."""
    if not os.path.isfile(path):
        if not required:
            return {lang: None for lang in langs}
        raise SystemExit(f"{path}: no byte-premium table (pass --byte-premium-table, or use --unit bytes "
                         f"and --tokenizer-balance bytes)")
    premium = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            key = row.get("lang_script") or row.get("lang")
            value = row.get("byte_coef_nllb") or row.get("byte_coef")
            if key and value:
                premium[key] = float(value)
    for lang in langs:
        if required and BYTE_PREMIUM_KEYS.get(lang) not in premium:
            raise SystemExit(f"{path}: no byte premium for {lang} ({BYTE_PREMIUM_KEYS.get(lang)})")
    return {lang: premium.get(BYTE_PREMIUM_KEYS.get(lang)) for lang in langs}


def select_random(size: np.ndarray, order_key: np.ndarray, pool: np.ndarray, budget: float) -> np.ndarray:
    """Step 3 (--mode random): the pool's documents in a random order (by order_key), taken until their sizes
    reach the budget; the last one may go past it by less than its own size."""
    index = np.flatnonzero(pool)
    index = index[np.argsort(order_key[index], kind="stable")]
    cum = np.cumsum(size[index], dtype=np.float64)
    take = int(np.searchsorted(cum, budget - 1e-9)) + 1  # first position where the running total reaches the budget
    chosen = np.zeros(len(size), bool)
    chosen[index[:take]] = True
    return chosen


def select_round_robin(size: np.ndarray, order_key: np.ndarray, pool: np.ndarray, src: np.ndarray,
                       n_sources: int, budget: float) -> tuple:
    """Step 3 (--mode round_robin): equal amounts from every source. Sources take turns, the one that has given
    the least so far gives its next document (in random order), until the total reaches the budget. Any two
    sources then differ by less than one document's size, unless one ran out, in which case it gives all it has
    and the others share the rest. Returns (chosen mask, indices of the sources that ran out)."""
    queues = []
    for s in range(n_sources):
        index = np.flatnonzero(pool & (src == s))
        queues.append(list(index[np.argsort(order_key[index], kind="stable")]))
    heap = [(0.0, s) for s in range(n_sources) if queues[s]]
    heapq.heapify(heap)
    pos = [0] * n_sources
    chosen = np.zeros(len(size), bool)
    total, exhausted = 0.0, []
    while total < budget - 1e-9 and heap:
        given, s = heapq.heappop(heap)
        i = queues[s][pos[s]]
        pos[s] += 1
        chosen[i] = True
        given += float(size[i])
        total += float(size[i])
        if pos[s] < len(queues[s]):
            heapq.heappush(heap, (given, s))
        else:
            exhausted.append(s)
    return chosen, exhausted


def select(docs: Docs, pool: np.ndarray, size: np.ndarray, budget: Optional[float], mode: str, seed: int,
           unit: str) -> np.ndarray:
    """Step 3: the training documents of one language, within its budget (None: the whole pool)."""
    if budget is None:
        return pool.copy()
    have = float(size[pool].sum())
    if budget > have:
        raise SystemExit(f"{docs.lang}: budget of {budget:,.0f} {unit} but only {have:,.0f} {unit} available for "
                         f"training ({int(pool.sum()):,} documents; {int(docs.nbytes.sum()):,} bytes in "
                         f"{len(docs.sources)} file(s) before holding out validation)")
    order_key = mix64(docs.hash, seed)
    if mode == "random":
        return select_random(size, order_key, pool, budget)
    chosen, exhausted = select_round_robin(size, order_key, pool, docs.src, len(docs.sources), budget)
    for s in exhausted:
        given = float(size[chosen & (docs.src == s)].sum())
        print(f"{docs.lang}: source {docs.sources[s].name} ran out after {given:,.0f} {unit} (all of its training "
              f"documents, less than an equal share of {budget / len(docs.sources):,.0f}); the others share the rest")
    return chosen


# -----------------------------------------------------------------------------
# 4-5. Tokenizer sample and encoding


def encode_documents(tokenizer: Tokenizer, texts: list, dtype) -> tuple:
    """Encode a batch of documents in one parallel call. Returns (tokens, lengths): tokens is
    [BOS d1 BOS d2 ...] as `dtype`, lengths[i] = the number of tokens of document i, its BOS included."""
    ids = tokenizer.encode_documents(texts)
    lengths = np.fromiter(map(len, ids), np.int64, len(ids))
    return np.fromiter(itertools.chain.from_iterable(ids), dtype, int(lengths.sum())), lengths


def encode_stream(tokenizer: Tokenizer, items, dtype, batch_chars: int = BATCH_CHARS, in_flight: int = 2):
    """Encode (key, text) items in parallel batches of about batch_chars characters. Yields (keys, tokens,
    lengths) per batch, in input order. Up to `in_flight` batches are encoded at once by worker threads: the
    tokenizer releases the GIL and uses every core, while the Python that turns a finished batch into numpy
    holds it, so a second batch in flight keeps the cores busy during that step. Memory holds in_flight + 1
    batches, whatever the corpus size."""
    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        pending = collections.deque()
        keys, texts, chars = [], [], 0
        for key, text in itertools.chain(items, [(None, None)]):
            if text is not None:
                keys.append(key)
                texts.append(text)
                chars += len(text)
            if texts and (chars >= batch_chars or text is None):
                pending.append((keys, pool.submit(encode_documents, tokenizer, texts, dtype)))
                keys, texts, chars = [], [], 0
                if len(pending) > in_flight:
                    done_keys, job = pending.popleft()
                    yield (done_keys, *job.result())
        while pending:
            done_keys, job = pending.popleft()
            yield (done_keys, *job.result())


def sample_for_tokenizer(docs: dict, pools: dict, premium: dict, cfg: DataConfig) -> tuple:
    """Step 4: a language-balanced sample to train the tokenizer on, so that Chinese and Dutch are not starved by
    English: the same number of English-equivalent bytes from every language (bytes / byte premium; or plain
    bytes with --tokenizer-balance bytes), at most --tokenizer-sample each, fewer when a language has less.
    Taken from the training documents only (never validation), in the seeded random order."""
    per_lang = parse_amount(cfg.tokenizer_sample, "--tokenizer-sample")
    scale = {lang: (premium[lang] if cfg.tokenizer_balance == "eng_bytes" and premium[lang] else 1.0) for lang in docs}
    have = {lang: float(d.nbytes[pools[lang]].sum()) / scale[lang] for lang, d in docs.items()}
    target = min(per_lang, *have.values())
    if target < per_lang and len(docs) > 1:
        short = min(have, key=have.get)
        print(f"tokenizer sample: {target / 1e6:.2f} MB per language ({cfg.tokenizer_balance}), limited by {short}")
    texts, info = [], {}
    for lang, d in docs.items():
        chosen = select_random(d.nbytes, mix64(d.hash, cfg.seed), pools[lang], target * scale[lang])
        info[lang] = {"documents": int(chosen.sum()), "bytes": int(d.nbytes[chosen].sum())}
        for _, text in iter_texts(d, chosen):
            texts.extend(split_long(text) if len(text) > PIECE_CHARS else [text])
    return texts, info


# -----------------------------------------------------------------------------
# Main


def as_number(x: float):
    return int(x) if float(x).is_integer() else x


def split_stats(docs: Docs, mask: np.ndarray, tokens: np.ndarray) -> dict:
    return {"tokens": int(tokens[mask].sum()), "bytes": int(docs.nbytes[mask].sum()),
            "words": int(docs.nwords[mask].sum()), "documents": int(mask.sum())}


def language_meta(d: Docs, train: np.ndarray, val: np.ndarray, tokens: np.ndarray, premium: Optional[float],
                  budget: Optional[dict]) -> dict:
    """meta.json's entry for one language. "tokens" count what is in the bin (a BOS per document included);
    tokens_per_byte and tokens_per_word (fertility) are of the training text alone, without the BOS."""
    tr, va = split_stats(d, train, tokens), split_stats(d, val, tokens)
    text_tokens = tr["tokens"] - tr["documents"]
    sources = {}
    for s, source in enumerate(d.sources):
        here = d.src == s
        entry = {"file": source.rel, "documents": int(here.sum()), "bytes": int(d.nbytes[here].sum())}
        for split, mask in (("train", train), ("val", val)):
            entry.update({f"{split}_{k}": v for k, v in split_stats(d, mask & here, tokens).items()})
        sources[source.name] = entry
    return {
        "byte_premium": premium,
        "word_unit": "Han character, or run of other letters/digits" if d.lang in HAN_WORDS else "whitespace-separated",
        "budget": budget,
        "train": tr, "val": va,
        "tokens_per_byte": round(text_tokens / max(tr["bytes"], 1), 6),
        "tokens_per_word": round(text_tokens / max(tr["words"], 1), 6),
        "skipped_lines": d.skipped,
        "sources": sources,
    }


def write_language(docs: Docs, train: np.ndarray, val: np.ndarray, tokenizer: Tokenizer, dtype, folder: str,
                   budget: Optional[float], cfg: DataConfig) -> tuple:
    """Step 5: encode one language's documents into folder/train.bin and folder/val.bin. With a budget in
    tokens, `train` is the pool of candidates: all are encoded into a scratch file, the budget picks among them
    (the token count of a document is only known once it is encoded), and the chosen ones are copied over.
    Returns (train mask, tokens per document incl. its BOS)."""
    os.makedirs(folder)
    by_tokens = cfg.unit == "tokens" and budget is not None
    tokens = np.zeros(len(docs.src), np.int64)
    dest = np.zeros(len(docs.src), np.int8)  # 0: not used, 1: train (or candidate), 2: validation
    dest[train] = 1
    dest[val] = 2
    paths = {1: os.path.join(folder, "candidates.bin" if by_tokens else "train.bin"),
             2: os.path.join(folder, "val.bin")}
    files = {code: open(path, "wb") for code, path in paths.items()}
    try:
        for keys, toks, lengths in encode_stream(tokenizer, iter_texts(docs, dest > 0), dtype):
            keys = np.asarray(keys)
            tokens[keys] = lengths
            where = np.repeat(dest[keys], lengths)
            for code, f in files.items():
                f.write(toks[where == code].tobytes())
    finally:
        for f in files.values():
            f.close()
    if by_tokens:  # choose by token counts, then copy the chosen documents (in file order) out of the scratch file
        chosen = select(docs, train, tokens, budget, cfg.mode, cfg.seed, "tokens")
        cand = np.flatnonzero(train)  # the scratch file holds these documents, in this order
        ends = np.cumsum(tokens[cand])
        scratch = np.memmap(paths[1], dtype=dtype, mode="r")
        with open(os.path.join(folder, "train.bin"), "wb") as f:
            for first in range(0, len(cand), GATHER_DOCS):  # a block of documents at a time: memory stays flat
                block = cand[first:first + GATHER_DOCS]
                start, end = ends[first] - tokens[block[0]], ends[first + len(block) - 1]
                keep = np.repeat(chosen[block], tokens[block])
                f.write(np.asarray(scratch[start:end])[keep].tobytes())
        del scratch
        os.remove(paths[1])
        train = chosen
    return train, tokens


def main(argv=None):
    t_start = time.time()
    argv = sys.argv[1:] if argv is None else list(argv)
    cfg, explicit = parse_args(argv)
    out = cfg.out.rstrip("/") or cfg.out
    if os.path.exists(out):
        if not os.path.isdir(out):
            raise SystemExit(f"{out}: exists and is not a folder")
        if not cfg.force:
            raise SystemExit(f"{out}: already exists (pass --force to replace it)")
        if os.path.isdir(out) and os.listdir(out) and not os.path.isfile(os.path.join(out, "meta.json")):
            raise SystemExit(f"{out}: not a data folder written by tokenize_data.py (no meta.json); not replacing it")

    found = find_sources(cfg)
    langs = list(found)
    if "total_bytes" in explicit and len(langs) != 1:
        raise SystemExit(f"--total-bytes is for one language; {len(langs)} found ({', '.join(langs)}): "
                         f"choose one with --languages, or use --budget")
    budgets = parse_budget(cfg.budget, langs)
    needs_premium = cfg.unit == "eng_bytes" or (cfg.tokenizer is None and cfg.tokenizer_balance == "eng_bytes"
                                                and len(langs) > 1)
    table = cfg.byte_premium_table
    if table is None:  # next to the corpus (../shared/data/{corpora,byte_premium}), else the repository's neighbour
        here = os.path.dirname(os.path.abspath(__file__))
        candidates = [os.path.join(cfg.corpus, "..", "byte_premium", BYTE_PREMIUM_TABLE),
                      os.path.join(here, "..", "shared", "data", "byte_premium", BYTE_PREMIUM_TABLE)]
        table = next((c for c in candidates if os.path.isfile(c)), candidates[0])
    premium = read_byte_premium(table, langs, required=needs_premium)

    # 1-3: scan, hold out, select (a budget in tokens is applied after encoding)
    docs, val, train, plan = {}, {}, {}, {}
    for lang in langs:
        d = docs[lang] = scan(lang, found[lang], cfg.on_bad_utf8)
        val[lang] = hold_out(d, cfg.val_fraction, cfg.val_docs, cfg.val_seed)
        pool = ~val[lang]
        budget = budgets.get(lang)
        if budget is not None and cfg.unit == "eng_bytes":
            budget = budget * premium[lang]  # English-equivalent bytes -> this language's bytes
        plan[lang] = budget
        if cfg.unit == "tokens" or budget is None:
            train[lang] = pool
        else:
            size = d.nwords if cfg.unit == "words" else d.nbytes
            train[lang] = select(d, pool, size, budget, cfg.mode, cfg.seed, "words" if cfg.unit == "words" else "bytes")
        print(f"{lang}: {len(d.src):,} documents, {d.nbytes.sum() / 1e6:.2f} MB in {len(d.sources)} file(s); "
              f"validation {int(val[lang].sum()):,} documents, training {int(train[lang].sum()):,} documents "
              f"{'(candidates) ' if cfg.unit == 'tokens' and budget else ''}"
              f"{d.nbytes[train[lang]].sum() / 1e6:.2f} MB")

    # 4: tokenizer
    t_tok = time.time()
    tok_info = {}
    if cfg.tokenizer is not None:
        if cfg.backend == "tiktoken" or cfg.tokenizer.endswith(".tiktoken"):
            tokenizer = load_tokenizer(find_tiktoken_file(cfg.tokenizer))
        else:
            tokenizer = load_tokenizer(cfg.tokenizer)
        if "backend" in explicit and tokenizer.backend != cfg.backend:
            raise SystemExit(f"{cfg.tokenizer}: a {tokenizer.backend} tokenizer, but --backend {cfg.backend}")
        print(f"tokenizer: {tokenizer.backend} from {cfg.tokenizer}, vocab {tokenizer.vocab_size}")
    elif cfg.backend == "tiktoken":
        raise SystemExit("--backend tiktoken needs --tokenizer: a local .tiktoken file (for example cl100k_base."
                         "tiktoken from https://openaipublic.blob.core.windows.net/encodings/) or an encoding name "
                         "already in tiktoken's cache; nothing is downloaded")
    else:
        texts, sample = sample_for_tokenizer(docs, train, premium, cfg)
        tokenizer = train_tokenizer(texts, cfg.backend, cfg.vocab_size, cfg.spm_model_type,
                                    cfg.spm_character_coverage)
        del texts
        tok_info = {"trained_on": sample, "balance": cfg.tokenizer_balance, "vocab_size_asked": cfg.vocab_size}
        if cfg.backend == "spm":
            tok_info["spm_model_type"] = cfg.spm_model_type
        print(f"tokenizer: trained {cfg.backend}, vocab {tokenizer.vocab_size}, on "
              + ", ".join(f"{lang} {v['bytes'] / 1e6:.2f} MB" for lang, v in sample.items())
              + f" ({time.time() - t_tok:.1f}s)")
    dtype = np.uint16 if tokenizer.vocab_size <= 65535 else np.uint32

    # 5: encode and write, into a temporary folder renamed into place at the end
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(os.path.abspath(out))}.tmp-{os.getpid()}")
    t_enc = time.time()
    try:
        os.makedirs(tmp)
        languages = {}
        for lang in langs:
            d = docs[lang]
            train[lang], tokens = write_language(d, train[lang], val[lang], tokenizer, dtype,
                                                 os.path.join(tmp, lang), plan[lang], cfg)
            budget = None if plan[lang] is None else {"amount": as_number(budgets[lang]), "unit": cfg.unit,
                                                      "in_own_units": round(plan[lang], 3)}
            languages[lang] = language_meta(d, train[lang], val[lang], tokens, premium[lang], budget)
        file = TOKENIZER_FILES[tokenizer.backend]
        with open(os.path.join(tmp, file), "wb") as f:
            f.write(tokenizer.blob)
        meta = {
            "vocab_size": tokenizer.vocab_size, "dtype": np.dtype(dtype).name,
            "bos_id": tokenizer.bos_id, "eos_id": tokenizer.eos_id, "pad_id": tokenizer.pad_id,
            "tokenizer": {"backend": tokenizer.backend, "file": file, "sha256": tokenizer.sha256, **tok_info},
            "languages": languages,
            "selection": {"mode": cfg.mode, "unit": cfg.unit, "budget": cfg.budget, "seed": cfg.seed,
                          "val_fraction": None if cfg.val_docs is not None else cfg.val_fraction,
                          "val_docs": cfg.val_docs, "val_seed": cfg.val_seed, "on_bad_utf8": cfg.on_bad_utf8},
            "command": "python tokenize_data.py " + shlex.join(argv),
        }
        with open(os.path.join(tmp, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1, ensure_ascii=False)
            f.write("\n")
        if os.path.exists(out):  # --force: swap the old folder out, the new one in, then delete the old one
            old = os.path.join(parent, f".{os.path.basename(os.path.abspath(out))}.old-{os.getpid()}")
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old)
        else:
            os.rename(tmp, out)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)

    # report
    print(f"{'lang':<5} {'split':<5} {'documents':>10} {'bytes':>12} {'words':>11} {'tokens':>11} "
          f"{'tok/byte':>8} {'tok/word':>8}")
    for lang, info in languages.items():
        for split in ("train", "val"):
            s = info[split]
            text_tokens = s["tokens"] - s["documents"]
            print(f"{lang:<5} {split:<5} {s['documents']:>10,} {s['bytes']:>12,} {s['words']:>11,} {s['tokens']:>11,} "
                  f"{text_tokens / max(s['bytes'], 1):>8.4f} {text_tokens / max(s['words'], 1):>8.4f}")
    print(f"wrote {out} ({meta['dtype']}, vocab {tokenizer.vocab_size}) in {time.time() - t_start:.1f}s "
          f"(tokenizer {t_enc - t_tok:.1f}s, encoding {time.time() - t_enc:.1f}s)")
    return meta


if __name__ == "__main__":
    main()
