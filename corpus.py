"""
What a corpus is, and which of its documents a budget takes: steps 1-3 of tokenize_data.py.

    from corpus import find_sources, scan, hold_out, select
    sources = find_sources("../shared/data/corpora", ["eng"])["eng"]    # en/*.txt.gz, sorted by name
    docs = scan("eng", sources, on_bad_utf8="fail")                     # numbers per document, never the text
    val = hold_out(docs, val_fraction=0.05)                             # (N,) bool, from a hash of each text
    train = select(docs, ~val, docs.nbytes, 2e6, "round_robin", seed=1337, unit="bytes")

A corpus is a folder with one sub-folder per language (en/ nl/ zh/, or eng/ nld/ zho/), each holding
UTF-8 text files (.txt, .train, .dev, optionally .gz), one document per line. Every file is a "source".

  1. scan      read every line once and keep a few numbers per document (bytes, words, a hash of its
               key: the text as the tokenizer normalizes it, whitespace runs made one space); bad UTF-8,
               CRLF, empty and huge lines are reported; documents that hold an evaluation sentence found.
  2. hold out  a document goes to validation when the hash of its key falls below val_fraction, so exact
               duplicates, in one source or several, land on the same side.
  3. select    the training documents within a budget: at random, or round-robin over the sources.

Budgets may be in English-equivalent bytes: a language's bytes divided by its byte premium
(read_byte_premium). Mistakes in the corpus are one-line SystemExits naming the file; a malformed
--languages or --budget text is a ValueError, which tokenize_data.py's DataConfig reports before any
file is read.
"""

import array
import collections
import csv
import glob
import gzip
import hashlib
import heapq
import math
import os
import re
import zlib
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from pairs import NOT_PAIRS, SUITES, read_pairs


# Language folders and what we need to know about each language. To add one, add a line to each dict.
LANGUAGE_FOLDERS = {"en": "eng", "eng": "eng", "nl": "nld", "nld": "nld", "zh": "zho", "zho": "zho"}
BYTE_PREMIUM_KEYS = {"eng": "eng_latn", "nld": "nld_latn", "zho": "zho_hans"}  # rows of the byte-premium table
BYTE_PREMIUM_TABLE = "byte_coefs_20240233.tsv"  # the BabyBabelLM pipeline's table (../shared/data/byte_premium)
HAN_CHARACTER_WORDS = {"zho"}  # written without spaces: each Han character counts as one word (see count_words)

TEXT_SUFFIXES = (".txt", ".train", ".dev")  # each may also end in .gz
LONG_LINE_BYTES = 1_000_000  # lines longer than this are reported (and still kept as one document)


# -----------------------------------------------------------------------------
# What the user asks for: languages and budgets


def language_codes(names: Optional[str]) -> Optional[list]:
    """'en,nld' -> ['eng', 'nld'] (folder names or ISO 639-3 codes); None or '' -> None: every language."""
    if not names:
        return None
    codes = []
    for name in names.split(","):
        if name.strip() not in LANGUAGE_FOLDERS:
            raise ValueError(f"--languages {names}: unknown language {name.strip()!r} "
                             f"(known: {', '.join(sorted(LANGUAGE_FOLDERS))})")
        codes.append(LANGUAGE_FOLDERS[name.strip()])
    return codes


def parse_amount(text: str, what: str) -> float:
    """'2M' -> 2e6, '500k' -> 5e5, '1.5G' -> 1.5e9, '2000000' -> 2e6 (decimal prefixes, as in '2 MB')."""
    t = text.strip().upper().rstrip("B")
    scale = {"K": 1e3, "M": 1e6, "G": 1e9}.get(t[-1:], 1.0)
    try:
        value = float(t[:-1] if scale != 1.0 else t) * scale
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):  # float() also reads "nan" and "inf"
        raise ValueError(f"{what} {text!r}: not an amount (examples: 2000000, 2M, 500K)")
    if value <= 0:
        raise ValueError(f"{what} {text!r}: must be positive")
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
            raise ValueError(f"--budget {text}: {name.strip()!r} is not one of the languages ({', '.join(langs)})")
        budgets[lang] = parse_amount(amount, f"--budget {lang}=")
    return budgets


