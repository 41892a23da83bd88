"""
Turn raw text into what train.py and the mixer read: a tokenizer and per-language token bins.

    python tokenize_data.py --corpus ../shared/data/corpora --out data/eng_nld_zho   # eng+nld+zho, one shared BPE
    python tokenize_data.py --corpus ../shared/data/corpora --out data/model_a --model-a  # 2 MB of English
    python tokenize_data.py --model-a-card --out data/model_a_card      # the Model A card's tokenizer and data
    python tokenize_data.py --corpus ../shared/data/corpora --out data/nld --languages nld --tokenizer data/eng_nld_zho
    python tokenize_data.py --corpus ../shared/data/corpora --out data/b1m --budget 1M --unit eng_bytes

Every DataConfig field below is a flag, written --vocab-size 8000, --vocab_size=8000 or, for --force, bare;
`python tokenize_data.py --help` lists them. --out is required.

Input: a corpus folder with one sub-folder per language (en/ nl/ zh/, or eng/ nld/ zho/), each holding
UTF-8 text files (.txt, .train, .dev, optionally .gz), one document per line. Every file is a "source".

What happens, in order (steps 1-3 are in corpus.py, each step is one function):
  1. scan      read every line once and keep a few numbers per document (bytes, words, a hash of its text
               as the tokenizer normalizes it, whitespace runs made one space; never the text itself);
               bad UTF-8, CRLF, empty and huge lines are reported, exact duplicates counted, and the
               documents that hold a sentence of the minimal-pair suites (BLiMP, BLiMP-NL, ZhoBLiMP, SLING)
               found (--drop-eval-sentences keeps them out of training).
  2. hold out  a document goes to validation when the hash of its text falls below --val-fraction: the
               split does not depend on the seed, the budget or the other files, so validation loss is
               comparable across runs, and duplicates land on the same side. --val-file FILE makes a file
               the validation split instead (one language; the Model A card's eval file).
  3. select    the training documents within a per-language budget (bytes, words, tokens or English-
               equivalent bytes), either at random (--mode random) or round-robin over the sources with
               equal amounts per source (--mode round_robin, Model A). A budget larger than the data fails.
  4. tokenizer train a ByteLevel BPE (or SentencePiece) on a language-balanced sample of the selected
               documents, or reuse one (--tokenizer), or load a local tiktoken file. --normalize
               nfd_lower_strip gives it the card's normalizer; --bos-input=False makes a document enter
               the model without BOS (both travel with the tokenizer: tokenizer.py).
  5. encode    stream the selected documents through the tokenizer in parallel batches, writing
               [BOS d1 BOS d2 ...] to <lang>/train.bin and <lang>/val.bin; then meta.json. The BOS is in
               the bins whatever --bos-input says: it marks where each document starts (meta.json:
               bos_in_bins, bos_input).
Chinese in Traditional script becomes Simplified with --zh-script simplified (OpenCC's t2s), before all
of the above, so that a sentence in both scripts is one sentence.
Every value is checked before any file is read. Everything is written to a hidden temporary folder next to
--out that becomes --out at the end (atomic.staged_folder), so a failure leaves nothing behind; the
temporary folders of runs that were killed are removed at the start. A lock on --out is held from the
start, so a second run writing the same --out stops at once. An existing --out is only replaced
with --force, and only if tokenize_data.py wrote it.

Output (the layout is in data.py's docstring):  <out>/meta.json, <out>/tokenizer.json (or .model / .tiktoken),
<out>/<lang>/train.bin, <out>/<lang>/val.bin  -- read with np.memmap(path, dtype=meta["dtype"], mode="r").
"""

import collections
import itertools
import os
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Optional

import numpy as np

from atomic import staged_folder, write_json
from configurator import load_config
from corpus import (EVAL_SUITES, HAN_CHARACTER_WORDS, LANGUAGE_FOLDERS, Docs, chinese_to_simplified,
                    default_byte_premium_table, default_eval_data, document_key, duplicates, eval_sentence_keys,
                    eval_overlap, find_sources, first_copies, hold_out, iter_texts, language_codes, mix64, parse_amount,
                    parse_budget, read_byte_premium, scan, select, select_random, val_source)
