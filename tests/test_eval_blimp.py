"""
Specifications of eval_blimp.py, each checked against an independent reference.

    pytest tests/test_eval_blimp.py -q

References: a naive loop that scores one sentence at a time with log_softmax in fp64 (for the
batched scorer), transformers' LlamaForCausalLM given the same weights under its own names (for
the model path), exact arithmetic (a uniform model scores a sentence of n tokens -n log V) and
hand-computed numbers (for the tables).
"""

import gzip
import json
import math
import os
import sys
from dataclasses import asdict

import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import eval_blimp as ev  # noqa: E402
from model import ModelConfig, Transformer  # noqa: E402
from checkpoint import load_model, save_checkpoint  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
SMALL = os.path.join(FIXTURES, "pairs_small.jsonl")              # 8 pairs, en/nl/zh, a blank line
SAME_TOKENS = os.path.join(FIXTURES, "pairs_same_tokens.jsonl")  # good and bad: same words, reordered
AGGREGATION = os.path.join(FIXTURES, "pairs_aggregation.jsonl")  # paradigms A (4), B (2), C (2)
SHARED_DATA = os.path.join(ROOT, "..", "shared", "data")


def tiny_model(vocab_size, max_seq_len=64, seed=0, **kw):
    """2 layers, grouped-query attention, weights far larger than the init so that the next-token
    distribution is far from uniform and a position or padding mistake changes the scores."""
    torch.manual_seed(seed)
    cfg = dict(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=128, vocab_size=vocab_size,
               max_seq_len=max_seq_len, norm_eps=1e-6, rope_theta=5000.0)
    cfg.update(kw)
    model = Transformer(ModelConfig(**cfg)).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.uniform_(0.5, 1.5)
            else:
                p.normal_(0.0, 0.15)
    return model


def naive_score(model, ids):
    """sum_t log p(ids[t] | ids[:t]) for t >= 1: one sentence, no batch, no padding, fp64 softmax."""
    x = torch.tensor([ids])
    with torch.no_grad():
        logits = model(x, x)[0][0].double()          # (T, V)
    logp = torch.log_softmax(logits, dim=-1)
    return sum(logp[t - 1, ids[t]].item() for t in range(1, len(ids)))


@pytest.fixture(scope="module")
def model(tiny_tokenizer):
    return tiny_model(tiny_tokenizer.vocab_size)


def sentences(path):
    pairs = ev.read_pairs([path])
    return [s for p in pairs for s in (p["good"], p["bad"])]


# ---------------------------------------------------------------------------- the scoring rule

@pytest.fixture(scope="module")
def small_pairs(model, tiny_tokenizer):
    """The fixture pairs, their sequences, and the naive score of each sequence."""
    pairs = ev.read_pairs([SMALL, SAME_TOKENS])
    seqs, gi, bi = ev.encode_pairs(pairs, tiny_tokenizer, model.cfg.max_seq_len)
    return pairs, seqs, gi, bi, np.array([naive_score(model, s) for s in seqs])


@pytest.mark.parametrize("batch_tokens,pad_id,row_positions", [(1, 0, 128), (5, 299, 1), (16, 2, 8), (50, 0, 20),
                                                              (100_000, 299, 128), (100_000, 0, 1)])
def test_batched_scores_equal_one_sentence_at_a_time(model, tiny_tokenizer, small_pairs, batch_tokens, pad_id,
                                                     row_positions):
    pairs, seqs, gi, bi, expected = small_pairs
    assert len({len(s) for s in seqs}) > 5          # many lengths, so rows really are padded
    scores = ev.score_sequences(model, seqs, batch_tokens=batch_tokens, pad_id=pad_id,
                                max_row_positions=row_positions)
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-4)
    # and each pair's two scores land in the right place once the length sort is undone
    bos = [tiny_tokenizer.bos_id]
    for k, p in enumerate(pairs[:4]):
        assert scores[gi[k]] == pytest.approx(naive_score(model, bos + tiny_tokenizer.encode(p["good"])), abs=1e-4)
        assert scores[bi[k]] == pytest.approx(naive_score(model, bos + tiny_tokenizer.encode(p["bad"])), abs=1e-4)


# hand-made token sequences: a duplicate, one that is a prefix of another, one of a single token,
# and two first tokens (a forest, as under --no-bos)
TREE_SEQS = [[1, 2, 3, 4], [1, 2, 6], [1, 2, 3, 5], [7, 8], [1, 2, 3, 4], [9], [1, 2, 3]]


