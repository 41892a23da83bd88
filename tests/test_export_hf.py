"""
export_hf.py, as a specification: what Transformers loads from our export computes what our model
computes, token for token and logit for logit.

    python -m pytest tests/test_export_hf.py -q
"""

import glob
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from dataclasses import asdict

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import export_hf  # noqa: E402
import hf_tokenizer  # noqa: E402
import model_card  # noqa: E402
from model import ModelConfig, Transformer  # noqa: E402
import bpe_fast  # noqa: E402
import tokenizer_backends  # noqa: E402
from tokenizer import Tokenizer, train_tokenizer  # noqa: E402
from checkpoint import save_checkpoint  # noqa: E402

transformers = pytest.importorskip("transformers")
from safetensors import safe_open  # noqa: E402
import safetensors.torch  # noqa: E402
from tokenizers import Tokenizer as HFTokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402

REPO = os.path.join(os.path.dirname(__file__), "..")
DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
LANGS = ["en", "nl", "zh"]

MODEL_A = ModelConfig(dim=384, n_layers=6, n_heads=6, hidden_dim=1536, vocab_size=16000, max_seq_len=512)
GQA = ModelConfig(dim=64, n_layers=2, n_heads=8, n_kv_heads=2, hidden_dim=160, vocab_size=1000, max_seq_len=160,
                  rope_theta=500.0, norm_eps=1e-6)
TIED = ModelConfig(dim=48, n_layers=3, n_heads=4, n_kv_heads=4, hidden_dim=128, vocab_size=1000, max_seq_len=128,
                   tie_embeddings=True)
SHAPES = {"model_a": MODEL_A, "gqa": GQA, "tied": TIED}


# -----------------------------------------------------------------------------
# fixtures: a small ByteLevel BPE like tokenize_data.py's, random models, checkpoints in train.py's format


def corpus_lines(lang: str, start: int, stop: int) -> list:
    """Lines start..stop-1 of every file of one language of ../shared/data/corpora."""
    files = sorted(glob.glob(os.path.join(DATA, "corpora", lang, "*.txt.gz")))
    if not files:
        pytest.skip(f"no corpus at {os.path.join(DATA, 'corpora', lang)}")
    out = []
    for f in files:
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                if i >= stop:
                    break
                if i >= start and line.strip():
                    out.append(line.rstrip("\n"))
    return out


