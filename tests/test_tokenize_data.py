"""
Specification of tokenize_data.py and corpus.py (its steps 1-3: scan, hold out, select), checked on small
samples of the real corpora in ../shared/data.

    python -m pytest tests/test_tokenize_data.py -q
"""

import base64
import collections
import dataclasses
import gzip
import hashlib
import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tokenize_data as td  # noqa: E402
import bpe_fast  # noqa: E402
import tokenizer  # noqa: E402
import tokenizer_backends  # noqa: E402
from atomic import staged_folder  # noqa: E402
from corpus import (count_words, find_sources, hold_out, iter_texts, parse_amount, parse_budget,  # noqa: E402
                    read_byte_premium, scan)

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")
CORPORA = os.path.join(SHARED, "corpora")
FOLDERS = {"eng": "en", "nld": "nl", "zho": "zh"}

if not os.path.isdir(CORPORA):
    pytest.skip(f"{CORPORA}: the shared corpora are not here", allow_module_level=True)


# ---------------------------------------------------------------------------- helpers

def real_lines(folder: str, name: str) -> list:
    """Lines of a real corpus file, read independently of tokenize_data (split at \\n only)."""
    with gzip.open(os.path.join(CORPORA, folder, name), "rb") as f:
        return [line for line in f.read().decode("utf-8").split("\n") if line.strip()]


def make_corpus(root, files: dict) -> str:
    """files: {"en/a.txt": list of lines or raw bytes}. Returns the corpus path."""
    for rel, content in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = content if isinstance(content, bytes) else "".join(line + "\n" for line in content).encode("utf-8")
        with (gzip.open(path, "wb") if rel.endswith(".gz") else open(path, "wb")) as f:
            f.write(data)
    return str(root)


def head(folder: str, name: str, max_bytes: int) -> list:
    lines, size = [], 0
    for line in real_lines(folder, name):
        if size >= max_bytes:
            break
        lines.append(line)
        size += len(line.encode("utf-8"))
    return lines


def run(corpus, out, *args) -> dict:
    return td.main(["--corpus", str(corpus), "--out", str(out), *map(str, args)])


def documents(out, lang: str, split: str, tok=None) -> list:
    """The documents of a bin: split at BOS, each decoded."""
    tok = tok or tokenizer.load_tokenizer(str(out))
    meta_dtype = np.uint16 if tok.vocab_size <= 65535 else np.uint32
    ids = np.fromfile(os.path.join(out, lang, f"{split}.bin"), dtype=meta_dtype)
    starts = list(np.flatnonzero(ids == tok.bos_id)) + [len(ids)]
    assert len(ids) == 0 or starts[0] == 0, "a bin starts with BOS"
    return [tok.decode(ids[a + 1:b]) for a, b in zip(starts, starts[1:])]


def han_words(text: str) -> int:
    """Independent count for Chinese: Han characters, plus runs of other letters/digits/underscore."""
    count, in_run = 0, False
    for c in text:
        o = ord(c)
        han = 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x3134F
        word = (c.isalnum() or c == "_") and not han
        count += han or (word and not in_run)
        in_run = word
    return count


def leftovers(parent) -> list:
    return sorted(n for n in os.listdir(parent) if ".tmp-" in n or ".old-" in n)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    """~40 KB from the start of every real source file, in the real folder layout (en/ nl/ zh/)."""
    root = tmp_path_factory.mktemp("corpus")
    files = {}
    for folder in ("en", "nl", "zh"):
        for name in sorted(os.listdir(os.path.join(CORPORA, folder))):
            files[f"{folder}/{name}"] = head(folder, name, 40_000)
    return make_corpus(root, files), files


@pytest.fixture(scope="module")
def data_dir(small_corpus, tmp_path_factory):
    """The small corpus tokenized with a freshly trained 1000-token BPE: other tests reuse its tokenizer."""
    out = tmp_path_factory.mktemp("data") / "small"
    run(small_corpus[0], out, "--vocab-size", 1000)
    return out


# ---------------------------------------------------------------------------- tokenizer

def test_round_trip_on_real_text_of_every_language(data_dir):
    tok = tokenizer.load_tokenizer(str(data_dir))
    assert (tok.backend, tok.vocab_size, tok.bos_id, tok.eos_id, tok.pad_id) == ("bpe", 1000, 0, 1, 2)
    for folder in ("en", "nl", "zh"):
        lines = []
        for name in sorted(os.listdir(os.path.join(CORPORA, folder))):
            lines += real_lines(folder, name)[::10]  # every 10th line of every file, most of it unseen in training
        assert len(lines) > 4000
        for line, ids in zip(lines, tok.encode_batch(lines)):
            assert ids == tok.encode(line)
            assert tok.decode(ids) == line
    tricky = ["  two leading spaces", "trailing ", "tab\tand\u00a0nbsp", "emoji 🦜 and 𠀀 (outside the BMP)",
              "<s> and </s> are text here", "a\rb", "e\u0301 combining", "▁ U+2581"]
    for text in tricky:
        ids = tok.encode(text)
        assert tok.decode(ids) == text
        assert tok.bos_id not in ids and tok.eos_id not in ids


def test_tokenizer_travels_as_plain_data(data_dir):
    tok = tokenizer.load_tokenizer(str(data_dir))
    again = tokenizer.Tokenizer.from_dict(tok.to_dict())
    assert again.sha256 == tok.sha256 == hashlib.sha256(open(data_dir / "tokenizer.json", "rb").read()).hexdigest()
    text = "Het meisje leest een boek. 她在看书。 The girl reads."
    assert again.encode(text) == tok.encode(text)
    assert tokenizer.load_tokenizer(str(data_dir / "tokenizer.json")).encode(text) == tok.encode(text)