def test_prefix_trees_hold_each_shared_prefix_once():
    rows, paths = ev.pack_prefix_trees(TREE_SEQS)
    # inputs (each sequence but its last token): 123, 12, 123, 7, 123, none, 12 -> the trie 1-2-3 and 7
    assert len(rows) == 1
    tokens, parent = rows[0]
    assert tokens.tolist() == [1, 2, 3, 7] and parent.tolist() == [-1, 0, 1, -1]
    assert [p and (p[0], p[1].tolist()) for p in paths] == [
        (0, [0, 1, 2]), (0, [0, 1]), (0, [0, 1, 2]), (0, [3]), (0, [0, 1, 2]), None, (0, [0, 1])]
    assert ev.tree_attention(parent).astype(int).tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 1]]
    # rows of at most 2 positions, filled in sorted order 12, 123, 123, 123, 12, 7: a sequence longer
    # than a row gets one of its own, and one that adds no position stays in the row it is in
    rows, paths = ev.pack_prefix_trees(TREE_SEQS, max_positions=2)
    assert [r[0].tolist() for r in rows] == [[1, 2], [1, 2, 3], [7]]
    assert [p and (p[0], p[1].tolist()) for p in paths] == [
        (1, [0, 1, 2]), (1, [0, 1]), (1, [0, 1, 2]), (2, [0]), (1, [0, 1, 2]), None, (0, [0, 1])]


@pytest.mark.parametrize("row_positions,batch_tokens", [(1, 1), (2, 3), (4, 4), (128, 1000)])
@pytest.mark.parametrize("flash", [True, False])   # SDPA with the tree mask, and the explicit attention
def test_prefix_tree_scores_equal_one_sentence_at_a_time(tiny_tokenizer, row_positions, batch_tokens, flash):
    model = tiny_model(tiny_tokenizer.vocab_size, flash=flash)
    scores = ev.score_sequences(model, TREE_SEQS, batch_tokens=batch_tokens, max_row_positions=row_positions)
    expected = [naive_score(model, s) for s in TREE_SEQS]
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-4)
    assert scores[0] == scores[4] and scores[5] == 0.0


def test_bos_is_conditioned_on_and_not_scored_and_the_other_conventions(model, tiny_tokenizer):
    pairs = ev.read_pairs([SMALL])
    text = pairs[0]["good"]
    ids = tiny_tokenizer.encode(text)
    bos = tiny_tokenizer.bos_id
    cases = [  # (bos, leading_space) -> the sequence a naive scorer sees
        ((True, False), [bos] + ids),
        ((False, False), ids),                                   # first token: context only
        ((True, True), [bos] + tiny_tokenizer.encode(" " + text)),
    ]
    for (use_bos, space), seq in cases:
        seqs, gi, _ = ev.encode_pairs(pairs, tiny_tokenizer, 64, bos=use_bos, leading_space=space)
        assert seqs[gi[0]] == seq
        assert ev.score_sequences(model, seqs, 64)[gi[0]] == pytest.approx(naive_score(model, seq), abs=1e-4)
    # counted terms: a uniform model gives log(1/V) per scored token; with BOS all n tokens are
    # scored, without it n - 1 (the first is context only); BOS itself never is
    uniform = tiny_model(tiny_tokenizer.vocab_size)
    with torch.no_grad():
        uniform.output.weight.zero_()
    for use_bos, n_scored in ((True, len(ids)), (False, len(ids) - 1)):
        seqs, gi, _ = ev.encode_pairs(pairs, tiny_tokenizer, 64, bos=use_bos)
        score = ev.score_sequences(uniform, seqs, 64)[gi[0]]
        assert score == pytest.approx(-n_scored * math.log(tiny_tokenizer.vocab_size), rel=1e-6)


