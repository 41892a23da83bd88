"""
Our tokenizer as a Transformers tokenizer folder, and back: what export_hf.py writes beside the
weights so that AutoTokenizer gives exactly the ids training used.

    files = tokenizer_files(tokenizer, max_seq_len=512)   # {file name: text or bytes}
    tokenizer = load_hf_tokenizer("exports/model_a")      # our Tokenizer from such a folder

A ByteLevel BPE is a tokenizer.json already: it is written as it is, with a post-processor that
puts <s> first when training did (`our_template`). A SentencePiece model or a tiktoken vocabulary
is converted into an equivalent tokenizer.json (`spm_tokenizer_json`, `tiktoken_tokenizer_json`),
and its own file is written beside it so that load_hf_tokenizer gives back the very tokenizer
training used. tests/test_export_hf.py checks AutoTokenizer's ids against ours for each backend,
in Transformers 5.x; the files are also read by 4.51.3, the BabyLM 2025 pipeline's pin.
"""

import json
import os
import re

from tokenizer import (SPECIAL_TOKENS, Tokenizer, bos_in_post_processor, bytes_to_unicode, document_template,
                       with_document_template)


def bos_template(bos_id: int) -> dict:
    """tokenizers' TemplateProcessing "<s> $A" (and "<s> $A <s> $B" for pairs), as JSON: the one
    Transformers builds for add_bos_token=True. Transformers 4.x and 5.x both apply tokenizer.json's
    post-processor as it is (5.x ignores add_bos_token when there is a tokenizer.json), so this is
    what puts BOS first; add_bos_token in tokenizer_config.json only documents it."""
    return with_document_template({"added_tokens": [{"content": "<s>", "id": bos_id}]}, True)["post_processor"]


def our_template(tokenizer: Tokenizer) -> dict:
    """The post-processor that makes AutoTokenizer(text) give tokenizer.encode_document(text): "<s> $A" for
    a tokenizer that reads BOS first, "$A" for one that does not (the Model A card's)."""
    return bos_template(tokenizer.bos_id) if tokenizer.bos_input else document_template(False)


def tokenizer_files(tokenizer: Tokenizer, max_seq_len: int) -> dict:
    """{file name: text or bytes}: tokenizer.json, tokenizer_config.json, special_tokens_map.json, and for a
    SentencePiece or tiktoken tokenizer its own file too (tokenizer.model, tokenizer.tiktoken), which
    Transformers does not read but load_hf_tokenizer does, to give back the very tokenizer of training."""
    if tokenizer.bos_id is None or tokenizer.eos_id is None:
        raise SystemExit("tokenizer has no <s> / </s> special tokens; cannot export it")
    extra = {}
    if tokenizer.backend == "bpe":
        tok = json.loads(tokenizer.blob.decode("utf-8"))
    elif tokenizer.backend == "spm":
        tok = spm_tokenizer_json(tokenizer)
        extra["tokenizer.model"] = tokenizer.blob
    else:
        tok = tiktoken_tokenizer_json(tokenizer)
        extra["tokenizer.tiktoken"] = tokenizer.blob
    old = tok.get("post_processor")  # None, or e.g. ByteLevel (offset trimming): keep it, then add BOS
    if old is not None and old.get("type") == "TemplateProcessing":
        # tokenize_data.py's own "<s> $A" (or "$A"): ours replaces it (tokenizers runs a Sequence of two
        # templates as <s> <s> <s> $A, and panics on a pair); our encode never applied it
        old = None
    template = our_template(tokenizer)
    tok["post_processor"] = template if old is None else {"type": "Sequence", "processors": [old, template]}
    bos, eos, pad = tokenizer.special_names()
    specials = {"bos_token": bos, "eos_token": eos, "pad_token": pad}
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",  # never LlamaTokenizer: that is a SentencePiece model
        **specials,
        "add_bos_token": tokenizer.bos_input,
        "add_eos_token": False,
        "split_special_tokens": True,  # as our encode: a literal "<s>" in a text is text
        "clean_up_tokenization_spaces": False,  # so that decode(encode(t)) == t
        "model_max_length": max_seq_len,
        "padding_side": "right",
        # LLaMA takes no token_type_ids; without this, 4.x's PreTrainedTokenizerFast returns them and
        # model.generate(**tok(text, return_tensors="pt")) raises
        "model_input_names": ["input_ids", "attention_mask"],
    }
    return {"tokenizer.json": json.dumps(tok, ensure_ascii=False, indent=2),
            "tokenizer_config.json": json.dumps(config, indent=2),
            "special_tokens_map.json": json.dumps({k: v for k, v in specials.items() if v is not None}, indent=2),
            **extra}