def test_long_documents_are_encoded_in_pieces_exactly(data_dir):
    tok = tokenizer.load_tokenizer(str(data_dir))
    text = " ".join(real_lines("en", "ud_ewt.txt.gz")[:3000])  # ~230 KB, several pieces
    pieces = bpe_fast.split_long(text)
    assert len(pieces) > 3 and "".join(pieces) == text and max(map(len, pieces)) <= bpe_fast.PIECE_CHARS
    tokens, lengths = td.encode_documents(tok, [text], np.uint16)
    assert list(tokens) == [tok.bos_id] + tok.encode(text)  # cut at spaces: identical to the whole


def test_words_are_whitespace_words_or_han_characters():
    assert count_words("Hello,  world !", "eng") == 3
    assert count_words("我爱北京。Hello world 2024年", "zho") == 8  # 我 爱 北 京, Hello, world, 2024, 年
    line = real_lines("zh", "cmrc2018_wiki.txt.gz")[0]
    assert count_words(line, "zho") == han_words(line)


# ---------------------------------------------------------------------------- output layout

def test_bins_decode_back_to_the_source_documents(small_corpus, data_dir):
    import json
    meta = json.load(open(data_dir / "meta.json"))
    tok = tokenizer.load_tokenizer(str(data_dir))
    assert meta["dtype"] == "uint16" and meta["vocab_size"] == 1000 and meta["tokenizer"]["file"] == "tokenizer.json"
    assert meta["command"].startswith("python tokenize_data.py --corpus ")
    corpus, files = small_corpus
    for lang, folder in FOLDERS.items():
        source = [line for rel, lines in files.items() if rel.startswith(folder + "/") for line in lines]
        train, val = documents(data_dir, lang, "train", tok), documents(data_dir, lang, "val", tok)
        assert collections.Counter(train + val) == collections.Counter(source)
        it = iter(source)
        assert all(doc in it for doc in train), "training documents keep their file order"
        assert 0 < len(val) < 0.15 * len(source)
        info = meta["languages"][lang]
        for split, docs in (("train", train), ("val", val)):
            ids = np.fromfile(data_dir / lang / f"{split}.bin", dtype=np.uint16)
            words = sum(han_words(d) if lang == "zho" else len(d.split()) for d in docs)
            assert info[split] == {"tokens": len(ids), "documents": len(docs), "words": words,
                                   "bytes": sum(len(d.encode("utf-8")) for d in docs)}
        # the pipeline's ids are exactly [BOS] + encode(document), document after document
        ids = np.fromfile(data_dir / lang / "train.bin", dtype=np.uint16)
        expected = [i for d in train for i in [tok.bos_id] + tok.encode(d)]
        assert ids.tolist() == expected
        text_tokens = info["train"]["tokens"] - info["train"]["documents"]
        assert info["tokens_per_byte"] == round(text_tokens / info["train"]["bytes"], 6)
        assert info["tokens_per_word"] == round(text_tokens / info["train"]["words"], 6)
        assert sum(s["train_bytes"] for s in info["sources"].values()) == info["train"]["bytes"]
        assert sum(s["val_tokens"] for s in info["sources"].values()) == info["val"]["tokens"]


def test_validation_split_does_not_depend_on_seed_or_budget(small_corpus, data_dir, tmp_path):
    out = tmp_path / "other"
    run(small_corpus[0], out, "--tokenizer", data_dir, "--seed", 7, "--budget", "30K")
    for lang in FOLDERS:
        assert documents(out, lang, "val") == documents(data_dir, lang, "val")
        assert documents(out, lang, "train") != documents(data_dir, lang, "train")


def test_whether_a_document_is_held_out_depends_on_its_text_alone(tmp_path):
    lines = head("nl", "ud_nl.txt.gz", 30_000)
    others = head("nl", "commonvoice_nl.txt.gz", 30_000)
    alone = make_corpus(tmp_path / "a", {"nl/a.txt": lines})
    mixed = make_corpus(tmp_path / "b", {"nl/a.txt": others[:200] + lines[::-1], "nl/b.txt": others[200:]})

    def held_out(corpus):
        docs = scan("nld", find_sources(corpus)["nld"], "fail")
        return {text for _, text in iter_texts(docs, hold_out(docs, 0.05))}
    assert held_out(alone) and held_out(alone) == held_out(mixed) & set(lines)


# ---------------------------------------------------------------------------- budgets

@pytest.mark.slow
def test_round_robin_gives_equal_bytes_per_source(tmp_path, data_dir):
    files = {f"en/{n}": head("en", n, 60_000) for n in ("ud_ewt.txt.gz", "commonvoice_en.txt.gz",
                                                      "gutenberg_children_en.txt.gz")}
    files["en/african_storybook_en.txt.gz"] = head("en", "african_storybook_en.txt.gz", 10_000)
    corpus = make_corpus(tmp_path / "c", files)
    longest = max(len(line.encode("utf-8")) for lines in files.values() for line in lines)

    meta = run(corpus, tmp_path / "a", "--tokenizer", data_dir, "--mode", "round_robin", "--total-bytes", 32_000)
    got = [s["train_bytes"] for s in meta["languages"]["eng"]["sources"].values()]
    assert len(got) == 4 and max(got) - min(got) < longest  # 8 KB each, within one line
    assert 32_000 <= sum(got) < 32_000 + longest
    again = run(corpus, tmp_path / "b", "--tokenizer", data_dir, "--mode", "round_robin", "--total-bytes", 32_000)
    assert open(tmp_path / "a/eng/train.bin", "rb").read() == open(tmp_path / "b/eng/train.bin", "rb").read()

    # a source with less than its share gives all it has; the others share the rest equally
    meta = run(corpus, tmp_path / "c2", "--tokenizer", data_dir, "--mode", "round_robin", "--total-bytes", 120_000)
    src = meta["languages"]["eng"]["sources"]
    small = src["african_storybook_en"]
    assert small["train_documents"] + small["val_documents"] == small["documents"]  # all of it was taken
    others = [s["train_bytes"] for name, s in src.items() if name != "african_storybook_en"]
    assert max(others) - min(others) < longest and min(others) > 30_000 + 2_000
    assert 120_000 <= sum(s["train_bytes"] for s in src.values()) < 120_000 + longest