def test_scores_equal_transformers_llama_with_the_same_weights(tiny_tokenizer):
    """Scores of the same weights under transformers' LlamaForCausalLM (what an exported folder
    is loaded as) equal ours: the rename below is the whole conversion."""
    transformers = pytest.importorskip("transformers")
    ours = tiny_model(tiny_tokenizer.vocab_size, seed=1)
    cfg = ours.cfg
    hf_cfg = transformers.LlamaConfig(
        hidden_size=cfg.dim, intermediate_size=cfg.hidden_dim, num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.n_kv_heads, vocab_size=cfg.vocab_size,
        max_position_embeddings=cfg.max_seq_len, rms_norm_eps=cfg.norm_eps, rope_theta=cfg.rope_theta,
        tie_word_embeddings=False, attention_bias=False, mlp_bias=False)
    hf = transformers.LlamaForCausalLM(hf_cfg).eval()
    layer = {"attention.wq": "self_attn.q_proj", "attention.wk": "self_attn.k_proj",
             "attention.wv": "self_attn.v_proj", "attention.wo": "self_attn.o_proj",
             "feed_forward.w1": "mlp.gate_proj", "feed_forward.w3": "mlp.up_proj",
             "feed_forward.w2": "mlp.down_proj", "attention_norm": "input_layernorm",
             "ffn_norm": "post_attention_layernorm"}
    top = {"tok_embeddings.weight": "model.embed_tokens.weight", "norm.weight": "model.norm.weight",
           "output.weight": "lm_head.weight"}
    renamed = {}
    for name, w in ours.state_dict().items():
        if name in top:
            renamed[top[name]] = w
        else:
            _, i, rest = name.split(".", 2)
            module, param = rest.rsplit(".", 1)
            renamed[f"model.layers.{i}.{layer[module]}.{param}"] = w
    missing, unexpected = hf.load_state_dict(renamed, strict=False)
    assert not unexpected and all("rotary" in m for m in missing)

    pairs = ev.read_pairs([SMALL, SAME_TOKENS])
    seqs, gi, bi = ev.encode_pairs(pairs, tiny_tokenizer, cfg.max_seq_len)
    scores = ev.score_sequences(ours, seqs, batch_tokens=40)
    with torch.no_grad():
        for s, score in zip(seqs, scores):
            logp = torch.log_softmax(hf(torch.tensor([s])).logits[0].double(), dim=-1)
            hf_score = sum(logp[t - 1, s[t]].item() for t in range(1, len(s)))
            assert score == pytest.approx(hf_score, abs=1e-4)


def test_an_exported_folder_scores_the_same_under_transformers_and_under_eval_blimp(tmp_path, model, tiny_tokenizer):
    """export_hf.py's folder, as lm-eval and the BabyLM pipeline see it (AutoModelForCausalLM, and
    AutoTokenizer, which puts <s> first), gives our scores; and eval_blimp.py reads the folder."""
    transformers = pytest.importorskip("transformers")
    export_hf = pytest.importorskip("export_hf")
    folder = str(tmp_path / "export")
    export_hf.export(model, tiny_tokenizer, folder)
    hf = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(folder)
    pairs = ev.read_pairs([SMALL])
    seqs, gi, bi = ev.encode_pairs(pairs, tiny_tokenizer, model.cfg.max_seq_len)
    scores = ev.score_sequences(model, seqs, batch_tokens=40)
    with torch.no_grad():
        for k, p in enumerate(pairs):
            for text, i in ((p["good"], gi[k]), (p["bad"], bi[k])):
                ids = hf_tok(text).input_ids
                assert ids == seqs[i]
                logp = torch.log_softmax(hf(torch.tensor([ids])).logits[0].double(), dim=-1)
                assert scores[i] == pytest.approx(sum(logp[t - 1, ids[t]].item() for t in range(1, len(ids))), abs=1e-4)
    back, back_tok = load_model(folder, "cpu")
    ours = ev.evaluate(model, tiny_tokenizer, SMALL, progress=False)["suites"]["pairs_small"]
    theirs = ev.evaluate(back, back_tok, SMALL, progress=False)["suites"]["pairs_small"]
    assert theirs["paradigms"] == ours["paradigms"] and theirs["total"] == ours["total"]