from bpe_fast import PIECE_CHARS, split_long
from tokenizer import (BPE_RECIPES, NORMALIZERS, TOKENIZER_FILES, Tokenizer, load_tokenizer, normalizer_function,
                       train_tokenizer)
from tokenizer_backends import find_tiktoken_file

BATCH_CHARS = 1 << 16        # characters per parallel encoding call (more only costs memory: ~3 bytes each in Chinese)
GATHER_DOCS = 1 << 16        # documents per block when a token budget picks from the encoded candidates


# -----------------------------------------------------------------------------
# Configuration

CHOICES = {"backend": ("bpe", "spm", "tiktoken"), "spm_model_type": ("bpe", "unigram"),
           "tokenizer_balance": ("eng_bytes", "bytes"), "unit": ("bytes", "words", "tokens", "eng_bytes"),
           "mode": ("random", "round_robin"), "on_bad_utf8": ("fail", "skip"), "normalize": tuple(NORMALIZERS),
           "bpe_recipe": BPE_RECIPES, "zh_script": ("as_is", "simplified")}
# The smallest vocabulary a trainer can make: the 256 byte tokens and <s> </s> <pad> (bpe: then it has no
# merges); SentencePiece adds <unk> and needs a piece for at least one character. Asked for less, `tokenizers`
# silently gives 259 tokens, and an absurd size makes its Rust trainer abort the process.
SMALLEST_VOCAB = {"bpe": 259, "spm": 261, "tiktoken": 259}
LARGEST_VOCAB = 2**20  # far more than any vocabulary in use: ids still fit the uint32 bins


@dataclass
class DataConfig:
    corpus: str = "../shared/data/corpora"
    out: str = ""                       # required: the data folder to write (must not exist, unless --force)
    languages: Optional[str] = None     # "eng,nld" (folder names or ISO 639-3); None = every language folder
    sources: Optional[str] = None       # "ud_ewt,commonvoice_en": file names without .txt/.gz; None = all files
    # tokenizer
    backend: str = "bpe"                # bpe | spm | tiktoken
    tokenizer: Optional[str] = None     # reuse: a data folder or tokenizer file (tiktoken: file or encoding name)
    vocab_size: int = 16000
    spm_model_type: str = "bpe"         # bpe | unigram
    spm_character_coverage: float = 0.9995
    normalize: str = "none"             # none | nfd_lower_strip (bpe; stored in tokenizer.json)
    bpe_recipe: str = "ours"            # ours | model_a_card (tokenizer.train_tokenizer says how they differ)
    bos_input: bool = True              # a document enters the model after BOS (the bins hold BOS either way)
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
    val_file: Optional[str] = None      # a text file that is the validation split (one language), instead
    # input handling
    on_bad_utf8: str = "fail"           # fail | skip
    zh_script: str = "as_is"            # as_is | simplified (Traditional -> Simplified, OpenCC t2s)
    eval_data: Optional[str] = None     # minimal-pair files (default: beside the corpus, else ../shared/data)
    drop_eval_sentences: bool = False   # keep documents holding an evaluation sentence out of training
    drop_repeats: bool = False          # train on the first copy of each exact duplicate only
    byte_premium_table: Optional[str] = None  # default: <corpus>/../byte_premium/ or ../shared/data/byte_premium/
    force: bool = False

    def __post_init__(self):
        """Every value checked before any file is read or written: ValueError("--flag value: what is wrong")."""
        if not self.out:
            raise ValueError("--out: required (the data folder to write, e.g. --out data/eng_nld_zho)")
        for key, allowed in CHOICES.items():
            value = getattr(self, key)
            if value not in allowed:
                raise ValueError(f"--{key.replace('_', '-')} {value}: expected one of {', '.join(allowed)}")
        smallest = SMALLEST_VOCAB[self.backend]
        if not smallest <= self.vocab_size <= LARGEST_VOCAB:
            raise ValueError(f"--vocab-size {self.vocab_size}: expected {smallest} to {LARGEST_VOCAB:,} for --backend "
                             f"{self.backend} (the 256 byte tokens and the special tokens come first)")
        if not 0.98 <= self.spm_character_coverage <= 1:  # SentencePiece's own range
            raise ValueError(f"--spm-character-coverage {self.spm_character_coverage}: expected a number in "
                             f"[0.98, 1]")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"--val-fraction {self.val_fraction}: expected a number in [0, 1)")
        if self.val_docs is not None and self.val_docs < 1:
            raise ValueError(f"--val-docs {self.val_docs}: expected at least 1 (or --val-fraction 0 for none)")
        if self.backend != "bpe" and (self.normalize != "none" or self.bpe_recipe != "ours"):
            raise ValueError(f"--normalize and --bpe-recipe are for --backend bpe, not {self.backend}")
        language_codes(self.languages)
        parse_amount(self.tokenizer_sample, "--tokenizer-sample")
        parse_budget(self.budget, sorted(set(LANGUAGE_FOLDERS.values())))