# -----------------------------------------------------------------------------
# 1. Sources and scanning


@dataclass
class Source:
    name: str   # file name without .gz and .txt: "ud_ewt", "childes.train"
    path: str
    rel: str    # "en/ud_ewt.txt.gz", as stored in meta.json


def find_sources(corpus: str, languages: Optional[list] = None, sources: Optional[list] = None,
                 skip: tuple = ()) -> dict:
    """{lang: [Source, ...]} from the corpus folder's language sub-folders, files sorted by name.
    languages: ISO 639-3 codes to read (None: every language folder); sources: file names without
    .txt/.gz to keep (None: all); skip: files beside the language folders that are not a mistake
    (the validation file of --val-file)."""
    skip = {os.path.abspath(f) for f in skip}
    if not os.path.isdir(corpus):
        raise SystemExit(f"{corpus}: no such folder (expected a corpus folder with en/ nl/ zh/ sub-folders)")
    found = {}
    for entry in sorted(os.listdir(corpus)):
        path = os.path.join(corpus, entry)
        if not os.path.isdir(path):
            text_file = entry.endswith(tuple(s + z for s in TEXT_SUFFIXES for z in ("", ".gz")))
            if text_file and os.path.abspath(path) not in skip:
                raise SystemExit(f"{path}: text files go in a language sub-folder (en/, nl/, zh/ ...)")
            continue  # a README, SOURCES.md ...
        lang = LANGUAGE_FOLDERS.get(entry)
        if lang is None:
            if languages is not None:
                continue  # only the languages asked for are read
            raise SystemExit(f"{path}: unknown language folder {entry!r} (known: {', '.join(sorted(LANGUAGE_FOLDERS))}"
                             f"; add it to LANGUAGE_FOLDERS in corpus.py, or choose with --languages)")
        if languages is not None and lang not in languages:
            continue
        if lang in found:
            raise SystemExit(f"{path}: a second folder for {lang} (next to {os.path.dirname(found[lang][0].path)})")
        files = []
        for name in sorted(os.listdir(path)):
            base = name[:-3] if name.endswith(".gz") else name
            if not base.endswith(TEXT_SUFFIXES) or not os.path.isfile(os.path.join(path, name)):
                print(f"{os.path.join(path, name)}: ignored (not a .txt, .train or .dev file)")
                continue
            source = base[:-4] if base.endswith(".txt") else base
            if any(s.name == source for s in files):
                raise SystemExit(f"{os.path.join(path, name)}: a second file for source {source!r}")
            files.append(Source(source, os.path.join(path, name), f"{entry}/{name}"))
        if not files:
            raise SystemExit(f"{path}: no .txt, .txt.gz, .train or .dev files")
        found[lang] = files
    if not found:
        raise SystemExit(f"{corpus}: no language folders (expected en/ nl/ zh/ or eng/ nld/ zho/ holding text files)")
    if languages is not None:
        missing = [lang for lang in languages if lang not in found]
        if missing:
            raise SystemExit(f"{corpus}: no folder for {', '.join(missing)}")
    if sources:
        every = {s.name for ss in found.values() for s in ss}
        unknown = [n for n in sources if n not in every]
        if unknown:
            raise SystemExit(f"--sources: {', '.join(unknown)} not found (sources: {', '.join(sorted(every))})")
        found = {lang: [s for s in ss if s.name in sources] for lang, ss in found.items()}
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


# Han characters: the CJK unified ideographs, their extensions A to G, and the compatibility ideographs
HAN_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
HAN_WORD = re.compile(f"[{HAN_RANGES}]|[^\\W{HAN_RANGES}]+")  # one Han character, or a run of other letters/digits


def count_words(text: str, lang: str) -> int:
    """Words as BabyLM counts them: whitespace-separated. Chinese has no spaces, so there every Han character
    is a word, and so is every run of other letters or digits (a Latin word, a number); punctuation is not."""
    if lang not in HAN_CHARACTER_WORDS:
        return len(text.split())
    return len(HAN_WORD.findall(text))