def train_bpe(lines, vocab_size=1000) -> HFTokenizer:
    tok = HFTokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(lines, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<s>", "</s>", "<pad>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return tok


FALLBACK_TEXT = ["The little dog ran to the park.", "De kat zit op de mat.", "小猫在睡觉。",
                 "She read a book about the sea.", "Het meisje leest een boek."] * 20


@pytest.fixture(scope="module")
def hf_bpe():
    """ByteLevel BPE trained on the first 100 lines of each file of en, nl and zh (a few hundred lines
    per language); without ../shared/data, on a few sentences, so that only the corpus test skips."""
    if not glob.glob(os.path.join(DATA, "corpora", "*", "*.txt.gz")):
        return train_bpe(FALLBACK_TEXT)
    return train_bpe([line for lang in LANGS for line in corpus_lines(lang, 0, 100)])


@pytest.fixture(scope="module")
def tokenizer(hf_bpe):
    return Tokenizer("bpe", hf_bpe.to_str().encode())


def random_model(cfg: ModelConfig, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    model = Transformer(ModelConfig(**asdict(cfg)))
    with torch.no_grad():  # norm gains of 1 would hide a swapped input/post-attention norm
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
    return model.eval()


def save_ckpt(path, model, tok, **extra):
    """A checkpoint in the format train.py writes; extra replaces entries of its info."""
    info = {"model_config": asdict(model.cfg),
            "config": {"lr": 3e-4, "batch_size": 16, "gradient_accumulation_steps": 4, "warmup_iters": 200},
            "tokenizer": tok.to_dict(), "data_meta": DATA_META, "iter_num": 100,
            "tokens_seen": 1_234_567, "words_seen": 1_000_123}
    info.update(extra)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_checkpoint(path, model, info)
    return path


DATA_META = {"vocab_size": 1000, "dtype": "uint16", "bos_id": 0, "eos_id": 1, "pad_id": 2,
             "tokenizer": {"backend": "bpe", "file": "tokenizer.json", "sha256": "ab" * 32},
             "languages": {"eng": {"byte_premium": 1.0,
                                   "train": {"tokens": 555_000, "bytes": 2_000_000, "words": 401_234,
                                             "documents": 9000},
                                   "val": {"tokens": 5000, "bytes": 20000, "words": 4000, "documents": 90},
                                   "sources": {"ud_ewt": {}, "gutenberg_children_en": {}}}},
             "command": "python tokenize_data.py ../shared/data/corpora data/model_a"}


def all_logits(model: Transformer, idx):
    """Our logits at every position: the forward pass returns them all only when given targets."""
    with torch.no_grad():
        logits, _ = model(idx, torch.zeros_like(idx))
    return logits


def hf_load(folder, **kw):
    return transformers.AutoModelForCausalLM.from_pretrained(folder, **kw).eval()


# -----------------------------------------------------------------------------
# the model


@pytest.mark.parametrize("shape", [pytest.param("model_a", marks=pytest.mark.slow), "gqa", "tied"])
def test_transformers_logits_equal_ours_at_positions_0_to_127(shape, tokenizer, tmp_path):
    model = random_model(SHAPES[shape])
    ckpt = save_ckpt(str(tmp_path / "run" / "ckpt.safetensors"), model, tokenizer)
    export_hf.main([ckpt, str(tmp_path / "out")])

    hf = hf_load(tmp_path / "out")
    idx = torch.randint(0, model.cfg.vocab_size, (2, 128), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        theirs = hf(idx).logits
    ours = all_logits(model, idx)
    assert theirs.shape == ours.shape == (2, 128, model.cfg.vocab_size)
    assert (theirs - ours).abs().max().item() < 1e-5
    assert ours.std().item() > 0.1  # the logits are not all near zero, so 1e-5 says something

    with safe_open(str(tmp_path / "out" / "model.safetensors"), "pt") as f:
        names = set(f.keys())
        assert f.metadata() == {"format": "pt"}
    assert ("lm_head.weight" in names) == (not model.cfg.tie_embeddings)
    assert len(names) == 2 + 9 * model.cfg.n_layers + (not model.cfg.tie_embeddings)


def test_config_json_spells_out_every_field(tokenizer, tmp_path):
    export_hf.export(random_model(GQA), tokenizer, str(tmp_path / "out"))
    with open(tmp_path / "out" / "config.json") as f:
        c = json.load(f)
    assert c["architectures"] == ["LlamaForCausalLM"] and c["model_type"] == "llama"
    assert {k: c[k] for k in ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                              "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings",
                              "rms_norm_eps", "rope_theta", "tie_word_embeddings", "bos_token_id", "eos_token_id",
                              "pad_token_id", "torch_dtype", "hidden_act", "attention_bias", "mlp_bias"]} == {
        "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 2,
        "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 8, "max_position_embeddings": 160,
        "rms_norm_eps": 1e-6, "rope_theta": 500.0, "tie_word_embeddings": False, "bos_token_id": 0,
        "eos_token_id": 1, "pad_token_id": 2, "torch_dtype": "float32", "hidden_act": "silu",
        "attention_bias": False, "mlp_bias": False}
    assert c["rope_scaling"] is None and c["rope_parameters"] == {"rope_type": "default", "rope_theta": 500.0}
    with open(tmp_path / "out" / "generation_config.json") as f:
        g = json.load(f)
    assert (g["bos_token_id"], g["eos_token_id"], g["pad_token_id"]) == (0, [1, 0], 2)


def test_greedy_generate_gives_our_tokens(tokenizer, tmp_path):
    model = random_model(GQA, seed=3)
    export_hf.export(model, tokenizer, str(tmp_path / "out"))
    hf = hf_load(tmp_path / "out")
    prompt = torch.tensor([[tokenizer.bos_id] + tokenizer.encode("The little dog")])
    ours = torch.cat([prompt, model.generate(prompt, max_new_tokens=24, temperature=0.0, stop_ids=tokenizer.end_ids)], 1)
    theirs = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=24, do_sample=False)
    assert ours.shape[1] > prompt.shape[1] + 1
    assert theirs.tolist() == ours.tolist()


def test_generate_ends_at_the_next_documents_bos(tokenizer, tmp_path):
    """Training puts BOS before every document and never an EOS: a model that predicts BOS has ended
    its document, and Transformers' generate() stops there (generation_config), as ours does."""
    model = random_model(GQA, seed=3)
    with torch.no_grad():  # every position's most likely next token is BOS
        model.output.weight.zero_()
    export_hf.export(model, tokenizer, str(tmp_path / "out"))
    hf = hf_load(tmp_path / "out")
    prompt = torch.tensor([[tokenizer.bos_id] + tokenizer.encode("The little dog")])
    theirs = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=24, do_sample=False)
    ours = torch.cat([prompt, model.generate(prompt, max_new_tokens=24, temperature=0.0, stop_ids=tokenizer.end_ids)], 1)
    assert tokenizer.bos_id == 0  # argmax of all-zero logits
    assert theirs.tolist() == ours.tolist() == [prompt[0].tolist() + [tokenizer.bos_id]]


@pytest.mark.parametrize("new_tokens", [20, 158])  # 158: generate() keeps only the prompt's last 2 tokens
def test_sample_prints_the_prompt_and_ends_at_bos(tokenizer, tmp_path, monkeypatch, capsys, new_tokens):
    import sample
    model = random_model(GQA, seed=3)
    with torch.no_grad():
        model.output.weight.zero_()  # BOS (id 0) first
    ckpt = save_ckpt(str(tmp_path / "ckpt.safetensors"), model, tokenizer)
    monkeypatch.setattr(sys, "argv", ["sample.py", ckpt, "--prompt", "The little dog", "--temperature", "0",
                                      "--max_new_tokens", str(new_tokens)])
    sample.main()
    assert capsys.readouterr().out == "The little dog\n"


def test_bfloat16_export_writes_bf16_tensors(tokenizer, tmp_path):
    model = random_model(TIED)
    ckpt = save_ckpt(str(tmp_path / "ckpt.safetensors"), model, tokenizer)
    export_hf.main([ckpt, str(tmp_path / "out"), "--dtype", "bfloat16"])
    with safe_open(str(tmp_path / "out" / "model.safetensors"), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    assert {t.dtype for t in tensors.values()} == {torch.bfloat16}
    assert torch.equal(tensors["model.layers.1.mlp.down_proj.weight"],
                       model.layers[1].feed_forward.w2.weight.detach().to(torch.bfloat16))
    with open(tmp_path / "out" / "config.json") as f:
        assert json.load(f)["torch_dtype"] == "bfloat16"


# -----------------------------------------------------------------------------
# the tokenizer


def test_autotokenizer_gives_our_ids_after_bos_in_english_dutch_chinese(tokenizer, tmp_path):
    export_hf.export(random_model(TIED), tokenizer, str(tmp_path / "out"))
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "out")
    assert "LlamaTokenizer" not in type(hf_tok).__name__
    assert (hf_tok.bos_token_id, hf_tok.eos_token_id, hf_tok.pad_token_id) == (0, 1, 2)
    for lang in LANGS:
        texts = corpus_lines(lang, 200, 220)  # lines the tokenizer was not trained on
        assert len(texts) >= 20
        for text in texts:
            ours = tokenizer.encode(text)
            assert hf_tok(text)["input_ids"] == [tokenizer.bos_id] + ours, (lang, text)
            assert hf_tok(text, add_special_tokens=False)["input_ids"] == ours
            assert hf_tok.decode(hf_tok(text)["input_ids"], skip_special_tokens=True) == text
    # a literal "<s>" in a text is text, as in our encode (split_special_tokens)
    assert hf_tok("a <s> b")["input_ids"] == [0] + tokenizer.encode("a <s> b")
    assert 0 not in tokenizer.encode("a <s> b")