MODEL_A = {"languages": "eng", "mode": "round_robin", "budget": "2000000", "unit": "bytes"}  # --model-a
# --model-a-card: the card's tokenizer and data (../shared/MODEL_A_CARD.md): its 2 MB, all of it; the card's
# BPE trainer and normalizer; no BOS before a document; validation on the card's own eval file
MODEL_A_CARD = {"corpus": "../shared/data/model_a_corpus", "languages": "eng", "vocab_size": "16000",
                "bpe_recipe": "model_a_card", "normalize": "nfd_lower_strip", "bos_input": "False",
                "val_file": "../shared/data/model_a_corpus/card_eval_A.txt.gz"}
PRESETS = {"--model-a": MODEL_A, "--model-a-card": MODEL_A_CARD}


def parse_args(argv) -> tuple:
    """Command line -> (DataConfig, the keys given explicitly), by configurator.load_config. Shorthands are
    expanded first: --model-a and --model-a-card set their preset's keys where they are not given, and
    --total-bytes N is --budget N --unit bytes for a corpus of one language."""
    rest, preset, total = [], None, None
    args = list(argv)
    while args:
        arg = args.pop(0)
        key, has_value, value = arg.partition("=")
        if key.replace("_", "-") in PRESETS:
            if value not in ("", "True", "False"):
                raise SystemExit(f"command line: {arg}: {key} is a flag (True or False)")
            if value != "False":
                if preset not in (None, key.replace("_", "-")):
                    raise SystemExit(f"command line: {preset} and {key}: choose one")
                preset = key.replace("_", "-")
        elif key.replace("_", "-") == "--total-bytes":
            if not has_value and (not args or args[0].startswith("--")):
                raise SystemExit("command line: --total-bytes needs a value (--total-bytes=2M)")
            total = value if has_value else args.pop(0)
            try:
                parse_amount(total, "--total-bytes")
            except ValueError as e:
                raise SystemExit(f"config: {e}")
        else:
            rest.append(arg)
    if "-h" in rest or "--help" in rest:
        print("shorthands: " + "; ".join(f"{name} = " + " ".join(f"--{k}={v}" for k, v in keys.items())
                                         for name, keys in PRESETS.items())
              + "; --total-bytes N = --budget=N --unit=bytes (one language)")
    first = [f"--{k}={v}" for k, v in PRESETS[preset].items()] if preset else []  # first: the flags given win
    (cfg,), explicit = load_config(first + rest, DataConfig, program="tokenize_data.py")
    if total is not None:
        if "budget" in explicit or cfg.unit != "bytes":
            raise SystemExit("--total-bytes: give either --total-bytes or --budget/--unit, not both")
        (cfg,), explicit = load_config(first + rest + [f"--budget={total}", "--unit=bytes"], DataConfig,
                                       program="tokenize_data.py")
        explicit.add("total_bytes")
    return cfg, explicit