@dataclass
class Docs:
    """One language's documents (non-blank lines), in file order: document i is line line[i] of
    sources[src[i]]. Only numbers are kept, never the text, so memory stays small on large corpora."""
    lang: str
    sources: list
    src: np.ndarray     # (N,) index into sources
    line: np.ndarray    # (N,) line number in its file, from 1
    nbytes: np.ndarray  # (N,) UTF-8 bytes of the text (line end excluded; after convert)
    nwords: np.ndarray  # (N,) words (count_words)
    hash: np.ndarray    # (N,) uint64 hash of the key (document_key): the split, duplicates, the sampling order
    skipped: dict       # {"empty": n, "bad_utf8": n}
    convert: Optional[Callable] = None  # applied to every line's text as it is read (--zh-script)
    eval_hits: dict = field(default_factory=dict)  # document index -> keys of the evaluation sentences it holds


def document_key(text: str, normalize: Optional[Callable] = None) -> str:
    """What makes two documents the same: the text as the tokenizer normalizes it, every run of whitespace
    one space, none at the ends."""
    return " ".join((normalize(text) if normalize else text).split())


# where a sentence ends inside a document: after . ! ? and a space, or after a Chinese full stop, ! or ?
SENTENCE_BREAK = re.compile(r"(?<=[.!?]) |(?<=[。！？]) ?")
INNER_END = re.compile(r"[.!?。！？].")  # a sentence end with text after it: the cheap test first


def sentences_of(key: str) -> list:
    """The key itself, and its sentences when it holds several (split at SENTENCE_BREAK)."""
    if not INNER_END.search(key):
        return [key]
    return [key] + [s for s in SENTENCE_BREAK.split(key) if s]


def scan(lang: str, sources: list, on_bad_utf8: str, convert: Optional[Callable] = None,
         normalize: Optional[Callable] = None, eval_keys: Optional[dict] = None) -> Docs:
    """Step 1: read every line once and keep its size, words and the hash of its key. Reports, per file,
    invalid UTF-8 (fail, or skip with a count), CRLF line ends (the CR is dropped), blank lines (skipped),
    huge lines. convert changes each text first (the Chinese script); normalize is the tokenizer's
    normalizer (part of the key); eval_keys, keys of evaluation sentences: which documents hold one, or
    whose sentences are one (sentences_of), goes to Docs.eval_hits."""
    src, line, nbytes, nwords, hashes = (array.array(t) for t in "hiiiQ")  # int16, int32 x3, uint64: 22 B/doc
    skipped = {"empty": 0, "bad_utf8": 0}
    eval_hits = {}
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
            if convert is not None:
                text = convert(text)
                raw = text.encode("utf-8")
            if len(raw) > LONG_LINE_BYTES:
                long_lines.append((n, len(raw)))
            key = document_key(text, normalize)
            if eval_keys:
                hits = [k for k in sentences_of(key) if k in eval_keys]
                if hits:
                    eval_hits[len(src)] = hits
            src.append(s_index)
            line.append(n)
            nbytes.append(len(raw))
            nwords.append(count_words(text, lang))
            hashes.append(int.from_bytes(hashlib.blake2b(raw if key == text else key.encode("utf-8"),
                                                         digest_size=8).digest(), "little"))
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
    columns = (np.frombuffer(a, dtype=a.typecode) for a in (src, line, nbytes, nwords, hashes))  # no copy: memory
    docs = Docs(lang, sources, *columns, skipped, convert, eval_hits)
    if len(docs.src) == 0:
        raise SystemExit(f"{os.path.dirname(sources[0].path)}: no text in any of its {len(sources)} file(s)")
    return docs


def iter_texts(docs: Docs, wanted: np.ndarray):
    """Yield (document index, text) for the documents where wanted is True, in file order, reading the files
    again (streaming). The lines were checked by scan(), so they decode."""
    block = 1 << 16  # documents whose numbers are Python ints at a time (fast to compare, 36 bytes each)
    for s_index, source in enumerate(docs.sources):
        index = np.flatnonzero(wanted & (docs.src == s_index))
        todo = ((i, n) for at in range(0, len(index), block)
                for i, n in zip(index[at:at + block].tolist(), docs.line[index[at:at + block]].tolist()))
        doc, want = next(todo, (None, None))
        if doc is None:
            continue
        for n, raw, _ in read_lines(source.path):
            if n == want:
                text = raw.decode("utf-8")
                text = text[1:] if n == 1 and text.startswith("\ufeff") else text
                yield doc, docs.convert(text) if docs.convert is not None else text
                doc, want = next(todo, (None, None))
                if doc is None:
                    break