def added_token(content: str, i: int) -> dict:
    return {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True}


def tiktoken_tokenizer_json(tokenizer: Tokenizer) -> dict:
    """A tiktoken vocabulary as a tokenizer.json (the conversion Transformers itself uses for tiktoken
    models): its split pattern, then bytes as ByteLevel characters; a BPE whose merges are every split of
    every token into two tokens, ordered by the rank of the token they make, and ignore_merges, so that a
    piece that is one token stays one, as tiktoken does. Then `tokenizers`' BPE makes, step by step, the
    lowest-ranked token it can, which is tiktoken's rule."""
    table = bytes_to_unicode()
    ranks = tokenizer.ranks
    as_text = {t: "".join(table[b] for b in t) for t in ranks}
    merges = sorted(((ranks[t], ranks[t[:i]], ranks[t[i:]]), as_text[t[:i]], as_text[t[i:]])
                    for t in ranks for i in range(1, len(t)) if t[:i] in ranks and t[i:] in ranks)
    specials = {**tokenizer.openai_special_tokens,
                **dict(zip(SPECIAL_TOKENS, (tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id)))}
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added_token(t, i) for t, i in sorted(specials.items(), key=lambda x: x[1])],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": onig_pattern(tokenizer.pattern)}, "behavior": "Isolated",
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


def spm_tokenizer_json(tokenizer: Tokenizer) -> dict:
    """A SentencePiece model as a tokenizer.json (as Transformers' own converter builds one for LLaMA): the
    space becomes "▁" (after a "▁" in front of the text when the model adds a dummy prefix), then
    - BPE: every split of every piece into two pieces is a merge, ordered by the piece's score, so that
      `tokenizers`' BPE, like SentencePiece's, joins the pair that makes the best-scored piece first;
    - unigram: the pieces with their scores, for the same best segmentation (Viterbi);
    with byte fallback for characters that are not pieces. Control, unknown and byte pieces are added
    tokens, never matched in text, as in SentencePiece. Only models that leave text as it is (identity
    normalization, whitespace kept: ours, and the original LLaMA's) are converted."""
    spec = read_spm_model(tokenizer.blob)
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
    import struct

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


def load_hf_tokenizer(folder: str) -> Tokenizer:
    """Our Tokenizer from an export: the SentencePiece or tiktoken file the export carries, or else the
    folder's tokenizer.json with the post-processor export added taken off again (our encode never adds
    specials; the data's tokenizer did not have it). Whether a document starts with BOS is read from that
    post-processor (our_template)."""
    path = os.path.join(folder, "tokenizer.json")
    if not os.path.isfile(path):
        raise SystemExit(f"{folder}: no tokenizer.json (only fast, tokenizers-library tokenizers are read)")
    with open(path, "rb") as f:
        blob = f.read()
    tok = json.loads(blob)
    bos_input = bos_in_post_processor(blob, default=True)
    for backend, name in (("spm", "tokenizer.model"), ("tiktoken", "tokenizer.tiktoken")):
        if os.path.isfile(os.path.join(folder, name)):
            with open(os.path.join(folder, name), "rb") as f:
                own = f.read()
            try:
                return Tokenizer(backend, own, bos_input)
            except Exception as e:
                raise SystemExit(f"{os.path.join(folder, name)}: not a readable {backend} tokenizer "
                                 f"({type(e).__name__}: {str(e)[:160]})")
    pp = tok.get("post_processor")
    bos_id = next((a["id"] for a in tok.get("added_tokens", []) if a["content"] == "<s>"), None)
    if bos_id is None:
        raise SystemExit(f"{path}: no <s> token (our model needs <s> as BOS, </s> as EOS)")
    ours = (bos_template(bos_id), document_template(False))
    if pp in ours:
        tok["post_processor"] = None
    elif pp and pp.get("type") == "Sequence" and len(pp["processors"]) == 2 and pp["processors"][1] in ours:
        tok["post_processor"] = pp["processors"][0]
    tokenizer = Tokenizer("bpe", json.dumps(tok, ensure_ascii=False, indent=2).encode("utf-8"), bos_input)
    if tokenizer.eos_id is None:
        raise SystemExit(f"{path}: no </s> token (our model needs <s> as BOS, </s> as EOS)")
    return tokenizer