def check_out(out: str, force: bool):
    """Stop before anything is read if --out cannot be written, or may not be replaced."""
    if os.path.exists(out):
        if not os.path.isdir(out):
            raise SystemExit(f"{out}: exists and is not a folder")
        if not force:
            raise SystemExit(f"{out}: already exists (pass --force to replace it)")
        if os.listdir(out) and not os.path.isfile(os.path.join(out, "meta.json")):
            raise SystemExit(f"{out}: not a data folder written by tokenize_data.py (no meta.json); not replacing it")
        return
    above = os.path.dirname(os.path.abspath(out))
    while not os.path.exists(above):  # the folders that will be made: the first one that exists must be a folder
        above = os.path.dirname(above)
    if not os.path.isdir(above):
        raise SystemExit(f"--out {out}: {above} is a file, not a folder")
    if not os.access(above, os.W_OK | os.X_OK):
        raise SystemExit(f"--out {out}: no permission to write in {above}")


def repeat_mask(hashes: np.ndarray) -> np.ndarray:
    """True for each document whose text (its key's hash) occurred earlier in the corpus."""
    _, first = np.unique(hashes, return_index=True)
    repeat = np.ones(len(hashes), bool)
    repeat[first] = False
    return repeat


# -----------------------------------------------------------------------------
# 1-3. Which documents go where


@dataclass
class LanguagePlan:
    """One language after steps 1-3: its documents, and where each one goes."""
    docs: Docs
    val: np.ndarray               # (N,) bool: held out for validation
    train: np.ndarray             # (N,) bool: for training (with a budget in tokens: the candidates, until step 5)
    premium: Optional[float]      # its byte premium (None: not in the table, and not needed)
    budget: Optional[float]       # as asked, in --unit (None: all its training data)
    own_budget: Optional[float]   # the same in its own units: English-equivalent bytes become its bytes
    eval_keys: Optional[dict]     # keys of its evaluation sentences -> their suites (None: not checked)


def plan_languages(cfg: DataConfig, explicit: set, normalize=None) -> dict:
    """Steps 1-3 for every language: {lang: LanguagePlan}. normalize is the tokenizer's normalizer (part of a
    document's key). A budget in tokens is applied in step 5, once the documents are encoded."""
    sources = [name.strip() for name in cfg.sources.split(",")] if cfg.sources else None
    skip = [cfg.val_file] if cfg.val_file else []  # a validation file may sit beside the language folders
    found = find_sources(cfg.corpus, language_codes(cfg.languages), sources, skip)
    langs = list(found)
    if "total_bytes" in explicit and len(langs) != 1:
        raise SystemExit(f"--total-bytes is for one language; {len(langs)} found ({', '.join(langs)}): "
                         f"choose one with --languages, or use --budget")
    if cfg.val_file is not None:
        if len(langs) != 1:
            raise SystemExit(f"--val-file is for one language; {len(langs)} found ({', '.join(langs)}): "
                             f"choose one with --languages")
        if explicit & {"val_fraction", "val_docs"}:
            raise SystemExit("--val-file: give either --val-file or --val-fraction/--val-docs, not both")
        if not os.path.isfile(cfg.val_file):
            raise SystemExit(f"--val-file {cfg.val_file}: no such file")
    try:
        budgets = parse_budget(cfg.budget, langs)
    except ValueError as e:  # a language of --budget that is not in the corpus (or not among --languages)
        raise SystemExit(str(e))
    needs_premium = cfg.unit == "eng_bytes" or (cfg.tokenizer is None and cfg.tokenizer_balance == "eng_bytes"
                                                and len(langs) > 1)
    premium = read_byte_premium(cfg.byte_premium_table or default_byte_premium_table(cfg.corpus), langs,
                                required=needs_premium)
    eval_root = cfg.eval_data or default_eval_data(cfg.corpus)
    plans = {}
    for lang in langs:
        convert = chinese_to_simplified() if cfg.zh_script == "simplified" and lang == "zho" else None
        eval_keys = eval_sentence_keys(
            eval_root, lang, lambda t: document_key(convert(t) if convert else t, normalize))
        if eval_keys is None and cfg.drop_eval_sentences:
            raise SystemExit(f"--drop-eval-sentences: no minimal-pair files for {lang} under {eval_root} "
                             f"({', '.join(EVAL_SUITES.get(lang, ()))}); set --eval-data")
        files = found[lang] + ([val_source(cfg.val_file)] if cfg.val_file else [])
        d = scan(lang, files, cfg.on_bad_utf8, convert, normalize, eval_keys)
        if cfg.val_file:
            val = d.src == len(files) - 1
        else:
            val = hold_out(d, cfg.val_fraction, cfg.val_docs, cfg.val_seed)
            if not val.any():  # train.py evaluates (and the mixer learns) on the held-out split
                print(f"notice: {lang}: no held-out documents (--val-fraction {cfg.val_fraction}); train.py "
                      f"cannot train on this folder, which suits a tokenizer or a corpus count only")
        pool = ~val
        if cfg.drop_eval_sentences and d.eval_hits:
            held = np.zeros(len(pool), bool)
            held[list(d.eval_hits)] = True
            print(f"{lang}: {int((pool & held).sum()):,} documents hold an evaluation sentence; "
                  f"kept out of training (--drop-eval-sentences)")
            pool &= ~held
        if cfg.drop_repeats:
            later = repeat_mask(d.hash) & pool
            print(f"{lang}: {int(later.sum()):,} training documents repeat an earlier one; kept out (--drop-repeats)")
            pool &= ~later
        budget = own = budgets.get(lang)
        if budget is not None and cfg.unit == "eng_bytes":
            own = budget * premium[lang]  # English-equivalent bytes -> this language's bytes
        if cfg.unit == "tokens" or own is None:
            train = pool
        else:
            unit = "words" if cfg.unit == "words" else "bytes"
            train = select(d, pool, d.nwords if unit == "words" else d.nbytes, own, cfg.mode, cfg.seed, unit)
        print(f"{lang}: {len(d.src):,} documents, {d.nbytes.sum() / 1e6:.2f} MB in {len(d.sources)} file(s); "
              f"validation {int(val.sum()):,} documents, training {int(train.sum()):,} documents "
              f"{'(candidates) ' if cfg.unit == 'tokens' and budget else ''}{d.nbytes[train].sum() / 1e6:.2f} MB")
        dup = duplicates(d, train, val)
        if dup["repeated_documents"]:
            print(f"{lang}: {dup['repeated_documents']:,} documents repeat an earlier one "
                  f"({dup['texts_in_several_sources']:,} texts in more than one source); "
                  + (f"{dup['training_documents_in_validation']:,} training documents are also in --val-file"
                     if cfg.val_file else "each text on one side of the split"))
        plans[lang] = LanguagePlan(d, val, train, premium[lang], budget, own, eval_keys)
    return plans