@pytest.mark.parametrize("unit", [pytest.param("bytes", marks=pytest.mark.slow),
                                  pytest.param("words", marks=pytest.mark.slow), "tokens", "eng_bytes"])
def test_a_budget_in_each_unit_is_reached_and_passed_by_less_than_one_document(small_corpus, data_dir, tmp_path, unit, monkeypatch):
    monkeypatch.setattr(td, "GATHER_DOCS", 7)  # a token budget copies the chosen documents in blocks: many here
    budget = 20_000 if unit != "words" else 3_000
    meta = run(small_corpus[0], tmp_path / unit, "--tokenizer", data_dir, "--budget", budget, "--unit", unit)
    # English-equivalent bytes, hand-computed with the table's premiums (nld 1.0516057206199363, zho 0.9359663917979646)
    own = {"eng": 20_000.0, "nld": 21_032.114412, "zho": 18_719.327836} if unit == "eng_bytes" else \
        {lang: float(budget) for lang in FOLDERS}
    key = {"bytes": "bytes", "eng_bytes": "bytes", "words": "words", "tokens": "tokens"}[unit]
    for lang in FOLDERS:
        info = meta["languages"][lang]
        assert info["budget"]["in_own_units"] == pytest.approx(own[lang], abs=1e-3)
        docs = documents(tmp_path / unit, lang, "train")
        tok = tokenizer.load_tokenizer(str(tmp_path / unit))
        sizes = {"bytes": [len(d.encode("utf-8")) for d in docs],
                 "words": [han_words(d) if lang == "zho" else len(d.split()) for d in docs],
                 "tokens": [len(tok.encode(d)) + 1 for d in docs]}[key]  # a document's tokens include its BOS
        assert info["train"][key] == sum(sizes)
        assert own[lang] <= sum(sizes) < own[lang] + max(sizes), "reaches the budget, passes it by < one document"


def test_budget_larger_than_the_data_fails_with_the_numbers(small_corpus, data_dir, tmp_path):
    with pytest.raises(SystemExit) as e:
        run(small_corpus[0], tmp_path / "x", "--tokenizer", data_dir, "--budget", "eng=5M")
    assert "eng: budget of 5,000,000 bytes but only" in str(e.value) and "available" in str(e.value)
    assert not os.path.exists(tmp_path / "x") and leftovers(tmp_path) == []
    with pytest.raises(SystemExit) as e:  # known only after encoding: still no partial output
        run(small_corpus[0], tmp_path / "y", "--tokenizer", data_dir, "--budget", "1M", "--unit", "tokens")
    assert "budget of 1,000,000 tokens but only" in str(e.value)
    assert not os.path.exists(tmp_path / "y") and leftovers(tmp_path) == []


def test_byte_premium_is_read_from_the_tables():
    table = os.path.join(SHARED, "byte_premium", "byte_coefs_20240233.tsv")
    merged = os.path.join(SHARED, "byte_premium", "all_merged_20240223.tsv")
    expected = {"eng": 1.0, "nld": 1.0516057206199363, "zho": 0.9359663917979646}  # the nllb values in the files
    assert read_byte_premium(table, list(expected)) == expected
    assert read_byte_premium(merged, list(expected)) == expected


def test_amounts_have_decimal_prefixes_and_budgets_name_languages():
    amounts = [parse_amount(text, "--budget") for text in ("2M", "500k", "1.5GB", "2000000", "3 MB")]
    assert amounts == [2e6, 5e5, 1.5e9, 2e6, 3e6]
    assert parse_budget("2M", ["eng", "zho"]) == {"eng": 2e6, "zho": 2e6}
    assert parse_budget("en=2M,nld=1.5M", ["eng", "nld", "zho"]) == {"eng": 2e6, "nld": 1.5e6}  # zho: all of it


# ---------------------------------------------------------------------------- determinism

@pytest.mark.slow
def test_same_seed_gives_byte_identical_output(small_corpus, tmp_path):
    def files(out):
        return {os.path.relpath(os.path.join(d, n), out): open(os.path.join(d, n), "rb").read()
                for d, _, names in os.walk(out) for n in names}
    args = ["--force", "--languages", "eng,nld", "--vocab-size", 600, "--budget", "25K", "--seed", 3]
    run(small_corpus[0], tmp_path / "d", *args)
    first = files(tmp_path / "d")
    run(small_corpus[0], tmp_path / "d", *args)  # the same command again, tokenizer training included
    assert files(tmp_path / "d") == first
    assert sorted(first) == ["eng/train.bin", "eng/val.bin", "meta.json", "nld/train.bin", "nld/val.bin",
                             "tokenizer.json"]
    run(small_corpus[0], tmp_path / "e", *args[:-1], 4)
    assert files(tmp_path / "e")["eng/train.bin"] != first["eng/train.bin"]


# ---------------------------------------------------------------------------- bad input

def test_invalid_utf8_fails_naming_file_and_line_or_is_skipped(tmp_path, data_dir):
    corpus = make_corpus(tmp_path / "c", {"en/a.txt": b"a good line\nbad \xff\xfe line\nanother line\n"})
    with pytest.raises(SystemExit) as e:
        run(corpus, tmp_path / "x", "--tokenizer", data_dir)
    assert f"{os.path.join(corpus, 'en', 'a.txt')}:2: invalid UTF-8" in str(e.value)
    assert not os.path.exists(tmp_path / "x") and leftovers(tmp_path) == []
    meta = run(corpus, tmp_path / "y", "--tokenizer", data_dir, "--on-bad-utf8", "skip", "--val-fraction", 0)
    assert meta["languages"]["eng"]["skipped_lines"]["bad_utf8"] == 1
    assert documents(tmp_path / "y", "eng", "train") == ["a good line", "another line"]