def test_a_bytelevel_post_processor_is_kept_before_the_bos_template(hf_bpe, tmp_path):
    hf_bpe = HFTokenizer.from_str(hf_bpe.to_str())
    hf_bpe.post_processor = processors.ByteLevel(trim_offsets=True)
    tokenizer = Tokenizer("bpe", hf_bpe.to_str().encode())
    export_hf.export(random_model(TIED), tokenizer, str(tmp_path / "out"))
    with open(tmp_path / "out" / "tokenizer.json") as f:
        pp = json.load(f)["post_processor"]
    assert pp["type"] == "Sequence" and [p["type"] for p in pp["processors"]] == ["ByteLevel", "TemplateProcessing"]
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "out")
    assert hf_tok("De kat zit op de mat.")["input_ids"] == [0] + tokenizer.encode("De kat zit op de mat.")
    _, back = export_hf.load_hf(str(tmp_path / "out"))
    assert json.loads(back.blob) == json.loads(tokenizer.blob)


def test_the_bos_template_tokenize_data_writes_is_replaced_not_doubled(hf_bpe, tmp_path):
    """tokenize_data.py's tokenizer.json already carries TemplateProcessing "<s> $A": the export puts
    exactly one BOS before a text (not <s> <s> <s>), encodes pairs, and returns no token_type_ids,
    which Transformers 4.x's LLaMA generate(**tok(text)) refuses."""
    hf_bpe = HFTokenizer.from_str(hf_bpe.to_str())
    hf_bpe.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                          special_tokens=[("<s>", 0)])
    tokenizer = Tokenizer("bpe", hf_bpe.to_str().encode())
    export_hf.export(random_model(TIED), tokenizer, str(tmp_path / "out"))
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "out")
    a, b = "De kat zit op de mat.", "小猫在睡觉。"
    assert hf_tok(a)["input_ids"] == [0] + tokenizer.encode(a)
    assert hf_tok(a, b)["input_ids"] == [0] + tokenizer.encode(a) + [0] + tokenizer.encode(b)
    assert "token_type_ids" not in hf_tok(a)
    _, back = export_hf.load_hf(str(tmp_path / "out"))
    assert back.encode(a + b) == tokenizer.encode(a + b)


def export_tokenizer(tok: Tokenizer, folder) -> "transformers.PreTrainedTokenizerBase":
    """The export's tokenizer files alone in folder, loaded by AutoTokenizer."""
    os.makedirs(folder, exist_ok=True)
    for name, content in hf_tokenizer.tokenizer_files(tok, 512).items():
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(os.path.join(folder, name), mode) as f:
            f.write(content if isinstance(content, bytes) else content + "\n")
    return transformers.AutoTokenizer.from_pretrained(folder)


def unseen_lines(per_file: int = 60) -> list:
    """Lines 200.. of every corpus file (the tokenizers here were trained on lines 0..99), and texts that
    try the edges: runs of spaces and newlines, a literal <s>, capitals, accents, digits."""
    texts = [t for lang in LANGS for t in corpus_lines(lang, 200, 200 + per_file)]
    return texts + ["a  \n  b", "end  ", "  two leading spaces", "IT'S 123456 !!\n", "<s> is text here",
                    "Ünïcödé ÉCOLE naïve", "tab\tand\u00a0nbsp", "emoji 🦜 𠀀"]


@pytest.mark.parametrize("model_type", ["bpe", pytest.param("unigram", marks=pytest.mark.slow)])
def test_a_sentencepiece_tokenizer_exports_with_our_ids(model_type, tmp_path):
    texts = [t for lang in LANGS for t in corpus_lines(lang, 0, 100)]
    tok = train_tokenizer(texts, "spm", 3000, model_type, 0.98)
    hf_tok = export_tokenizer(tok, tmp_path / "out")
    assert "LlamaTokenizer" not in type(hf_tok).__name__
    for text in unseen_lines():
        assert hf_tok(text)["input_ids"] == tok.encode_document(text), text
    back = hf_tokenizer.load_hf_tokenizer(str(tmp_path / "out"))  # the very SentencePiece model of training
    assert (back.backend, back.blob, back.bos_input) == ("spm", tok.blob, True)