# -----------------------------------------------------------------------------
# 4. Tokenizer


def sample_for_tokenizer(plans: dict, cfg: DataConfig) -> tuple:
    """Step 4: a language-balanced sample to train the tokenizer on, so that Chinese and Dutch are not starved by
    English: the same number of English-equivalent bytes from every language (bytes / byte premium; or plain
    bytes with --tokenizer-balance bytes), at most --tokenizer-sample each, fewer when a language has less.
    Taken from the training documents only (never validation), in the seeded random order, each distinct text
    once: copies of a document would only weigh its words more."""
    per_lang = parse_amount(cfg.tokenizer_sample, "--tokenizer-sample")
    scale = {lang: (plan.premium if cfg.tokenizer_balance == "eng_bytes" and plan.premium else 1.0)
             for lang, plan in plans.items()}
    pools = {lang: plan.train & first_copies(plan.docs) for lang, plan in plans.items()}
    have = {lang: float(plan.docs.nbytes[pools[lang]].sum()) / scale[lang] for lang, plan in plans.items()}
    target = min(per_lang, *have.values())
    if target < per_lang and len(plans) > 1:
        short = min(have, key=have.get)
        print(f"tokenizer sample: {target / 1e6:.2f} MB per language ({cfg.tokenizer_balance}), limited by {short}")
    texts, info = [], {}
    for lang, plan in plans.items():
        d = plan.docs
        chosen = select_random(d.nbytes, mix64(d.hash, cfg.seed), pools[lang], target * scale[lang])
        info[lang] = {"documents": int(chosen.sum()), "bytes": int(d.nbytes[chosen].sum())}
        for _, text in iter_texts(d, chosen):
            texts.extend(split_long(text) if len(text) > PIECE_CHARS else [text])
    return texts, info