def first_copies(docs: Docs) -> np.ndarray:
    """(N,) bool: True for the first document of each distinct key (file order)."""
    first = np.zeros(len(docs.hash), bool)
    first[np.unique(docs.hash, return_index=True)[1]] = True
    return first


def duplicates(docs: Docs, train: np.ndarray, val: np.ndarray) -> dict:
    """Exact duplicates, by key: documents that repeat an earlier one, the texts that occur more than once,
    those found in more than one source, and the training documents whose text is also in validation
    (none, unless validation is a file of its own). Temporaries are freed as soon as they are used: on a
    large corpus these per-document arrays are what sets the peak memory."""
    order = np.lexsort((docs.src, docs.hash))        # by text, then by source
    h = docs.hash[order]
    first = np.ones(len(h), bool)                     # the first document of each distinct text
    np.not_equal(h[1:], h[:-1], out=first[1:])
    del h
    s = docs.src[order]
    del order
    new_source = first.copy()                         # ... or the first of its text in another source
    new_source[1:] |= s[1:] != s[:-1]
    del s
    text = np.cumsum(first) - 1                       # each document's text, numbered
    per_text = np.bincount(text)
    sources_per_text = np.bincount(text[new_source])
    return {"repeated_documents": int((~first).sum()), "repeated_texts": int((per_text > 1).sum()),
            "texts_in_several_sources": int((sources_per_text > 1).sum()),
            "training_documents_in_validation": in_validation(docs, train, val)}


def in_validation(docs: Docs, train: np.ndarray, val: np.ndarray, block: int = 1 << 20) -> int:
    """How many training documents have the key of a validation document (by binary search in the sorted
    validation keys, a block of training documents at a time)."""
    held = np.sort(docs.hash[val])
    if len(held) == 0:
        return 0
    index, found = np.flatnonzero(train), 0
    for start in range(0, len(index), block):
        keys = docs.hash[index[start:start + block]]
        found += int((held[np.minimum(np.searchsorted(held, keys), len(held) - 1)] == keys).sum())
    return found


# -----------------------------------------------------------------------------
# Evaluation sentences


EVAL_SUITES = {"eng": ("blimp", "blimp_supplement"), "nld": ("blimp_nl",), "zho": ("zhoblimp", "sling")}
_EVAL_CACHE = {}


def pair_sentences(path: str) -> list:
    """Both sentences of every pair of a pair file, read by pairs.read_pairs (which names a bad line)."""
    return [s for pair in read_pairs([path], warn=False) for s in (pair["good"], pair["bad"])]


def eval_sentence_keys(data_root: str, lang: str, key: Callable) -> Optional[dict]:
    """{key of an evaluation sentence: the suites it is in} for a language's minimal-pair suites (EVAL_SUITES:
    their JSONL files as pairs.py names them, both sentences of every pair; a suite whose files are not there
    is left out), or None when none is there. The sentences of a suite are read once per process."""
    keys = {}
    for suite in EVAL_SUITES.get(lang, ()):
        files = sorted(f for f in glob.glob(os.path.join(data_root, SUITES[suite]))
                       if os.path.basename(f) not in NOT_PAIRS)
        cache = (os.path.abspath(data_root), suite)
        if cache not in _EVAL_CACHE:
            sentences = set()
            for path in files:
                sentences.update(pair_sentences(path))
            _EVAL_CACHE[cache] = sorted(sentences)
        for sentence in _EVAL_CACHE[cache]:
            keys.setdefault(key(sentence), set()).add(suite)
    return keys or None


# -----------------------------------------------------------------------------
# 2-3. Held-out split, byte premium, budgets