def test_an_empty_file_is_skipped_and_an_empty_language_is_one_line(tmp_path, data_dir, capsys):
    corpus = make_corpus(tmp_path / "c", {"en/a.txt": ["one", "two", "three"], "en/empty.txt": b"",
                                          "en/blank.txt.gz": b"\n  \n\n"})
    meta = run(corpus, tmp_path / "x", "--tokenizer", data_dir)
    assert "empty.txt: no text" in capsys.readouterr().out
    assert meta["languages"]["eng"]["sources"]["empty"]["documents"] == 0
    assert meta["languages"]["eng"]["skipped_lines"]["empty"] == 3
    corpus = make_corpus(tmp_path / "d", {"en/a.txt": ["one"], "nl/empty.txt": b"\n"})
    with pytest.raises(SystemExit) as e:
        run(corpus, tmp_path / "y", "--tokenizer", data_dir)
    assert f"{os.path.join(corpus, 'nl')}: no text in any of its 1 file(s)" in str(e.value)
    os.makedirs(tmp_path / "d" / "zh")
    with pytest.raises(SystemExit) as e:
        run(corpus, tmp_path / "y", "--tokenizer", data_dir, "--languages", "zho")
    assert "no .txt, .txt.gz, .train or .dev files" in str(e.value)


def test_an_unknown_language_folder_is_refused_unless_the_languages_are_chosen(tmp_path, data_dir):
    corpus = make_corpus(tmp_path / "c", {"en/a.txt": ["one"], "xx/a.txt": ["un"]})
    with pytest.raises(SystemExit) as e:
        run(corpus, tmp_path / "x", "--tokenizer", data_dir)
    assert "unknown language folder 'xx'" in str(e.value)
    run(corpus, tmp_path / "y", "--tokenizer", data_dir, "--languages", "en")  # chosen languages only: fine


def test_crlf_line_ends_give_the_same_tokens(tmp_path, data_dir, capsys):
    lines = head("nl", "ud_nl.txt.gz", 5_000)
    lf = make_corpus(tmp_path / "lf", {"nl/a.txt": "".join(l + "\n" for l in lines).encode()})
    crlf = make_corpus(tmp_path / "crlf", {"nl/a.txt": "".join(l + "\r\n" for l in lines).encode()})
    run(lf, tmp_path / "x", "--tokenizer", data_dir)
    run(crlf, tmp_path / "y", "--tokenizer", data_dir)
    assert f"{len(lines)} line(s) end in CRLF" in capsys.readouterr().out
    for split in ("train", "val"):
        assert open(tmp_path / f"x/nld/{split}.bin", "rb").read() == open(tmp_path / f"y/nld/{split}.bin", "rb").read()
    assert not any("\r" in d for d in documents(tmp_path / "y", "nld", "train"))


@pytest.mark.slow
def test_a_line_of_several_megabytes_is_kept_whole_as_one_document(tmp_path, data_dir, capsys):
    english = " ".join(real_lines("en", "commonvoice_en.txt.gz"))[:1_200_000]
    chinese = "".join(real_lines("zh", "commonvoice_zh.txt.gz"))[:300_000]  # ~0.9 MB without a single space
    huge = english + chinese
    corpus = make_corpus(tmp_path / "c", {"en/a.txt.gz": ["a short line", huge, "another short line"]})
    meta = run(corpus, tmp_path / "x", "--tokenizer", data_dir, "--val-fraction", 0)
    assert f"a.txt.gz:2: a {len(huge.encode()) / 1e6:.1f} MB line" in capsys.readouterr().out
    assert documents(tmp_path / "x", "eng", "train") == ["a short line", huge, "another short line"]
    assert meta["languages"]["eng"]["train"]["documents"] == 3


def test_a_second_writer_of_the_same_out_stops_before_reading_anything(tmp_path, data_dir, monkeypatch):
    """The lock on --out is taken at the start: a second tokenize_data.py does not redo the first's work
    only to fail when it comes to write."""
    import subprocess
    import textwrap
    from conftest import ROOT
    corpus = make_corpus(tmp_path / "c", {"en/a.txt": ["one", "two"]})
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {ROOT!r})
        from atomic import hold_lock
        f = hold_lock({str(tmp_path / ".out.lock")!r}, "x")
        print("held", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    read = []
    monkeypatch.setattr(td, "plan_languages", lambda *a: read.append(a))  # the first step that reads the corpus
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SystemExit, match=f"in use by another process \\(PID {holder.pid}\\)"):
            run(corpus, tmp_path / "out", "--tokenizer", data_dir)
        assert read == [] and leftovers(tmp_path) == [] and not os.path.exists(tmp_path / "out")
    finally:
        holder.kill()
        holder.wait()


def test_existing_output_is_not_overwritten_without_force(small_corpus, data_dir, tmp_path):
    corpus = make_corpus(tmp_path / "c", {"en/a.txt": ["one", "two"]})
    run(corpus, tmp_path / "out", "--tokenizer", data_dir)
    with pytest.raises(SystemExit) as e:
        run(corpus, tmp_path / "out", "--tokenizer", data_dir)
    assert "already exists (pass --force" in str(e.value)
    run(corpus, tmp_path / "out", "--tokenizer", data_dir, "--force")
    assert leftovers(tmp_path) == []
    os.makedirs(tmp_path / "mine")
    open(tmp_path / "mine" / "notes.txt", "w").write("precious")
    with pytest.raises(SystemExit) as e:
        run(corpus, tmp_path / "mine", "--tokenizer", data_dir, "--force")
    assert "not a data folder written by tokenize_data.py" in str(e.value)
    assert open(tmp_path / "mine" / "notes.txt").read() == "precious"