@pytest.mark.slow
def test_a_sentencepiece_model_made_like_the_original_llamas_exports_with_its_ids(tmp_path):
    """The original LLaMA tokenizer's settings: BPE, a dummy prefix (a "▁" before the text), <unk> <s> </s> as
    ids 0 1 2 and no padding token."""
    import io
    import sentencepiece
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter([t for lang in LANGS for t in corpus_lines(lang, 0, 100)]), model_writer=model,
        model_type="bpe", vocab_size=3000, byte_fallback=True, character_coverage=0.98,
        normalization_rule_name="identity", add_dummy_prefix=True, remove_extra_whitespaces=False,
        split_digits=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
    tok = Tokenizer("spm", model.getvalue())
    assert (tok.bos_id, tok.eos_id, tok.pad_id, tok.special_names()) == (1, 2, None, ("<s>", "</s>", None))
    hf_tok = export_tokenizer(tok, tmp_path / "out")
    assert (hf_tok.bos_token_id, hf_tok.eos_token_id, hf_tok.pad_token) == (1, 2, None)
    for text in unseen_lines():
        assert hf_tok(text)["input_ids"] == tok.encode_document(text), text
        assert hf_tok.decode(hf_tok(text)["input_ids"], skip_special_tokens=True) == tok.decode(tok.encode(text))


def test_a_tiktoken_vocabulary_exports_with_our_ids(hf_bpe, tmp_path, monkeypatch):
    """A tiktoken file (here: the ranks of a small BPE, registered as if it were OpenAI's, with cl100k's
    split pattern, whose possessive quantifiers and $ Oniguruma reads otherwise)."""
    import base64
    import hashlib
    ranks, _, _ = bpe_fast.tiktoken_ranks_from_bpe(json.loads(hf_bpe.to_str()))
    blob = b"".join(base64.b64encode(t) + b" " + str(r).encode() + b"\n"
                    for t, r in sorted(ranks.items(), key=lambda x: x[1]))
    known = tokenizer_backends.TIKTOKEN_FILES
    cl100k = next(v for v in known.values() if v["name"] == "cl100k_base")
    monkeypatch.setitem(known, hashlib.sha256(blob).hexdigest(), {"name": "made_up", "url": "", "pat_str": cl100k["pat_str"],
                                                                  "special_tokens": {"<|endoftext|>": 1000}})
    tok = Tokenizer("tiktoken", blob)
    assert (tok.bos_id, tok.eos_id, tok.pad_id) == (1001, 1002, 1003)
    hf_tok = export_tokenizer(tok, tmp_path / "out")
    for text in unseen_lines():
        assert hf_tok(text)["input_ids"] == tok.encode_document(text), text
    assert hf_tok("a <|endoftext|> b", add_special_tokens=False)["input_ids"] == tok.encode("a <|endoftext|> b")
    back = hf_tokenizer.load_hf_tokenizer(str(tmp_path / "out"))
    assert (back.backend, back.blob) == ("tiktoken", blob)


def test_the_model_a_card_tokenizer_exports_without_bos_and_with_its_normalizer(tmp_path):
    texts = [t for lang in LANGS for t in corpus_lines(lang, 0, 100)]
    card = train_tokenizer(texts, "bpe", 1000, normalize="nfd_lower_strip", recipe="model_a_card", bos_input=False)
    hf_tok = export_tokenizer(card, tmp_path / "out")
    for text in unseen_lines():
        assert hf_tok(text)["input_ids"] == card.encode_document(text) == card.encode(text), text
    assert hf_tok("  The CAFÉ ")["input_ids"] == card.encode("the cafe\u0301")
    config = json.loads((tmp_path / "out" / "tokenizer_config.json").read_text())
    assert config["add_bos_token"] is False
    back = hf_tokenizer.load_hf_tokenizer(str(tmp_path / "out"))
    assert back.bos_input is False and back.normalizer == "nfd_lower_strip"
    assert json.loads(back.blob)["post_processor"] is None and back.encode("Éa b") == card.encode("Éa b")


# -----------------------------------------------------------------------------
# the way back


def test_load_hf_round_trip_gives_identical_logits_and_tokenizer(tokenizer, tmp_path):
    model = random_model(GQA, seed=5)
    export_hf.export(model, tokenizer, str(tmp_path / "out"))
    back, back_tok = export_hf.load_hf(str(tmp_path / "out"))
    assert asdict(back.cfg) == asdict(model.cfg)
    idx = torch.randint(0, 1000, (1, 128), generator=torch.Generator().manual_seed(2))
    assert torch.equal(all_logits(back.eval(), idx), all_logits(model, idx))
    # the tokenizer comes back as the data's tokenizer: same file content, BOS template taken off
    assert json.loads(back_tok.blob) == json.loads(tokenizer.blob)
    text = "Het meisje leest een boek. 小猫在睡觉。"
    assert back_tok.encode(text) == tokenizer.encode(text)
    assert (back_tok.bos_id, back_tok.eos_id, back_tok.pad_id) == (0, 1, 2)


def test_load_hf_reads_transformers_own_save_pretrained(tokenizer, tmp_path):
    model = random_model(TIED, seed=6)
    export_hf.export(model, tokenizer, str(tmp_path / "out"))
    hf_load(tmp_path / "out").save_pretrained(tmp_path / "saved")
    transformers.AutoTokenizer.from_pretrained(tmp_path / "out").save_pretrained(tmp_path / "saved")
    back, back_tok = export_hf.load_hf(str(tmp_path / "saved"))
    assert back.cfg.tie_embeddings and back.cfg.n_layers == 3
    idx = torch.randint(0, 1000, (1, 128), generator=torch.Generator().manual_seed(3))
    assert torch.equal(all_logits(back.eval(), idx), all_logits(model, idx))
    assert back_tok.encode("The cat.") == tokenizer.encode("The cat.")


# -----------------------------------------------------------------------------
# the model card