def mix64(x: np.ndarray, seed: int) -> np.ndarray:
    """A keyed 64-bit hash of x: the splitmix64 finalizer (Steele, Lea & Flood 2014) of x + seed·φ.
    Turns the text hashes into an independent random order for each seed."""
    with np.errstate(over="ignore"):  # in place: one temporary at a time on a large corpus
        z = x.astype(np.uint64)
        z += np.uint64((seed * 0x9E3779B97F4A7C15) % 2**64)
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
        return z


def hold_out(docs: Docs, val_fraction: float, val_docs: Optional[int] = None, val_seed: int = 0) -> np.ndarray:
    """Step 2: the validation documents (a boolean mask). A document is held out when its keyed text hash,
    read as a number in [0, 1), is below val_fraction (or is among the val_docs smallest), so the split depends
    only on the text: not on the budget, the training seed, or which other files are present. Duplicates of a
    held-out document (the same key: see document_key) are held out too, so none of them leaks into training;
    so --val-docs may hold out a few more than asked."""
    key = mix64(docs.hash, val_seed)
    n = len(key)
    if val_docs is not None:
        if val_docs >= n:
            raise SystemExit(f"{docs.lang}: --val-docs {val_docs} but only {n} documents")
        val = key <= np.sort(key)[val_docs - 1]  # the val_docs smallest, and any copies of the last one
    else:
        val = key < np.uint64(int(val_fraction * 2.0**64))  # key / 2^64 < val_fraction
        if val_fraction > 0 and not val.any() and n > 1:  # a small language still gets one (and its copies)
            val = key == key.min()
    if val.all():
        raise SystemExit(f"{docs.lang}: no training documents left after holding out {int(val.sum())} for validation")
    return val


def default_byte_premium_table(corpus: str) -> str:
    """The byte-premium table next to the corpus (../shared/data/{corpora,byte_premium}), else the one in
    this repository's neighbour ../shared/data."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.path.join(corpus, "..", "byte_premium", BYTE_PREMIUM_TABLE),
                  os.path.join(here, "..", "shared", "data", "byte_premium", BYTE_PREMIUM_TABLE)]
    return next((c for c in candidates if os.path.isfile(c)), candidates[0])


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


def val_source(path: str) -> Source:
    """--val-file as one more source of its language (its documents are all held out)."""
    name = os.path.basename(path)
    for ending in (".gz", ".txt"):
        name = name[:-len(ending)] if name.endswith(ending) else name
    return Source(name, path, os.path.basename(path))


def default_eval_data(corpus: str) -> str:
    """The minimal-pair files beside the corpus (../shared/data/{corpora,blimp,...}), else this repository's
    neighbour ../shared/data."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.path.join(corpus, ".."), os.path.join(here, "..", "shared", "data")]
    return next((c for c in candidates if os.path.isdir(os.path.join(c, "blimp"))), candidates[0])


def chinese_to_simplified():
    """Traditional Chinese -> Simplified: OpenCC's t2s conversion (phrases first, then characters), by the
    OpenCC project's own binding (C++, maintained; the pure-Python ports on PyPI are slower or unmaintained)."""
    try:
        import opencc
    except ImportError:
        raise SystemExit("--zh-script simplified needs the opencc package (pip install opencc==1.4.2)")
    return opencc.OpenCC("t2s").convert


def eval_overlap(eval_keys: Optional[dict], docs: Docs, train: np.ndarray, dropped: bool) -> Optional[dict]:
    """Per suite: its distinct sentences, how many of them a training document holds (verbatim after the
    normalization of document keys), and in how many training documents; None when not checked."""
    if eval_keys is None:
        return None
    out = {}
    for suites in eval_keys.values():
        for suite in suites:
            out.setdefault(suite, {"sentences": 0, "in_training": 0, "training_documents": 0})["sentences"] += 1
    found = collections.defaultdict(set)  # suite -> keys found in training
    for doc, keys in docs.eval_hits.items():
        if train[doc]:
            hit_suites = {suite for k in keys for suite in eval_keys[k]}
            for suite in hit_suites:
                out[suite]["training_documents"] += 1
            for k in keys:
                for suite in eval_keys[k]:
                    found[suite].add(k)
    for suite, keys in found.items():
        out[suite]["in_training"] = len(keys)
    return {"suites": {s: out[s] for s in EVAL_SUITES[docs.lang] if s in out}, "dropped_from_training": dropped}