def test_the_next_run_removes_what_a_killed_run_left(tmp_path, data_dir):
    corpus = make_corpus(tmp_path / "c", {"en/a.txt": ["one", "two"]})
    killed = staged_folder(str(tmp_path / "out")).__enter__()  # a run killed while writing: its exit never ran
    open(os.path.join(killed, "train.bin"), "wb").write(bytes(1000))
    os.makedirs(tmp_path / ".other.tmp-1234")  # the temporary folder of another output: not this run's business
    assert leftovers(tmp_path) == sorted([os.path.basename(killed), ".other.tmp-1234"])
    run(corpus, tmp_path / "out", "--tokenizer", data_dir)
    assert leftovers(tmp_path) == [".other.tmp-1234"]
    assert os.path.isfile(tmp_path / "out" / "meta.json")


# ---------------------------------------------------------------------------- other backends

def test_the_sentencepiece_backend_round_trips_real_text_and_travels_as_plain_data(small_corpus, tmp_path):
    out = tmp_path / "spm"
    meta = run(small_corpus[0], out, "--backend", "spm", "--vocab-size", 3000, "--spm-character-coverage", 0.98,
               "--budget", "15K")
    assert meta["tokenizer"]["file"] == "tokenizer.model" and meta["tokenizer"]["spm_model_type"] == "bpe"
    tok = tokenizer.load_tokenizer(str(out))
    assert (tok.backend, tok.bos_id, tok.eos_id, tok.pad_id) == ("spm", 0, 1, 2)
    for lang, folder in FOLDERS.items():
        name = sorted(os.listdir(os.path.join(CORPORA, folder)))[-1]
        for line in real_lines(folder, name)[::50][:100]:
            assert tok.decode(tok.encode(line)) == line
        train = documents(out, lang, "train", tok)
        assert sum(len(d.encode()) for d in train) == meta["languages"][lang]["train"]["bytes"]
    assert tokenizer.Tokenizer.from_dict(tok.to_dict()).encode("twee woorden") == tok.encode("twee woorden")


def test_tiktoken_backend_needs_a_local_file(tmp_path, data_dir, monkeypatch):
    corpus = make_corpus(tmp_path / "c", {"en/a.txt": ["The cat sat on the mat.", "A dog ran.", "Then it slept."]})
    with pytest.raises(SystemExit) as e:
        run(corpus, tmp_path / "x", "--backend", "tiktoken")
    assert "local .tiktoken file" in str(e.value)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-cache"))
    with pytest.raises(SystemExit) as e:
        run(corpus, tmp_path / "x", "--backend", "tiktoken", "--tokenizer", "cl100k_base")
    assert "cl100k_base: no local copy" in str(e.value) and "cl100k_base.tiktoken" in str(e.value)
    with pytest.raises(SystemExit) as e:
        run(corpus, tmp_path / "x", "--backend", "tiktoken", "--tokenizer", tmp_path / "missing.tiktoken")
    assert "no such .tiktoken file" in str(e.value)
    assert not os.path.exists(tmp_path / "x")

    # a tiny encoding file, registered as if it were one of OpenAI's: the backend works end to end
    merges = [b"th", b"the", b" t", b" the", b"at", b" c", b" cat"]
    ranks = [bytes([i]) for i in range(256)] + merges
    blob = b"".join(base64.b64encode(t) + b" " + str(r).encode() + b"\n" for r, t in enumerate(ranks))
    (tmp_path / "tiny.tiktoken").write_bytes(blob)
    known = tokenizer_backends.TIKTOKEN_FILES
    monkeypatch.setitem(known, hashlib.sha256(blob).hexdigest(), {
        "name": "tiny", "url": "", "special_tokens": {"<|endoftext|>": 263}, "pat_str": known[next(iter(known))]["pat_str"]})
    meta = run(corpus, tmp_path / "t", "--backend", "tiktoken", "--tokenizer", tmp_path / "tiny.tiktoken",
               "--val-fraction", 0)
    assert (meta["vocab_size"], meta["bos_id"], meta["eos_id"], meta["pad_id"]) == (267, 264, 265, 266)
    assert meta["tokenizer"]["file"] == "tokenizer.tiktoken"
    tok = tokenizer.load_tokenizer(str(tmp_path / "t"))
    assert tok.encode("The cat") == [ord("T"), ord("h"), ord("e"), 262]  # " cat" is one token
    assert documents(tmp_path / "t", "eng", "train", tok) == ["The cat sat on the mat.", "A dog ran.", "Then it slept."]


# ---------------------------------------------------------------------------- command line

def test_model_a_and_total_bytes_are_shorthands(small_corpus, data_dir, tmp_path):
    cfg, _ = td.parse_args(["--out", "x", "--model-a"])
    assert (cfg.languages, cfg.mode, cfg.budget, cfg.unit) == ("eng", "round_robin", "2000000", "bytes")
    cfg, _ = td.parse_args(["--out", "x", "--mode", "round_robin", "--total-bytes", "2000000"])
    assert (cfg.mode, cfg.budget, cfg.unit) == ("round_robin", "2000000", "bytes")
    with pytest.raises(SystemExit) as e:  # a total for several languages would be ambiguous
        run(small_corpus[0], tmp_path / "x", "--tokenizer", data_dir, "--total-bytes", "10K")
    assert "--total-bytes is for one language; 3 found" in str(e.value)


BAD_VOCAB_SIZE_0 = ("config: --vocab-size 0: expected 259 to 1,048,576 for --backend bpe (the 256 byte tokens and "
                    "the special tokens come first)")