def test_a_uniform_model_scores_n_tokens_as_minus_n_log_v_and_ties_every_pair(tiny_tokenizer):
    """With a zero output matrix every next token has probability 1/V, so a sentence of n tokens
    scores -n log V whatever its words. Each fixture pair has the same words in another order,
    hence the same tokens: every pair is an exact tie, worth half a point."""
    model = tiny_model(tiny_tokenizer.vocab_size)
    with torch.no_grad():
        model.output.weight.zero_()
    V = model.cfg.vocab_size
    pairs = ev.read_pairs([SAME_TOKENS])
    seqs, gi, bi = ev.encode_pairs(pairs, tiny_tokenizer, 64)
    scores = ev.score_sequences(model, seqs, batch_tokens=16)
    np.testing.assert_allclose(scores, [-(len(s) - 1) * math.log(V) for s in seqs], rtol=1e-6)

    r = ev.evaluate(model, tiny_tokenizer, SAME_TOKENS, batch_tokens=16, progress=False)["suites"]["pairs_same_tokens"]
    t = r["total"]
    assert (t["n"], t["ties"], t["wins"]) == (6, 6, 0)
    assert t["micro"] == 0.5 and t["macro"] == 0.5
    assert all(p["accuracy"] == 0.5 and p["ties"] == p["n"] for p in r["paradigms"].values())

    # with sentences of different lengths the uniform model simply prefers the shorter one
    r = ev.evaluate(model, tiny_tokenizer, SMALL, progress=False)["suites"]["pairs_small"]
    good_shorter = [len(tiny_tokenizer.encode(p["good"])) < len(tiny_tokenizer.encode(p["bad"]))
                    for p in ev.read_pairs([SMALL])]
    same = [len(tiny_tokenizer.encode(p["good"])) == len(tiny_tokenizer.encode(p["bad"]))
            for p in ev.read_pairs([SMALL])]
    assert r["total"]["wins"] == sum(good_shorter) and r["total"]["ties"] == sum(same)


def test_evaluate_gives_the_decisions_of_the_naive_scores(model, tiny_tokenizer):
    """End to end (dedup, length sort, batching, order restored): each paradigm's accuracy is the
    one the naive per-sentence scores give."""
    r = ev.evaluate(model, tiny_tokenizer, [SMALL], batch_tokens=24, progress=False)["suites"]["pairs_small"]
    bos = [tiny_tokenizer.bos_id]
    expected = {}
    for p in ev.read_pairs([SMALL]):
        g = naive_score(model, bos + tiny_tokenizer.encode(p["good"]))
        b = naive_score(model, bos + tiny_tokenizer.encode(p["bad"]))
        expected.setdefault(p["paradigm"], []).append(1.0 if g > b else 0.5 if g == b else 0.0)
    assert list(r["paradigms"]) == list(expected)          # file order
    for name, credits in expected.items():
        assert r["paradigms"][name]["accuracy"] == pytest.approx(np.mean(credits))
        assert r["paradigms"][name]["n"] == len(credits)
    assert r["total"]["n"] == 8                            # the blank line holds no pair


def test_evaluate_leaves_the_model_in_the_mode_it_found(model, tiny_tokenizer):
    model.train()
    ev.evaluate(model, tiny_tokenizer, SMALL, progress=False)
    assert model.training
    model.eval()
    ev.evaluate(model, tiny_tokenizer, SMALL, progress=False)
    assert not model.training


def test_bfloat16_forward_stays_close_to_float32(model, tiny_tokenizer):
    seqs, _, _ = ev.encode_pairs(ev.read_pairs([SMALL]), tiny_tokenizer, 64)
    fp32 = ev.score_sequences(model, seqs, 64)
    bf16 = ev.score_sequences(model, seqs, 64, dtype=torch.bfloat16)
    assert bf16.dtype == np.float64
    assert np.abs(bf16 - fp32).max() < 0.05 * np.abs(fp32).max()
    assert not np.array_equal(bf16, fp32)                 # the bf16 path really ran


# ----------------------------------------------------------------------------------- the tables

def test_aggregation_equals_hand_computed_numbers():
    pairs = ev.read_pairs([AGGREGATION])
    credits = np.array([1, 1, 0, 0.5,   # A: 2.5 / 4 = 0.625, one tie
                        1, 0,           # B: 0.5
                        1, 1])          # C: 1.0
    r = ev.aggregate(pairs, credits)
    t = r["total"]
    assert (t["n"], t["paradigms"], t["wins"], t["ties"]) == (8, 3, 5, 1)
    assert t["micro"] == pytest.approx(5.5 / 8)
    assert t["macro"] == pytest.approx((0.625 + 0.5 + 1.0) / 3)
    # macro interval: 1.96 * sqrt(.625*.375/4 + .5*.5/2 + 0) / 3 = 0.279939
    assert t["macro_ci95"] == pytest.approx([0.708333 - 0.279939, 0.708333 + 0.279939], abs=1e-5)
    assert {k: v["accuracy"] for k, v in r["paradigms"].items()} == {"A": 0.625, "B": 0.5, "C": 1.0}
    assert r["paradigms"]["A"]["ties"] == 1 and r["paradigms"]["B"]["field"] == "syntax_semantics"
    # "syntax/semantics" (B) and "syntax_semantics" (C) are one field
    assert set(r["by_field"]) == {"syntax", "syntax_semantics"}
    f = r["by_field"]["syntax_semantics"]
    assert (f["n"], f["paradigms"], f["macro"], f["micro"]) == (4, 2, 0.75, 0.75)
    assert r["by_linguistics_term"]["t1"]["macro"] == 0.625 and r["by_linguistics_term"]["t1"]["ties"] == 1
    assert "by_phenomenon" not in r


