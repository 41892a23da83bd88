"""
Specification of tokenizer.py and bpe_fast.py: tiktoken encodes a ByteLevel BPE with exactly the ids
`tokenizers` gives, on every line of the shared corpora; the card's normalizer and BOS rule travel with the
tokenizer.

    python -m pytest tests/test_tokenizer.py -q
"""

import glob
import gzip
import hashlib
import json
import os
import sys
import unicodedata

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import bpe_fast  # noqa: E402
import tokenizer  # noqa: E402
from tokenizer import Tokenizer, train_tokenizer  # noqa: E402

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")
if not os.path.isdir(os.path.join(SHARED, "corpora")):
    pytest.skip(f"{SHARED}: the shared corpora are not here", allow_module_level=True)


def lines_of(pattern: str) -> list:
    """Every non-blank line of the files matching pattern, read independently of tokenize_data."""
    out = []
    for path in sorted(glob.glob(os.path.join(SHARED, pattern))):
        with gzip.open(path, "rb") as f:
            out += [line for line in f.read().decode("utf-8").split("\n") if line.strip()]
    return out


CORPORA = {lang: lines_of(f"corpora/{lang}/*.txt.gz") for lang in ("en", "nl", "zh")}
CARD = lines_of("model_a_corpus/en/*.txt.gz")


def reference(tok: Tokenizer, texts: list) -> list:
    """The ids `tokenizers` itself gives, from the tokenizer.json alone (normalizer included)."""
    from tokenizers import Tokenizer as HFTokenizer
    hf = HFTokenizer.from_str(tok.blob.decode("utf-8"))
    hf.encode_special_tokens = True
    return [e.ids for e in hf.encode_batch_fast(texts, add_special_tokens=False)]


@pytest.fixture(scope="module")
def ours():
    """Our recipe, 16,000 tokens, trained on every 4th line of each language (a quarter of the corpora)."""
    return train_tokenizer([t for lines in CORPORA.values() for t in lines[::4]], "bpe", 16000)


@pytest.fixture(scope="module")
def card():
    """The Model A card's recipe on its 2 MB: NFD -> Lowercase -> Strip, no BOS input."""
    return train_tokenizer(CARD, "bpe", 16000, normalize="nfd_lower_strip", recipe="model_a_card", bos_input=False)


# ---------------------------------------------------------------------------- tiktoken gives the same ids

@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "nl", "zh"])
def test_tiktoken_gives_the_ids_of_tokenizers_on_every_line_of_the_corpora(ours, lang):
    assert ours.encoder == "tiktoken" and ours.encoder_note == ""
    texts = CORPORA[lang]
    assert len(texts) > 40_000
    assert ours.encode_batch(texts) == reference(ours, texts)


@pytest.mark.slow
def test_tiktoken_gives_the_ids_of_tokenizers_with_the_cards_normalizer_too(card):
    """The normalizer runs in Python first (ASCII by a shortcut, the rest by `tokenizers`' own normalizer);
    tiktoken then encodes: the same ids as `tokenizers` with its normalizer, in Dutch and Chinese as well."""
    assert card.encoder == "tiktoken" and card.normalizer == "nfd_lower_strip"
    texts = CARD + lines_of("model_a_corpus/card_eval_A.txt.gz") + [t for v in CORPORA.values() for t in v[::4]]
    assert card.encode_batch(texts) == reference(card, texts)


@pytest.mark.slow
def test_a_tokenizer_tiktoken_cannot_take_is_encoded_by_tokenizers_with_a_note(ours):
    spec = json.loads(ours.blob)
    spec["model"]["byte_fallback"] = True
    other = Tokenizer("bpe", json.dumps(spec).encode())
    assert other.encoder == "tokenizers" and "byte_fallback" in other.encoder_note
    texts = CORPORA["nl"][:500]
    assert other.encode_batch(texts) == reference(other, texts) == ours.encode_batch(texts)


# ---------------------------------------------------------------------------- documents and BOS

@pytest.mark.slow
def test_documents_get_bos_by_the_tokenizers_rule_and_long_ones_are_cut_exactly(ours, card):
    long_english = " ".join(CORPORA["en"][:3000])           # ~250 KB: cut at spaces, as the whole encodes
    long_chinese = "".join(CORPORA["zh"][:3000])            # no spaces: cut at PIECE_CHARS
    mark = "a \uffff<doc>\uffff b \uffff<piece>\uffff c"    # holds the separators the joined encoding uses
    docs = ["The cat sat.", "", long_english, long_chinese, mark, "小猫在睡觉。"]
    pieces = bpe_fast.split_long(long_chinese)
    expected = [ours.encode(d) for d in docs[:3]] + [sum((ours.encode(p) for p in pieces), [])] + \
        [ours.encode(d) for d in docs[4:]]
    assert ours.encode(long_english) == expected[2]
    assert ours.encode_documents(docs) == [[ours.bos_id] + e for e in expected]
    assert ours.encode_documents(docs, bos=False) == expected
    ids, lengths = ours.encode_flat(docs)
    assert ids.dtype == np.uint32 and ids.tolist() == [i for e in expected for i in [ours.bos_id] + e]
    assert lengths.tolist() == [1 + len(e) for e in expected]
    # a tokenizer made without BOS input gives a document's ids alone; the flat (bin) layout keeps BOS
    assert card.bos_input is False
    assert card.encode_document("The Cat.") == card.encode("The Cat.")
    assert card.encode_flat(["The Cat."])[0].tolist() == [card.bos_id] + card.encode("the cat.")