def test_model_card_has_architecture_data_hyperparameters_and_eval(tokenizer, tmp_path):
    ckpt = save_ckpt(str(tmp_path / "ckpt.safetensors"), random_model(GQA), tokenizer)
    with open(tmp_path / "blimp.json", "w") as f:
        json.dump({"blimp": {"macro": 0.5723, "micro": 0.5811, "pairs": 67000}}, f)
    export_hf.main([ckpt, str(tmp_path / "model_x"), "--eval", str(tmp_path / "blimp.json")])
    card = (tmp_path / "model_x" / "README.md").read_text()
    assert card.startswith("---\nlanguage:\n- en\nlicense: apache-2.0\n")
    for line in ["# model_x", "| key/value heads | n_kv_heads | num_key_value_heads | 2 |",
                 "| MLP width (SwiGLU) | hidden_dim | intermediate_size | 160 |",
                 "| eng | 401,234 | 555,000 | 2,000,000 | 9,000 | 1.0 | ud_ewt, gutenberg_children_en |",
                 "Budget: 401,234 training words", "| lr | `0.0003` |", "| blimp.macro | 0.5723 |",
                 "| blimp.pairs | 67,000 |", "1,000,123 words and 1,234,567 tokens",
                 'AutoModelForCausalLM.from_pretrained("model_x")']:
        assert line in card, line
    assert "Budget: 401,234 training words in total (this revision: 2.49 epochs)" in card
    assert json.loads((tmp_path / "model_x" / "eval_results.json").read_text())["blimp"]["macro"] == 0.5723
    assert "## Data mixing" not in card  # no mixer, no section
    assert "moving average" not in card
    ema = save_ckpt(str(tmp_path / "ema.safetensors"), random_model(GQA), tokenizer, weights="ema",
                    config={"lr": 3e-4, "ema_decay": 0.999})
    export_hf.main([ema, str(tmp_path / "model_ema")])
    assert "exponential moving average of its weights (`ema_decay` 0.999), not its last weights" in \
        (tmp_path / "model_ema" / "README.md").read_text()


# the Model A card recipe's meta.json (tokenize_data.py --model-a-card): card_eval_A is the validation split
CARD_META = {**DATA_META, "bos_input": False,
             "languages": {"eng": {**DATA_META["languages"]["eng"], "sources": {
                 "ud_ewt": {"file": "eng/ud_ewt.txt.gz", "documents": 5000, "train_documents": 5000},
                 "card_eval_A": {"file": "card_eval_A.txt.gz", "documents": 90, "val_documents": 90,
                                 "train_documents": 0, "validation_file": True}}}}}
# an eval_blimp.py --out result, cut down to what the card reads
CARD_EVAL = {"settings": {"protocol": "card", "headline": "micro", "tie_credit": 0.0, "bos": False,
                          "leading_space": False, "fast": True},
             "suites": {"blimp": {"total": {"n": 13400, "micro": 0.5791044776119403, "macro": 0.5791044776119404},
                                  "headline": 0.5791044776119403},
                        "blimp_supplement": {"total": {"n": 1059, "micro": 0.51, "macro": 0.52}, "headline": 0.51}}}


def front_matter(card: str) -> dict:
    yaml = pytest.importorskip("yaml")  # PyYAML, a dependency of transformers
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_a_no_bos_models_card_and_tokenizer_say_what_training_and_lm_eval_do(tokenizer, tmp_path):
    """The Model A card's way (bos_input False): the tokenizer adds no <s>, the card says so, says that
    scoring leaves the first token as context, and says that lm-eval puts <s> first anyway."""
    no_bos = Tokenizer("bpe", tokenizer.blob, bos_input=False)
    ckpt = save_ckpt(str(tmp_path / "ckpt.safetensors"), random_model(GQA), no_bos, data_meta=CARD_META,
                     config={"lr": 3e-4, "track": "strict-small"})
    with open(tmp_path / "blimp.json", "w") as f:
        json.dump(CARD_EVAL, f)
    export_hf.main([ckpt, str(tmp_path / "card"), "--eval", str(tmp_path / "blimp.json")])
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "card")
    text = "The cat sat on the mat."
    assert hf_tok(text)["input_ids"] == no_bos.encode(text) and hf_tok(text)["input_ids"][0] != no_bos.bos_id
    assert json.loads((tmp_path / "card" / "tokenizer_config.json").read_text())["add_bos_token"] is False
    card = (tmp_path / "card" / "README.md").read_text()
    assert "the exported tokenizer adds that `<s>` itself" not in card and "starts with <s>" not in card
    assert "conditioned on the BOS token" not in card and "puts `<s>` before every text" not in card
    for line in ["trained without a BOS token", "the first token is context only",
                 "**lm-eval scores this model otherwise than it was trained.**", "`prefix_token_id`",
                 "agree on 494 of 500 pairs", "BabyLM track: **strict-small**",
                 "| eng | 401,234 | 555,000 | 2,000,000 | 9,000 | 1.0 | ud_ewt |",
                 "Validation only, not trained on (eng): `card_eval_A` (`card_eval_A.txt.gz`, 90 documents)",
                 "Headline accuracies (eval_blimp.py protocol `card`, micro average, no BOS, first token not scored, "
                 "fast subset): BLiMP 57.9% (13,400 pairs); BLiMP supplement 51.0% (1,059 pairs)."]:
        assert line in card, line


