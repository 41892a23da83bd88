"""
Our tokenizer as a Transformers tokenizer folder, and back: what export_hf.py writes beside the
weights so that AutoTokenizer gives exactly the ids training used.

    files = tokenizer_files(tokenizer, max_seq_len=512)   # {file name: text or bytes}
    tokenizer = load_hf_tokenizer("exports/model_a")      # our Tokenizer from such a folder

A ByteLevel BPE is a tokenizer.json already: it is written as it is, with a post-processor that
puts <s> first when training did (`bos_template`): the one place a tokenizer file says bos_input,
which otherwise lives in the Tokenizer (and a data folder's meta.json). A SentencePiece model or a
tiktoken vocabulary is converted into an equivalent tokenizer.json (tokenizer_backends.py:
spm_tokenizer_json, tiktoken_tokenizer_json), and its own file is written beside it so that
load_hf_tokenizer gives back the very tokenizer training used. tests/test_export_hf.py checks
AutoTokenizer's ids against ours for each backend, in Transformers 5.x; the files are also read by
4.51.3, the BabyLM 2025 pipeline's pin.
"""

import json
import os

from tokenizer import Tokenizer
from tokenizer_backends import spm_tokenizer_json, tiktoken_tokenizer_json


def bos_template(bos_id) -> dict:
    """tokenizers' TemplateProcessing for one document (and a pair), as JSON: "<s> $A" (and "<s> $A <s> $B"),
    the one Transformers builds for add_bos_token=True, for a tokenizer that reads BOS first (bos_id), or
    "$A" for one that does not (bos_id None: the Model A card's). Transformers 4.x and 5.x both apply
    tokenizer.json's post-processor as it is (5.x ignores add_bos_token when there is a tokenizer.json), so
    this is what makes AutoTokenizer(text) give encode_document(text); add_bos_token only documents it."""
    bos = [{"SpecialToken": {"id": "<s>", "type_id": 0}}] if bos_id is not None else []
    bos_b = [{"SpecialToken": {"id": "<s>", "type_id": 1}}] if bos_id is not None else []
    return {"type": "TemplateProcessing",
            "single": bos + [{"Sequence": {"id": "A", "type_id": 0}}],
            "pair": bos + [{"Sequence": {"id": "A", "type_id": 0}}] + bos_b + [{"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [bos_id], "tokens": ["<s>"]}} if bos_id is not None else {}}


def our_template(tokenizer: Tokenizer) -> dict:
    """The post-processor that makes AutoTokenizer(text) give tokenizer.encode_document(text)."""
    return bos_template(tokenizer.bos_id if tokenizer.bos_input else None)


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
        tok = spm_tokenizer_json(tokenizer.blob)
        extra["tokenizer.model"] = tokenizer.blob
    else:
        tok = tiktoken_tokenizer_json(tokenizer.inner)
        extra["tokenizer.tiktoken"] = tokenizer.blob
    old = tok.get("post_processor")  # None, or e.g. ByteLevel (offset trimming): keep it, then add BOS
    if old is not None and old.get("type") == "TemplateProcessing":
        # "<s> $A" or "$A", as data folders written before kept them: ours replaces it (tokenizers runs a
        # Sequence of two templates as <s> <s> <s> $A, and panics on a pair); our encode never applied it
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


def load_hf_tokenizer(folder: str) -> Tokenizer:
    """Our Tokenizer from an export: the SentencePiece or tiktoken file the export carries, or else the
    folder's tokenizer.json with the post-processor export added taken off again (our encode never adds
    specials; the data's tokenizer did not have it). Whether a document starts with BOS is read from that
    post-processor (starts_with_bos)."""
    path = os.path.join(folder, "tokenizer.json")
    if not os.path.isfile(path):
        raise SystemExit(f"{folder}: no tokenizer.json (only fast, tokenizers-library tokenizers are read)")
    with open(path, "rb") as f:
        blob = f.read()
    tok = json.loads(blob)
    bos_input = starts_with_bos(tok.get("post_processor"))
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
    ours = (bos_template(bos_id), bos_template(None))
    if pp in ours:
        tok["post_processor"] = None
    elif pp and pp.get("type") == "Sequence" and len(pp["processors"]) == 2 and pp["processors"][1] in ours:
        tok["post_processor"] = pp["processors"][0]
    tokenizer = Tokenizer("bpe", json.dumps(tok, ensure_ascii=False, indent=2).encode("utf-8"), bos_input)
    if tokenizer.eos_id is None:
        raise SystemExit(f"{path}: no </s> token (our model needs <s> as BOS, </s> as EOS)")
    return tokenizer


def starts_with_bos(post_processor) -> bool:
    """Whether a tokenizer.json's post-processor, a TemplateProcessing alone or last in a Sequence, puts <s>
    first (True when there is none: a tokenizer is taken to put BOS first)."""
    pp = post_processor or {}
    if pp.get("type") == "Sequence" and pp.get("processors"):
        pp = pp["processors"][-1]
    if pp.get("type") != "TemplateProcessing":
        return True
    first = pp["single"][0] if pp.get("single") else {}
    return first.get("SpecialToken", {}).get("id") == "<s>"