@pytest.mark.parametrize("p,n", [(5.5 / 8, 8), (0.625, 4), (1.0, 20), (0.0, 3), (0.5, 1000)])
def test_wilson_interval_inverts_the_score_test(p, n):
    """The Wilson interval is the set of q with |p - q| <= z sqrt(q (1 - q) / n): at both ends
    the equality holds. Hand check: p = 0.5, n = 1000 gives [0.4691, 0.5309]."""
    lo, hi = ev.wilson_interval(p, n)
    assert 0 <= lo <= p <= hi <= 1
    for q in (lo, hi):
        assert (p - q) ** 2 == pytest.approx(ev.Z95 ** 2 * q * (1 - q) / n, abs=1e-12)
    if (p, n) == (0.5, 1000):
        assert (lo, hi) == pytest.approx((0.4691, 0.5309), abs=1e-4)


def test_fast_takes_the_first_200_pairs_of_each_paradigm(tmp_path):
    path = tmp_path / "many.jsonl"
    with open(path, "w") as f:
        for i in range(280):
            uid = "X" if i % 8 else "Y"                  # X: 245 pairs, Y: 35
            f.write(json.dumps({"sentence_good": f"good {i}", "sentence_bad": f"bad {i}", "UID": uid}) + "\n")
    fast = ev.read_pairs([str(path)], fast=True)
    xs = [p for p in fast if p["paradigm"] == "X"]
    assert len(xs) == 200 and len(fast) == 235
    all_x = [p for p in ev.read_pairs([str(path)]) if p["paradigm"] == "X"]
    assert [p["line"] for p in xs] == [p["line"] for p in all_x[:200]]


def test_a_file_without_uid_is_one_paradigm_named_after_the_file(tmp_path):
    path = tmp_path / "hypernym.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps({"sentence_good": "a b", "sentence_bad": "b a", "row": 0}) + "\n")
    assert ev.read_pairs([str(path)])[0]["paradigm"] == "hypernym"


# ----------------------------------------------------------------------------------- bad input