def test_the_cards_front_matter_holds_the_scores_track_and_words_seen_as_the_hub_reads_them(tokenizer, tmp_path):
    ckpt = save_ckpt(str(tmp_path / "ckpt.safetensors"), random_model(GQA), tokenizer,
                     config={"lr": 3e-4, "track": "strict-small"})
    with open(tmp_path / "blimp.json", "w") as f:
        json.dump(CARD_EVAL, f)
    export_hf.main([ckpt, str(tmp_path / "m"), "--eval", str(tmp_path / "blimp.json")])
    meta = front_matter((tmp_path / "m" / "README.md").read_text())
    assert "babylm-strict-small" in meta["tags"] and meta["language"] == ["en"]
    assert meta["babylm"] == {"track": "strict-small", "words_seen": 1_000_123, "tokens_seen": 1_234_567,
                              "revision": "main"}
    (index,) = meta["model-index"]
    assert index["name"] == "m"
    got = {r["dataset"]["type"]: r["metrics"][0] for r in index["results"]}
    assert {k: m["value"] for k, m in got.items()} == {k: r["headline"] for k, r in CARD_EVAL["suites"].items()}
    assert all(m["type"] == "accuracy" and "protocol `card`" in m["name"] for m in got.values())
    assert all(r["task"]["type"] == "text-generation" for r in index["results"])
    assert [r["dataset"]["name"] for r in index["results"]] == ["BLiMP", "BLiMP supplement"]
    card = (tmp_path / "m" / "README.md").read_text()
    assert "conditioned on the BOS token `<s>`" in card and "starts with <s> (id 0)" in card


# what Mixer.summary() stores in a checkpoint's info: the TAAM reference run's final pi (config/taam.py)
PSTAR_MIXER = {"mixer": "taam", "reward": "cross_lingual_deficit", "prior": "typological",
               "pi": {"eng": 0.159, "nld": 0.258, "zho": 0.583},
               "unique": {"eng": 500_000, "nld": 480_000, "zho": 520_000},
               "exposures": {"eng": 1_250_000, "nld": 1_440_000, "zho": 3_640_000},
               "epochs": {"eng": 2.5, "nld": 3.0, "zho": 7.0}}


def test_a_mixer_runs_card_reports_the_mixer_the_final_pi_and_each_languages_exposures(tokenizer, tmp_path):
    languages = {lang: {**DATA_META["languages"]["eng"], "sources": {}} for lang in ("eng", "nld", "zho")}
    ckpt = save_ckpt(str(tmp_path / "ckpt.safetensors"), random_model(GQA), tokenizer, mixer=PSTAR_MIXER,
                     data_meta={**DATA_META, "languages": languages})
    export_hf.main([ckpt, str(tmp_path / "taam")])
    card = (tmp_path / "taam" / "README.md").read_text()
    assert card.startswith("---\nlanguage:\n- en\n- nl\n- zh\n")
    for line in ["## Data mixing",
                 "mixed online by `taam` with the reward `cross_lingual_deficit` (prior `typological`)",
                 "Final π: eng=0.159 nld=0.258 zho=0.583",
                 "| language | final π | unique tokens | token exposures | epochs |",
                 "| eng | 0.159 | 500,000 | 1,250,000 | 2.50 |",
                 "| nld | 0.258 | 480,000 | 1,440,000 | 3.00 |",
                 "| zho | 0.583 | 520,000 | 3,640,000 | 7.00 |",
                 "(the mixer's budget and epochs per language: see Data mixing)"]:
        assert line in card, line
    assert "this revision:" not in card  # words seen over all the data's words is not the mixer's epochs
    static = model_card.model_card(random_model(GQA), "float32", {"mixer": {
        **PSTAR_MIXER, "mixer": "static", "reward": None, "prior": "uniform", "pi": {l: 1 / 3 for l in languages}}})
    assert "by `static`: each micro-batch's language is drawn from a fixed π, the prior `uniform`." in static
    assert "Final π: eng=0.333 nld=0.333 zho=0.333" in static and "reward" not in static


# -----------------------------------------------------------------------------
# --all: the BabyLM checkpoint branches


def git(repo, *args):
    return subprocess.run(["git", f"--git-dir={repo}/.git", *args], check=True, capture_output=True).stdout


def checkout(repo, rev, dest):
    """The files of one revision, through git archive (no checkout in the repository under test)."""
    with tarfile.open(fileobj=io.BytesIO(git(repo, "archive", "--format=tar", rev))) as tar:
        tar.extractall(dest, filter="data")
    return dest


def make_run(run, tokenizer, prefix="chck_"):
    """A run folder as train.py leaves it: milestones 1M, 2M, 10M (10 sorts after 2) and the final ckpt;
    prefix "chck_tok_" for a run with milestone_unit=tokens."""
    models = {}
    # train.py counts words as a float (tokens times an average of words per token)
    for i, (n, words) in enumerate([("1M", 1_000_049.6), ("2M", 2_000_100.0), ("10M", 10_000_400.2)]):
        name = prefix + n
        models[name] = random_model(TIED, seed=10 + i)
        save_ckpt(f"{run}/checkpoints/{name}.safetensors", models[name], tokenizer, words_seen=words,
                  tokens_seen=round(words * 1.3), data_meta=None)
    models["main"] = random_model(TIED, seed=20)
    save_ckpt(f"{run}/ckpt.safetensors", models["main"], tokenizer, words_seen=12_000_000.0, tokens_seen=15_600_000)
    with open(f"{run}/checkpoints/notes.txt", "w") as f:
        f.write("not a checkpoint\n")
    return models