def reuse_tokenizer(cfg: DataConfig, explicit: set) -> Tokenizer:
    """Step 4 for --tokenizer, done before step 1 (its normalizer is part of every document's key): the
    tokenizer, with --bos-input applied when given."""
    if cfg.backend == "tiktoken" or cfg.tokenizer.endswith(".tiktoken"):
        tokenizer = load_tokenizer(find_tiktoken_file(cfg.tokenizer))
    else:
        tokenizer = load_tokenizer(cfg.tokenizer)
    if "backend" in explicit and tokenizer.backend != cfg.backend:
        raise SystemExit(f"{cfg.tokenizer}: a {tokenizer.backend} tokenizer, but --backend {cfg.backend}")
    if "normalize" in explicit and cfg.normalize != tokenizer.normalizer:
        raise SystemExit(f"--normalize {cfg.normalize}: the reused tokenizer's normalizer is {tokenizer.normalizer} "
                         f"(a tokenizer keeps its own); train a new one instead of --tokenizer")
    if "bos_input" in explicit and cfg.bos_input != tokenizer.bos_input:
        tokenizer = Tokenizer(tokenizer.backend, tokenizer.blob, cfg.bos_input)  # the same ids; meta.json says it
    print(f"tokenizer: {tokenizer.backend} from {cfg.tokenizer}, vocab {tokenizer.vocab_size}")
    return tokenizer


def make_tokenizer(cfg: DataConfig, plans: dict) -> tuple:
    """Step 4: train a tokenizer on a balanced sample. Returns (Tokenizer, what meta.json records about its
    training)."""
    if cfg.backend == "tiktoken":
        raise SystemExit("--backend tiktoken needs --tokenizer: a local .tiktoken file (for example cl100k_base."
                         "tiktoken from https://openaipublic.blob.core.windows.net/encodings/) or an encoding name "
                         "already in tiktoken's cache; nothing is downloaded")
    t0 = time.time()
    texts, sample = sample_for_tokenizer(plans, cfg)
    tokenizer = train_tokenizer(texts, cfg.backend, cfg.vocab_size, cfg.spm_model_type, cfg.spm_character_coverage,
                                cfg.normalize, cfg.bpe_recipe, cfg.bos_input)
    info = {"trained_on": sample, "balance": cfg.tokenizer_balance, "vocab_size_asked": cfg.vocab_size}
    if cfg.backend == "spm":
        info["spm_model_type"] = cfg.spm_model_type
    else:
        info["recipe"] = cfg.bpe_recipe
    print(f"tokenizer: trained {cfg.backend}, vocab {tokenizer.vocab_size}, on "
          + ", ".join(f"{lang} {v['bytes'] / 1e6:.2f} MB" for lang, v in sample.items())
          + f" ({time.time() - t0:.1f}s)")
    return tokenizer, info


# -----------------------------------------------------------------------------
# 5. Encoding and meta.json


def encode_documents(tokenizer: Tokenizer, texts: list, dtype) -> tuple:
    """Encode a batch of documents in one parallel call. Returns (tokens, lengths): tokens is
    [BOS d1 BOS d2 ...] as `dtype`, lengths[i] = the number of tokens of document i, its BOS included."""
    ids, lengths = tokenizer.encode_flat(texts)
    return ids.astype(dtype, copy=False), lengths