def test_bos_input_travels_with_the_tokenizer(card, tmp_path):
    again = Tokenizer.from_dict(card.to_dict())
    assert again.bos_input is False and again.encode_document("A b") == card.encode("A b")
    # kept in one place: the Tokenizer (and a data folder's meta.json); the tokenizer.json does not say it
    # (an export's does, for Transformers: tests/test_export_hf.py)
    assert json.loads(card.blob)["post_processor"] is None
    flipped = Tokenizer(card.backend, card.blob, True)
    assert flipped.encode_document("A b") == [card.bos_id] + card.encode("A b")
    assert Tokenizer.from_dict({k: v for k, v in card.to_dict().items() if k != "bos_input"}).bos_input is True


def test_a_data_folder_written_before_reads_bos_input_from_its_meta_json(card, tmp_path):
    """Folders tokenized before bos_input lived in one place also wrote it into tokenizer.json's
    post-processor ("$A" here); meta.json has always said it, and the ids do not depend on the template."""
    spec = json.loads(card.blob)
    spec["post_processor"] = {"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}}],
                              "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                              "special_tokens": {}}
    blob = json.dumps(spec, ensure_ascii=False).encode("utf-8")
    (tmp_path / "tokenizer.json").write_bytes(blob)
    (tmp_path / "meta.json").write_text(json.dumps({"bos_input": False, "tokenizer": {
        "backend": "bpe", "file": "tokenizer.json", "sha256": hashlib.sha256(blob).hexdigest()}}))
    old = tokenizer.load_tokenizer(str(tmp_path))
    assert old.bos_input is False and old.encode_document("The Cat.") == card.encode_document("The Cat.")
    assert old.encode_flat(["A b", "c"])[0].tolist() == card.encode_flat(["A b", "c"])[0].tolist()


# ---------------------------------------------------------------------------- the card's normalizer and recipe

def test_the_cards_normalizer_lowercases_decomposes_accents_and_strips(card):
    text = "  Café ÉCOLE naïve\t"
    assert card.normalize(text) == "cafe\u0301 e\u0301cole nai\u0308ve"
    assert card.decode(card.encode(text)) == "cafe\u0301 e\u0301cole nai\u0308ve"
    assert card.encode("THE CAT") == card.encode("the cat") == card.encode("  the cat  ")
    # the ASCII shortcut is the normalizer itself: check it against `tokenizers` where they could part
    hf = tokenizer.hf_normalizer("nfd_lower_strip")
    for text in ["\x1c ABC \x1f", " \t\n\v\f\rX\r\n", "MIXED Case 123 !?", "İSTANBUL ΣΑΣ", "\u00a0nbsp\u3000",
                 "Ǆ ǅ ﬁ Å", "x\u0085"]:
        assert card.normalize(text) == hf.normalize_str(text), repr(text)
    assert unicodedata.is_normalized("NFD", card.normalize("Ångström café"))


def test_the_card_recipe_keeps_the_cards_16000_ids_and_adds_what_makes_any_text_encode(card):
    spec = json.loads(card.blob)
    vocab = spec["model"]["vocab"]
    seen = {c for t in CARD for c in card.normalize(t).encode("utf-8")}
    table = bpe_fast.bytes_to_unicode()
    alphabet = sorted(table[b] for b in seen)
    # the card's trainer: its alphabet (the data's bytes, sorted) first, then its merges, 16,000 in all
    assert [t for t, i in sorted(vocab.items(), key=lambda x: x[1])[:len(alphabet)]] == alphabet
    assert len(spec["model"]["merges"]) == 16000 - len(alphabet)
    assert vocab["Ġthe"] == 117 and vocab["Ġt"] == 113  # ids of the card's own tokenizer.json
    # then the bytes the data lacks and <s> </s> <pad>: every text encodes and decodes
    assert card.vocab_size == 256 + len(spec["model"]["merges"]) + 3
    assert (card.bos_id, card.eos_id, card.pad_id) == (card.vocab_size - 3, card.vocab_size - 2, card.vocab_size - 1)
    odd = "\x00\x01 ☃ 𝄞 ∑"
    assert card.decode(card.encode(odd)) == card.normalize(odd)


@pytest.mark.slow
def test_a_normalizer_tokenizers_may_hold_but_we_do_not_name_is_still_applied(ours):
    spec = json.loads(ours.blob)
    spec["normalizer"] = {"type": "Lowercase"}
    lower = Tokenizer("bpe", json.dumps(spec).encode())
    assert lower.normalizer == "other" and lower.encode("HET MEISJE") == ours.encode("het meisje")