@pytest.mark.slow
def test_all_makes_one_repo_with_a_loading_branch_per_checkpoint(tokenizer, tmp_path):
    run, repo = str(tmp_path / "run"), str(tmp_path / "repo")
    models = make_run(run, tokenizer)
    export_hf.main(["--all", run, repo])

    branches = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads").decode().split()
    assert sorted(branches) == sorted(["chck_1M", "chck_2M", "chck_10M", "main"])
    log = git(repo, "log", "--format=%s", "main").decode().splitlines()
    assert [s.split(":")[0] for s in log] == ["main", "chck_10M", "chck_2M", "chck_1M"]  # newest first
    idx = torch.randint(0, 1000, (1, 128), generator=torch.Generator().manual_seed(4))
    for branch, model in models.items():
        folder = checkout(repo, branch, tmp_path / "co" / branch)
        with torch.no_grad():
            theirs = hf_load(folder)(idx).logits
        assert (theirs - all_logits(model, idx)).abs().max().item() < 1e-5, branch
    card = git(repo, "show", "main:README.md").decode()
    assert "| `chck_1M` | 1,000,050 | 1,300,064 |" in card and "| `chck_10M` | 10,000,400 |" in card
    assert "12,000,000 words" in card
    branch_card = git(repo, "show", "chck_2M:README.md").decode()
    assert "# repo at checkpoint `chck_2M`" in branch_card and "2,000,100 words" in branch_card
    assert "| eng | 401,234 |" in branch_card  # the run's data_meta, which milestones leave out
    assert git(repo, "show", "chck_1M:.gitattributes").decode() == export_hf.GITATTRIBUTES

    # fixed author, committer and dates: the same run gives the same commit ids
    again = str(tmp_path / "again" / "repo")
    export_hf.main(["--all", run, again])
    assert git(repo, "rev-parse", "main", "chck_1M") == git(again, "rev-parse", "main", "chck_1M")


@pytest.mark.slow
def test_all_makes_branches_of_token_milestones_too_under_their_own_names(tokenizer, tmp_path):
    run, repo = str(tmp_path / "run"), str(tmp_path / "repo")
    make_run(run, tokenizer, prefix="chck_tok_")
    export_hf.main(["--all", run, repo])
    log = git(repo, "log", "--format=%s", "main").decode().splitlines()
    assert [s.split(":")[0] for s in log] == ["main", "chck_tok_10M", "chck_tok_2M", "chck_tok_1M"]
    assert "# repo at checkpoint `chck_tok_2M`" in git(repo, "show", "chck_tok_2M:README.md").decode()


class FakeHfApi:
    """The part of huggingface_hub.HfApi that --push calls, recording each call and, per revision, the files
    of the folder uploaded there (read at the call: a branch's folder is temporary). A real server is not
    used: the Hub is not reachable from the tests, and huggingface_hub has no local or offline endpoint to
    upload to; what --push decides (which folder goes to which revision, which branches it creates) is
    what this records."""

    def __init__(self):
        self.calls, self.uploaded = [], {}

    def create_repo(self, repo_id, repo_type=None, exist_ok=False):
        self.calls.append(("create_repo", repo_id))

    def create_branch(self, repo_id, *, branch, revision=None, exist_ok=False):
        self.calls.append(("create_branch", branch))

    def upload_folder(self, *, repo_id, folder_path, revision=None, commit_message=None, delete_patterns=None):
        self.calls.append(("upload_folder", revision))
        assert delete_patterns == "*"  # the revision holds exactly this folder's files
        self.uploaded[revision] = {name: open(os.path.join(folder_path, name), "rb").read()
                                   for name in os.listdir(folder_path)}


def test_push_uploads_an_export_to_main(tokenizer, tmp_path, monkeypatch):
    ckpt = save_ckpt(str(tmp_path / "ckpt.safetensors"), random_model(GQA), tokenizer)
    api = FakeHfApi()
    monkeypatch.setattr(export_hf, "hub_api", lambda: api)
    export_hf.main([ckpt, str(tmp_path / "m"), "--push", "me/m"])
    assert api.calls == [("create_repo", "me/m"), ("upload_folder", "main")]
    assert api.uploaded["main"] == {n: (tmp_path / "m" / n).read_bytes() for n in os.listdir(tmp_path / "m")}
    api.calls.clear()
    export_hf.main([str(tmp_path / "m"), "--push", "me/m"])  # an earlier export, as it is
    assert api.calls == [("create_repo", "me/m"), ("upload_folder", "main")]


@pytest.mark.slow
def test_push_of_an_all_repo_puts_each_branch_on_its_revision_and_main_last(tokenizer, tmp_path, monkeypatch):
    run, repo = str(tmp_path / "run"), str(tmp_path / "repo")
    make_run(run, tokenizer)
    api = FakeHfApi()
    monkeypatch.setattr(export_hf, "hub_api", lambda: api)
    export_hf.main(["--all", run, repo, "--push", "me/model_a"])
    assert api.calls == [("create_repo", "me/model_a"),
                         ("create_branch", "chck_1M"), ("upload_folder", "chck_1M"),
                         ("create_branch", "chck_2M"), ("upload_folder", "chck_2M"),
                         ("create_branch", "chck_10M"), ("upload_folder", "chck_10M"), ("upload_folder", "main")]
    for branch in ("chck_1M", "chck_2M", "chck_10M", "main"):
        names = git(repo, "ls-tree", "--name-only", branch).decode().split()
        assert sorted(api.uploaded[branch]) == sorted(names), branch
        assert api.uploaded[branch]["model.safetensors"] == git(repo, "show", f"{branch}:model.safetensors")
    assert b"chck_2M" in api.uploaded["chck_2M"]["README.md"] and "eval_results.json" not in api.uploaded["chck_2M"]