def encode_stream(tokenizer: Tokenizer, items, dtype, batch_chars: int = BATCH_CHARS, in_flight: int = 2):
    """Encode (key, text) items in parallel batches of about batch_chars characters. Yields (keys, tokens,
    lengths) per batch, in input order. Up to `in_flight` batches are encoded at once by worker threads: the
    tokenizer releases the GIL while it encodes, while the Python around it (reading, normalizing, writing)
    holds it, so a second batch in flight keeps the cores busy during those steps. Memory holds in_flight + 1
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


def as_number(x: float):
    return int(x) if float(x).is_integer() else x


def split_stats(docs: Docs, mask: np.ndarray, tokens: np.ndarray) -> dict:
    return {"tokens": int(tokens[mask].sum()), "bytes": int(docs.nbytes[mask].sum()),
            "words": int(docs.nwords[mask].sum()), "documents": int(mask.sum())}


def language_meta(plan: LanguagePlan, tokens: np.ndarray, cfg: DataConfig) -> dict:
    """meta.json's entry for one language. "tokens" count what is in the bin (a BOS per document included);
    tokens_per_byte and tokens_per_word (fertility) are of the training text alone, without the BOS."""
    unit = cfg.unit
    d, train, val = plan.docs, plan.train, plan.val
    tr, va = split_stats(d, train, tokens), split_stats(d, val, tokens)
    text_tokens = tr["tokens"] - tr["documents"]
    sources = {}
    for s, source in enumerate(d.sources):
        here = d.src == s
        entry = {"file": source.rel, "documents": int(here.sum()), "bytes": int(d.nbytes[here].sum())}
        if cfg.val_file and s == len(d.sources) - 1:
            entry["validation_file"] = True
        for split, mask in (("train", train), ("val", val)):
            entry.update({f"{split}_{k}": v for k, v in split_stats(d, mask & here, tokens).items()})
        sources[source.name] = entry
    budget = None if plan.budget is None else {"amount": as_number(plan.budget), "unit": unit,
                                               "in_own_units": round(plan.own_budget, 3)}
    return {
        "byte_premium": plan.premium,
        "word_unit": ("Han character, or run of other letters/digits" if d.lang in HAN_CHARACTER_WORDS
                      else "whitespace-separated"),
        "budget": budget,
        "train": tr, "val": va,
        "tokens_per_byte": round(text_tokens / max(tr["bytes"], 1), 6),
        "tokens_per_word": round(text_tokens / max(tr["words"], 1), 6),
        "skipped_lines": d.skipped,
        "duplicates": duplicates(d, train, val),
        "evaluation_sentences": eval_overlap(plan.eval_keys, plan.docs, plan.train, cfg.drop_eval_sentences),
        "sources": sources,
    }


def write_language(plan: LanguagePlan, tokenizer: Tokenizer, dtype, folder: str, cfg: DataConfig) -> tuple:
    """Step 5: encode one language's documents into folder/train.bin and folder/val.bin. With a budget in
    tokens, plan.train is the pool of candidates: all are encoded into a scratch file, the budget picks among them
    (the token count of a document is only known once it is encoded), and the chosen ones are copied over.
    Returns (train mask, tokens per document incl. its BOS)."""
    os.makedirs(folder)
    docs, train = plan.docs, plan.train
    by_tokens = cfg.unit == "tokens" and plan.own_budget is not None
    tokens = np.zeros(len(docs.src), np.int64)
    dest = np.zeros(len(docs.src), np.int8)  # 0: not used, 1: train (or candidate), 2: validation
    dest[train] = 1
    dest[plan.val] = 2
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
        chosen = select(docs, train, tokens, plan.own_budget, cfg.mode, cfg.seed, "tokens")
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


def write_data(folder: str, plans: dict, tokenizer: Tokenizer, tokenizer_info: dict, cfg: DataConfig,
               argv: list) -> dict:
    """Step 5 for every language, then the tokenizer file and meta.json, all into folder. Returns meta."""
    dtype = np.uint16 if tokenizer.vocab_size <= 65535 else np.uint32
    languages = {}
    for lang, plan in plans.items():
        plan.train, tokens = write_language(plan, tokenizer, dtype, os.path.join(folder, lang), cfg)
        languages[lang] = language_meta(plan, tokens, cfg)
    file = TOKENIZER_FILES[tokenizer.backend]
    with open(os.path.join(folder, file), "wb") as f:
        f.write(tokenizer.blob)
    meta = {
        "vocab_size": tokenizer.vocab_size, "dtype": np.dtype(dtype).name,
        "bos_id": tokenizer.bos_id, "eos_id": tokenizer.eos_id, "pad_id": tokenizer.pad_id,
        # the bins always hold [BOS d1 BOS d2 ...]; bos_input says whether the model reads that BOS
        "bos_in_bins": True, "bos_input": tokenizer.bos_input,
        "tokenizer": {"backend": tokenizer.backend, "file": file, "sha256": tokenizer.sha256,
                      "normalizer": tokenizer.normalizer, "encoder": tokenizer.encoder,
                      **({"encoder_note": tokenizer.encoder_note} if tokenizer.encoder_note else {}),
                      **tokenizer_info},
        "languages": languages,
        "selection": {"mode": cfg.mode, "unit": cfg.unit, "budget": cfg.budget, "seed": cfg.seed,
                      "val_fraction": None if cfg.val_docs is not None or cfg.val_file else cfg.val_fraction,
                      "val_docs": cfg.val_docs, "val_seed": cfg.val_seed, "val_file": cfg.val_file,
                      "on_bad_utf8": cfg.on_bad_utf8, "zh_script": cfg.zh_script,
                      "drop_eval_sentences": cfg.drop_eval_sentences},
        "command": "python tokenize_data.py " + shlex.join(argv),
    }
    write_json(os.path.join(folder, "meta.json"), meta, indent=1, ensure_ascii=False)
    return meta


def print_summary(meta: dict):
    """One row per language and split: documents, bytes, words, tokens, and tokens per byte and per word of
    the text alone (without the BOS of each document)."""
    print(f"{'lang':<5} {'split':<5} {'documents':>10} {'bytes':>12} {'words':>11} {'tokens':>11} "
          f"{'tok/byte':>8} {'tok/word':>8}")
    for lang, info in meta["languages"].items():
        for split in ("train", "val"):
            s = info[split]
            text_tokens = s["tokens"] - s["documents"]
            print(f"{lang:<5} {split:<5} {s['documents']:>10,} {s['bytes']:>12,} {s['words']:>11,} {s['tokens']:>11,} "
                  f"{text_tokens / max(s['bytes'], 1):>8.4f} {text_tokens / max(s['words'], 1):>8.4f}")
    for lang, info in meta["languages"].items():
        overlap = info["evaluation_sentences"]
        if overlap is None:
            print(f"{lang}: evaluation sentences not checked (no minimal-pair files found; see --eval-data)")
            continue
        print(f"{lang}: evaluation sentences found in training documents: " + "; ".join(
            f"{suite} {v['in_training']:,} of {v['sentences']:,} (in {v['training_documents']:,} documents)"
            for suite, v in overlap["suites"].items())
            + (" (those documents were dropped)" if overlap["dropped_from_training"] else ""))


# -----------------------------------------------------------------------------
# Main


def main(argv=None) -> dict:
    t_start = time.time()
    argv = sys.argv[1:] if argv is None else list(argv)
    cfg, explicit = parse_args(argv)
    check_out(cfg.out, cfg.force)
    try:
        # the output is written into a folder that becomes --out at the end; from here on we hold --out's
        # lock, so a second tokenize_data.py writing the same --out stops now, not after all its work
        with staged_folder(cfg.out) as folder:
            check_out(cfg.out, cfg.force)  # again, under the lock: another writer may have just finished
            reused = reuse_tokenizer(cfg, explicit) if cfg.tokenizer is not None else None
            normalize = normalizer_function(cfg.normalize) if not reused else \
                reused.normalize if reused.normalizer != "none" else None
            plans = plan_languages(cfg, explicit, normalize)                  # steps 1-3
            t_tokenizer = time.time()
            tokenizer, tokenizer_info = (reused, {}) if reused else make_tokenizer(cfg, plans)  # step 4
            if tokenizer.encoder_note:
                print(f"tokenizer: encoded by `tokenizers`, not tiktoken: {tokenizer.encoder_note}")
            t_encode = time.time()
            meta = write_data(folder, plans, tokenizer, tokenizer_info, cfg, argv)  # step 5
    except OSError as e:  # a full disk: the staged folder is gone, an earlier --out untouched
        raise SystemExit(f"{cfg.out}: cannot write the data ({e.strerror or e})")
    print_summary(meta)
    print(f"wrote {cfg.out} ({meta['dtype']}, vocab {tokenizer.vocab_size}) in {time.time() - t_start:.1f}s "
          f"(reading and splitting {t_tokenizer - t_start:.1f}s, tokenizer {t_encode - t_tokenizer:.1f}s, "
          f"encoding {time.time() - t_encode:.1f}s)")
    return meta


if __name__ == "__main__":
    main()