def test_user_errors_are_one_line_without_traceback(tmp_path):
    import subprocess
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tokenize_data.py")
    missing = str(tmp_path / "no-such-corpus")
    r = subprocess.run([sys.executable, script, "--corpus", missing, "--out", str(tmp_path / "x")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == f"{missing}: no such folder (expected a corpus folder with en/ nl/ zh/ sub-folders)\n"
    r = subprocess.run([sys.executable, script, "--corpus", missing, "--out", str(tmp_path / "x"), "--vocab-size", "0"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == "" and r.stderr == BAD_VOCAB_SIZE_0 + "\n"
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("args, message", [
    (["--vocab-size", "0"], BAD_VOCAB_SIZE_0),  # `tokenizers` would quietly make 259 tokens
    (["--vocab-size", "-5"], BAD_VOCAB_SIZE_0.replace(" 0:", " -5:")),
    (["--vocab-size", "4294967296"], BAD_VOCAB_SIZE_0.replace(" 0:", " 4294967296:")),  # its Rust trainer aborts
    (["--backend", "spm", "--vocab-size", "260"],
     BAD_VOCAB_SIZE_0.replace(" 0:", " 260:").replace("259", "261").replace("bpe", "spm")),
    (["--vocab-size", "16k"], "command line: --vocab_size=16k is not a valid int"),
    (["--backend", "wordpiece"], "config: --backend wordpiece: expected one of bpe, spm, tiktoken"),
    (["--spm-model-type", "char"], "config: --spm-model-type char: expected one of bpe, unigram"),
    (["--tokenizer-balance", "words"], "config: --tokenizer-balance words: expected one of eng_bytes, bytes"),
    (["--unit", "chars"], "config: --unit chars: expected one of bytes, words, tokens, eng_bytes"),
    (["--mode", "sequential"], "config: --mode sequential: expected one of random, round_robin"),
    (["--on-bad-utf8", "ignore"], "config: --on-bad-utf8 ignore: expected one of fail, skip"),
    (["--val-fraction", "1"], "config: --val-fraction 1.0: expected a number in [0, 1)"),
    (["--val-fraction", "-0.1"], "config: --val-fraction -0.1: expected a number in [0, 1)"),
    (["--val-docs", "0"], "config: --val-docs 0: expected at least 1 (or --val-fraction 0 for none)"),
    (["--spm-character-coverage", "0.5"], "config: --spm-character-coverage 0.5: expected a number in [0.98, 1]"),
    (["--spm-character-coverage", "1.5"], "config: --spm-character-coverage 1.5: expected a number in [0.98, 1]"),
    (["--normalize", "nfkc"], "config: --normalize nfkc: expected one of none, nfd_lower_strip"),
    (["--backend", "spm", "--normalize", "nfd_lower_strip"],
     "config: --normalize and --bpe-recipe are for --backend bpe, not spm"),
    (["--zh-script", "traditional"], "config: --zh-script traditional: expected one of as_is, simplified"),
    (["--budget", "lots"], "config: --budget 'lots': not an amount (examples: 2000000, 2M, 500K)"),
    (["--budget", "nan"], "config: --budget 'nan': not an amount (examples: 2000000, 2M, 500K)"),
    (["--budget", "0"], "config: --budget '0': must be positive"),
    (["--budget", "eng=2M,deu=1M"],
     "config: --budget eng=2M,deu=1M: 'deu' is not one of the languages (eng, nld, zho)"),
    (["--total-bytes", "-1M"], "config: --total-bytes '-1M': must be positive"),
    (["--tokenizer-sample", "0"], "config: --tokenizer-sample '0': must be positive"),
    (["--languages", "eng,deu"],
     "config: --languages eng,deu: unknown language 'deu' (known: en, eng, nl, nld, zh, zho)"),
    (["--vocab-sise", "600"], "command line: unknown config key 'vocab_sise'; did you mean 'vocab_size'?"),
])
def test_a_bad_value_stops_before_anything_is_read_or_written(tmp_path, args, message):
    with pytest.raises(SystemExit) as e:  # the corpus does not exist: its error would come if anything were read
        run(tmp_path / "no-such-corpus", tmp_path / "out", *args)
    assert str(e.value) == message
    assert os.listdir(tmp_path) == []


def test_out_is_required_and_must_not_go_through_a_file(tmp_path):
    missing = str(tmp_path / "no-such-corpus")
    with pytest.raises(SystemExit) as e:
        td.main(["--corpus", missing])
    assert str(e.value) == "config: --out: required (the data folder to write, e.g. --out data/eng_nld_zho)"
    (tmp_path / "notes.txt").write_text("precious")
    for out in (tmp_path / "notes.txt" / "data", tmp_path / "notes.txt" / "data" / "eng"):
        with pytest.raises(SystemExit) as e:
            td.main(["--corpus", missing, "--out", str(out)])
        assert str(e.value) == f"--out {out}: {tmp_path / 'notes.txt'} is a file, not a folder"
    assert os.listdir(tmp_path) == ["notes.txt"] and (tmp_path / "notes.txt").read_text() == "precious"


@pytest.mark.parametrize("flags", [
    ["--vocab-size", "600", "--val-fraction", "0.1", "--force", "--total-bytes", "1M"],
    ["--vocab_size=600", "--val_fraction=0.1", "--force=True", "--total_bytes=1M"],
    ["--vocab-size=600", "--val_fraction", "0.1", "--force", "--total-bytes=1M"],
])
def test_flags_are_spelt_with_dashes_or_underscores_and_take_a_value_after_a_space_or_an_equals_sign(flags):
    cfg, explicit = td.parse_args(["--out", "x", *flags])
    assert (cfg.vocab_size, cfg.val_fraction, cfg.force, cfg.budget, cfg.unit) == (600, 0.1, True, "1M", "bytes")
    assert explicit == {"out", "vocab_size", "val_fraction", "force", "budget", "unit", "total_bytes"}


def test_flags_given_win_over_the_model_a_shorthand():
    cfg, _ = td.parse_args(["--out", "x", "--budget", "1M", "--model_a", "--seed", "5"])
    assert (cfg.languages, cfg.mode, cfg.budget, cfg.unit, cfg.seed) == ("eng", "round_robin", "1M", "bytes", 5)


def test_help_lists_every_flag_and_the_shorthands(capsys):
    with pytest.raises(SystemExit) as e:
        td.parse_args(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "--model-a = --languages=eng --mode=round_robin --budget=2000000 --unit=bytes" in text
    assert all(f"--{f.name}=" in text for f in dataclasses.fields(td.DataConfig))


# ---------------------------------------------------------------------------- the Model A card's way

def test_the_model_a_card_preset_is_the_cards_tokenizer_and_data():
    cfg, explicit = td.parse_args(["--out", "x", "--model-a-card"])
    assert (cfg.corpus, cfg.languages, cfg.budget) == ("../shared/data/model_a_corpus", "eng", None)
    assert (cfg.vocab_size, cfg.bpe_recipe, cfg.normalize, cfg.bos_input) == (16000, "model_a_card", "nfd_lower_strip",
                                                                               False)
    assert cfg.val_file == "../shared/data/model_a_corpus/card_eval_A.txt.gz"
    cfg, _ = td.parse_args(["--out", "x", "--vocab-size", "8000", "--model-a-card"])  # flags given win
    assert cfg.vocab_size == 8000 and cfg.normalize == "nfd_lower_strip"
    with pytest.raises(SystemExit) as e:
        td.parse_args(["--out", "x", "--model-a", "--model-a-card"])
    assert str(e.value) == "command line: --model-a and --model-a-card: choose one"


@pytest.mark.slow
def test_model_a_card_data_holds_the_whole_2_mb_and_validates_on_the_cards_file(tmp_path):
    import json
    card = os.path.join(SHARED, "model_a_corpus")
    eval_file = os.path.join(card, "card_eval_A.txt.gz")
    meta = td.main(["--model-a-card", "--corpus", card, "--val-file", eval_file, "--out", str(tmp_path / "card")])
    assert json.load(open(tmp_path / "card" / "meta.json")) == meta
    assert (meta["bos_in_bins"], meta["bos_input"]) == (True, False)
    assert meta["tokenizer"]["normalizer"] == "nfd_lower_strip" and meta["tokenizer"]["recipe"] == "model_a_card"
    assert meta["tokenizer"]["encoder"] == "tiktoken"
    tok = tokenizer.load_tokenizer(str(tmp_path / "card"))
    assert tok.bos_input is False and tok.encode_document("The Cat") == tok.encode("the cat")

    def nonblank(path):
        with gzip.open(path, "rb") as f:
            return [line for line in f.read().decode("utf-8").split("\n") if line.strip()]
    corpus = [line for name in sorted(os.listdir(os.path.join(card, "en")))
              for line in nonblank(os.path.join(card, "en", name))]
    val = nonblank(eval_file)
    eng = meta["languages"]["eng"]
    assert (eng["train"]["documents"], eng["val"]["documents"]) == (len(corpus), len(val))  # all of it, no budget
    assert eng["sources"]["card_eval_A"]["validation_file"] and eng["budget"] is None
    # the bins still separate documents with BOS; a document decodes to its normalized text
    assert documents(tmp_path / "card", "eng", "val", tok) == [tok.normalize(t) for t in val]
    assert collections.Counter(documents(tmp_path / "card", "eng", "train", tok)) == \
        collections.Counter(tok.normalize(t) for t in corpus)
    with pytest.raises(SystemExit) as e:  # a validation file is a language's split: one language only
        td.main(["--corpus", CORPORA, "--val-file", eval_file, "--out", str(tmp_path / "x")])
    assert "--val-file is for one language; 3 found" in str(e.value)
    with pytest.raises(SystemExit) as e:
        td.main(["--model-a-card", "--corpus", card, "--val-file", eval_file, "--val-fraction", "0.1",
                 "--out", str(tmp_path / "x")])
    assert str(e.value) == "--val-file: give either --val-file or --val-fraction/--val-docs, not both"


# ---------------------------------------------------------------------------- clean splits

def test_duplicates_after_normalization_land_on_one_side_across_sources(tmp_path):
    """The same sentence, up to case and whitespace (the card's normalizer lower-cases), in three sources and
    twice in one: every copy is held out or none is, and meta.json counts them."""
    base = head("en", "ud_ewt.txt.gz", 20_000)
    others = head("en", "commonvoice_en.txt.gz", 20_000)
    shared = others[:60]
    corpus = make_corpus(tmp_path / "c", {
        "en/a.txt": base[:150] + shared + shared[:10],                  # 10 repeated inside one source
        "en/b.txt": [s.upper() for s in shared] + others[60:200],       # the same, in capitals
        "en/c.txt": ["  " + s.replace(" ", "   ") + " " for s in shared[:30]] + base[150:300]})  # extra spaces
    meta = run(corpus, tmp_path / "d", "--val-fraction", 0.3, "--normalize", "nfd_lower_strip", "--vocab-size", 500,
               "--bos-input=False")
    tok = tokenizer.load_tokenizer(str(tmp_path / "d"))
    train, val = documents(tmp_path / "d", "eng", "train", tok), documents(tmp_path / "d", "eng", "val", tok)
    key = lambda t: " ".join(t.split())  # noqa: E731  (the decoded documents are normalized already)
    assert not {key(t) for t in train} & {key(t) for t in val}
    assert any(key(tok.normalize(s)) in map(key, val) for s in shared)  # some of the shared ones are held out
    dup = meta["languages"]["eng"]["duplicates"]
    assert dup == {"repeated_documents": 10 + 60 + 30, "repeated_texts": 60, "texts_in_several_sources": 60,
                   "training_documents_in_validation": 0}
    assert meta["bos_input"] is False and meta["tokenizer"]["normalizer"] == "nfd_lower_strip"
    meta = run(corpus, tmp_path / "e", "--tokenizer", tmp_path / "d", "--val-fraction", 0.3)  # reused: same keys
    assert meta["languages"]["eng"]["duplicates"] == dup and meta["bos_input"] is False


def test_traditional_and_simplified_chinese_are_one_sentence_with_zh_script_simplified(tmp_path, data_dir):
    traditional = ["我們的電腦壞了，請幫忙修理。", "臺灣的頭髮很乾燥。", "這個問題很難。"]
    simplified = ["我们的电脑坏了，请帮忙修理。", "台湾的头发很干燥。", "这个问题很难。"]
    filler = head("zh", "commonvoice_zh.txt.gz", 6_000)
    corpus = make_corpus(tmp_path / "c", {"zh/trad.txt": traditional + filler[:40],
                                          "zh/simp.txt": simplified + filler[40:]})
    as_is = run(corpus, tmp_path / "a", "--tokenizer", data_dir, "--val-fraction", 0.5)
    assert as_is["languages"]["zho"]["duplicates"]["texts_in_several_sources"] == 0
    meta = run(corpus, tmp_path / "b", "--tokenizer", data_dir, "--val-fraction", 0.5, "--zh-script", "simplified")
    assert meta["languages"]["zho"]["duplicates"]["texts_in_several_sources"] == 3
    assert meta["selection"]["zh_script"] == "simplified"
    train, val = documents(tmp_path / "b", "zho", "train"), documents(tmp_path / "b", "zho", "val")
    for s in simplified:  # both copies, now in Simplified script, on one side
        assert (train.count(s), val.count(s)) in ((2, 0), (0, 2))
    assert not any(t in train + val for t in traditional)


def write_pairs(path, pairs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for good, bad in pairs:
            f.write(json.dumps({"sentence_good": good, "sentence_bad": bad, "UID": "made_up"}) + "\n")


def test_evaluation_sentences_in_the_training_data_are_counted_and_can_be_dropped(tmp_path, data_dir):
    evals = tmp_path / "evals"
    write_pairs(str(evals / "blimp" / "made_up.jsonl.gz"), [("The cats sleep.", "The cats sleeps."),
                                                            ("Who did she see?", "Who did she saw?")])
    write_pairs(str(evals / "blimp_supplement" / "more.jsonl.gz"), [("It rains.", "It rain.")])
    filler = head("en", "ud_ewt.txt.gz", 8_000)
    corpus = make_corpus(tmp_path / "c", {"en/a.txt": filler[:50] + [
        "The cats sleep.",                                   # a good sentence, a document of its own
        "We laughed. The cats sleeps. Then we went home.",   # a bad one, a sentence inside a document
        "Who did she see? Nobody knew.",                     # a good one, first sentence of a document
        "The cats sleep. It rains.",                         # two, of two suites
        "The cats sleep.\u00a0"] + filler[50:]})             # the same as the first, with other whitespace
    args = ["--tokenizer", data_dir, "--val-fraction", 0, "--eval-data", evals]
    meta = run(corpus, tmp_path / "a", *args)
    overlap = meta["languages"]["eng"]["evaluation_sentences"]
    assert overlap == {"suites": {"blimp": {"sentences": 4, "in_training": 3, "training_documents": 5},
                                  "blimp_supplement": {"sentences": 2, "in_training": 1, "training_documents": 1}},
                       "dropped_from_training": False}
    meta = run(corpus, tmp_path / "b", *args, "--drop-eval-sentences")
    assert documents(tmp_path / "b", "eng", "train") == filler
    assert meta["languages"]["eng"]["evaluation_sentences"]["suites"]["blimp"]["in_training"] == 0
    meta = run(corpus, tmp_path / "c2", "--tokenizer", data_dir, "--eval-data", tmp_path / "nothing")
    assert meta["languages"]["eng"]["evaluation_sentences"] is None
    with pytest.raises(SystemExit) as e:
        run(corpus, tmp_path / "d", "--tokenizer", data_dir, "--eval-data", tmp_path / "nothing",
            "--drop-eval-sentences")
    assert "--drop-eval-sentences: no minimal-pair files for eng" in str(e.value)


def test_pair_sentences_reads_every_pair_and_names_a_bad_line(tmp_path):
    from corpus import pair_sentences
    good = tmp_path / "p.jsonl"
    good.write_text('{"sentence_good": "A cat sleeps.", "sentence_bad": "A cat sleep."}\n\n'
                    '{"sentence_good": "Dogs run.", "sentence_bad": "Dogs runs.", "UID": "x"}\n')
    assert pair_sentences(str(good)) == ["A cat sleeps.", "A cat sleep.", "Dogs run.", "Dogs runs."]
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"sentence_good": "a", "sentence_bad": "b"}\n{"sentence_good": "c"}\n')
    with pytest.raises(SystemExit, match=r"q.jsonl:2: no 'sentence_bad'"):
        pair_sentences(str(bad))
    broken = tmp_path / "r.jsonl"
    broken.write_text('{"sentence_good": "a", "sentence_bad": "b"}\n\n{"sentence_good": "c",\n')
    with pytest.raises(SystemExit, match=r"r.jsonl:3: not valid JSON"):
        pair_sentences(str(broken))


def test_drop_repeats_trains_on_the_first_copy_of_each_text_only(tmp_path):
    lines = [f"sentence number {i} is here." for i in range(60)]
    repeats = ["yes.", "no.", "yes.", "sentence number 3 is here.", "yes."]
    corpus = make_corpus(tmp_path / "c", {"en/a.txt": lines + repeats})
    kept = run(corpus, tmp_path / "all", "--vocab-size", 300, "--val-fraction", 0)
    dropped = run(corpus, tmp_path / "once", "--vocab-size", 300, "--val-fraction", 0, "--drop-repeats")
    assert kept["languages"]["eng"]["train"]["documents"] == 65
    assert dropped["languages"]["eng"]["train"]["documents"] == 62  # 60 sentences, "yes.", "no."
    docs = documents(tmp_path / "once", "eng", "train")
    assert len(docs) == len(set(docs)) == 62