def test_push_without_a_token_is_one_line_before_any_export(tokenizer, tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    ckpt = save_ckpt(str(tmp_path / "ckpt.safetensors"), random_model(GQA), tokenizer)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no stored login
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    with pytest.raises(SystemExit, match=r"^--push: no Hugging Face token; set HF_TOKEN or run `hf auth login`$"):
        export_hf.main([ckpt, str(tmp_path / "m"), "--push", "me/m"])
    assert not os.path.exists(tmp_path / "m")


def test_the_lfs_patterns_cover_every_large_file_an_export_can_hold():
    """The Hub refuses files over 10 MB outside LFS: weights, and the tokenizer files (a tiktoken
    tokenizer.json of 100k+ entries is several MB)."""
    import fnmatch
    for name in ("model.safetensors", "tokenizer.json", "tokenizer.model", "tokenizer.tiktoken"):
        assert any(fnmatch.fnmatch(name, p) for p in export_hf.LFS_PATTERNS), name
        assert name in export_hf.EXPORT_FILES
    assert ".gitattributes" in export_hf.EXPORT_FILES
    for p in export_hf.LFS_PATTERNS:
        assert f"{p} filter=lfs diff=lfs merge=lfs -text\n" in export_hf.GITATTRIBUTES


# -----------------------------------------------------------------------------
# bad input: one line, and never a partial export


def test_a_file_that_is_not_our_checkpoint_gets_one_line(tmp_path):
    (tmp_path / "notes.pt").write_text("hello")
    r = subprocess.run([sys.executable, os.path.join(REPO, "export_hf.py"), str(tmp_path / "notes.pt"),
                        str(tmp_path / "out")], capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"{tmp_path / 'notes.pt'}: not a readable checkpoint")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "pickle.pt")
    safetensors.torch.save_file({"weights": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    for bad, why in [("pickle.pt", "not a readable checkpoint"), ("other.safetensors", "not a checkpoint written by train.py"),
                     ("missing.pt", "no such checkpoint")]:
        with pytest.raises(SystemExit) as e:
            export_hf.main([str(tmp_path / bad), str(tmp_path / "out")])
        assert str(e.value).startswith(f"{tmp_path / bad}: {why}") and "\n" not in str(e.value)
    assert not (tmp_path / "out").exists()


def test_a_checkpoints_unreadable_tokenizer_is_one_line(tokenizer, tmp_path):
    ckpt = save_ckpt(str(tmp_path / "ckpt.safetensors"), random_model(TIED), tokenizer,
                     tokenizer={"backend": "spm", "blob": "", "sha256": ""})
    with pytest.raises(SystemExit) as e:
        export_hf.main([ckpt, str(tmp_path / "out")])
    assert str(e.value) == (f"{ckpt}: the checkpoint's spm tokenizer is not readable "
                            f"(ValueError: not a SentencePiece model)")
    assert not (tmp_path / "out").exists()


def test_a_non_empty_output_is_refused_without_force(tokenizer, tmp_path, monkeypatch):
    model = random_model(TIED)
    export_hf.export(model, tokenizer, str(tmp_path / "out"))
    with pytest.raises(SystemExit, match="not empty .use --force"):
        export_hf.export(random_model(TIED, seed=1), tokenizer, str(tmp_path / "out"))
    export_hf.export(random_model(TIED, seed=1), tokenizer, str(tmp_path / "out"), force=True)
    back, _ = export_hf.load_hf(str(tmp_path / "out"))
    assert torch.equal(back.tok_embeddings.weight, random_model(TIED, seed=1).tok_embeddings.weight)
    # --force replaces an earlier export only, never a folder of something else
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    with pytest.raises(SystemExit, match="replaces only an earlier export"):
        export_hf.export(model, tokenizer, str(tmp_path / "mine"), force=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "years of work"
    # nor the export that holds the checkpoint being exported, nor the folder we run in
    ckpt = save_ckpt(str(tmp_path / "out" / "ckpt.safetensors"), model, tokenizer)
    with pytest.raises(SystemExit, match="will not replace a folder that holds .*ckpt.safetensors"):
        export_hf.main([ckpt, str(tmp_path / "out"), "--force"])
    monkeypatch.chdir(tmp_path / "out")
    with pytest.raises(SystemExit, match="will not replace a folder that holds"):
        export_hf.main([ckpt, ".", "--force"])
    assert os.path.isfile(ckpt)


def test_an_interrupted_export_leaves_nothing_behind(tokenizer, tmp_path, monkeypatch):
    import safetensors.torch
    real_save = safetensors.torch.save_file

    def save_then_interrupt(*args, **kwargs):  # Ctrl-C right after the weights were written
        real_save(*args, **kwargs)
        raise KeyboardInterrupt

    model = random_model(TIED)
    export_hf.export(model, tokenizer, str(tmp_path / "old"))
    before = sorted(os.listdir(tmp_path))
    monkeypatch.setattr(safetensors.torch, "save_file", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        export_hf.export(model, tokenizer, str(tmp_path / "new"))
    with pytest.raises(KeyboardInterrupt):  # a --force export that fails keeps the earlier one
        export_hf.export(random_model(TIED, seed=1), tokenizer, str(tmp_path / "old"), force=True)
    assert sorted(os.listdir(tmp_path)) == before
    back, _ = export_hf.load_hf(str(tmp_path / "old"))
    assert torch.equal(back.tok_embeddings.weight, model.tok_embeddings.weight)


def test_an_interrupted_all_export_leaves_nothing_behind(tokenizer, tmp_path, monkeypatch):
    run = str(tmp_path / "run")
    make_run(run, tokenizer)
    real_git, calls = export_hf.run_git, []

    def fail_on_second_commit(repo, *args):
        calls.append(args[0])
        if calls.count("commit") == 2:
            raise SystemExit(f"{repo}: git commit failed")
        return real_git(repo, *args)

    monkeypatch.setattr(export_hf, "run_git", fail_on_second_commit)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(SystemExit):
        export_hf.main(["--all", run, str(tmp_path / "repo")])
    assert sorted(os.listdir(tmp_path)) == before