def write(tmp_path, lines, name="bad.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


GOOD_LINE = json.dumps({"sentence_good": "the cat sat.", "sentence_bad": "the sat cat."})


@pytest.mark.parametrize("lines,message", [
    ([GOOD_LINE, json.dumps({"sentence_good": "the cat sat."})], "bad.jsonl:2: no 'sentence_bad'"),
    ([json.dumps({"good": "a", "bad": "b"})], "bad.jsonl:1: no 'sentence_good'"),
    ([GOOD_LINE, GOOD_LINE, json.dumps({"sentence_good": "", "sentence_bad": "x"})], "bad.jsonl:3: sentence_good is empty"),
    ([json.dumps({"sentence_good": "x", "sentence_bad": "   "})], "bad.jsonl:1: sentence_bad is empty"),
    ([GOOD_LINE, '{"sentence_good": "x", '], "bad.jsonl:2: not valid JSON"),
    ([json.dumps({"sentence_good": 3, "sentence_bad": "x"})], "bad.jsonl:1: sentence_good is a int"),
    ([json.dumps(["x", "y"])], "bad.jsonl:1: a line must be a JSON object"),
    ([""], "bad.jsonl: no pairs in the file"),
])
def test_a_bad_line_stops_with_file_and_line(tmp_path, model, tiny_tokenizer, lines, message):
    path = write(tmp_path, lines)
    with pytest.raises(SystemExit) as e:
        ev.evaluate(model, tiny_tokenizer, path, progress=False)
    assert str(e.value).startswith(path + message[len("bad.jsonl"):])


def test_a_sentence_longer_than_the_context_is_an_error_not_a_truncation(tmp_path, tiny_tokenizer):
    short = tiny_model(tiny_tokenizer.vocab_size, max_seq_len=16)
    long = " ".join(["the cat sat on the mat"] * 8) + "."
    path = write(tmp_path, [GOOD_LINE, json.dumps({"sentence_good": "the cat sat.", "sentence_bad": long})])
    n = len(tiny_tokenizer.encode(long))
    with pytest.raises(SystemExit) as e:
        ev.evaluate(short, tiny_tokenizer, path, progress=False)
    assert str(e.value) == (f"{path}:2: sentence_bad is {n} tokens after BOS, more than the model's "
                            f"context of 16")
    # exactly at the limit is fine: BOS + 16 tokens are 16 inputs predicting 16 targets
    ids = tiny_tokenizer.encode(long)[:16]
    fits = tiny_tokenizer.decode(ids)
    assert tiny_tokenizer.encode(fits) == ids
    path = write(tmp_path, [json.dumps({"sentence_good": fits, "sentence_bad": "the cat."})], "fits.jsonl")
    assert ev.evaluate(short, tiny_tokenizer, path, progress=False)["suites"]["fits"]["total"]["n"] == 1


def test_missing_files_and_unknown_suites(tmp_path, model, tiny_tokenizer):
    missing = str(tmp_path / "nope.jsonl")
    with pytest.raises(SystemExit, match="nope.jsonl: no such file or folder, and not a suite"):
        ev.evaluate(model, tiny_tokenizer, missing, progress=False)
    with pytest.raises(SystemExit, match=r"blimp_nl.pairs.jsonl.gz: no such file \(suite blimp_nl; set --data-root"):
        ev.evaluate(model, tiny_tokenizer, "blimp_nl", data_root=str(tmp_path), progress=False)
    os.makedirs(tmp_path / "empty")
    with pytest.raises(SystemExit, match="holds no .jsonl"):
        ev.evaluate(model, tiny_tokenizer, str(tmp_path / "empty"), progress=False)
    # every suite is checked before any is scored: a typo in the second fails before the first runs
    with pytest.raises(SystemExit, match="blimpp"):
        ev.evaluate(model, tiny_tokenizer, f"{SMALL},blimpp", progress=False)


# ------------------------------------------------------------------------- command line and data

def test_command_line_prints_the_table_and_writes_the_json(tmp_path, model, tiny_tokenizer, capsys):
    ckpt = tmp_path / "ckpt.safetensors"
    save_checkpoint(str(ckpt), model, {"model_config": asdict(model.cfg), "tokenizer": tiny_tokenizer.to_dict()})
    out = tmp_path / "res" / "eval.json"
    ev.main([str(ckpt), "--suite", f"{SMALL},{AGGREGATION}", "--out", str(out), "--no-progress",
             "--batch-tokens", "30"])
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    direct = ev.evaluate(model, tiny_tokenizer, [SMALL, AGGREGATION], progress=False)
    for name in ("pairs_small", "pairs_aggregation"):
        assert result["suites"][name]["total"] == direct["suites"][name]["total"]
        assert result["suites"][name]["paradigms"] == direct["suites"][name]["paradigms"]
    macro = result["suites"]["pairs_small"]["total"]["macro"]
    assert f"macro: mean over paradigms (headline)" in printed and f"{100 * macro:.1f}" in printed
    assert "by field" in printed and "by phenomenon" in printed
    assert result["settings"]["bos"] is True and result["settings"]["dtype"] == "float32"

    save_checkpoint(str(ckpt), model, {"model_config": asdict(model.cfg), "tokenizer": None})
    with pytest.raises(SystemExit, match="holds no tokenizer; give one with --tokenizer"):
        ev.main([str(ckpt), "--suite", SMALL])


SUITE_SIZES = {  # pairs, paradigms (SOURCES.md)
    "blimp": (67000, 67), "blimp_filtered": (59875, 67), "blimp_supplement": (5218, 5),
    "blimp_nl": (8400, 84), "zhoblimp": (35400, 118), "sling": (40560, 54),
}


@pytest.mark.parametrize("suite", list(SUITE_SIZES))
def test_named_suites_read_the_shared_data(suite):
    if not os.path.isdir(SHARED_DATA):
        pytest.skip("../shared/data is absent")
    name, files = ev.suite_files(suite, SHARED_DATA)
    pairs = ev.read_pairs(files)
    assert (len(pairs), len({p["paradigm"] for p in pairs})) == SUITE_SIZES[suite]
    assert not any(f.endswith("models_summary.jsonl.gz") for f in files)
    if suite == "blimp":
        assert {p["field"] for p in pairs} == {"syntax", "morphology", "semantics", "syntax_semantics"}
        assert len(ev.read_pairs(files, fast=True)) == 67 * 200
