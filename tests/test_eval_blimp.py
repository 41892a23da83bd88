"""
Specifications of eval_blimp.py, each checked against an independent reference.

    pytest tests/test_eval_blimp.py -q

References: a naive loop that scores one sentence at a time with log_softmax in fp64 (for the
definition score_sentence, the prefix-tree scorer and the card's protocol), transformers'
LlamaForCausalLM given the same weights under its own names (for the model path), exact arithmetic
(a uniform model scores a sentence of n tokens -n log V), hand-computed numbers (for the tables),
the BabyLM 2025 pipeline's own scoring of a predictions file, and the same pairs written as JSONL
(for CSV and TSV).
"""

import gzip
import io
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
import pairs as pair_files  # noqa: E402
from model import ModelConfig, Transformer  # noqa: E402
from checkpoint import save_checkpoint  # noqa: E402
from load import load_model  # noqa: E402

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
    pairs = pair_files.read_pairs([path])
    return [s for p in pairs for s in (p["good"], p["bad"])]


# ---------------------------------------------------------------------------- the scoring rule

@pytest.fixture(scope="module")
def small_pairs(model, tiny_tokenizer):
    """The fixture pairs, their sequences, and the naive score of each sequence."""
    pairs = pair_files.read_pairs([SMALL, SAME_TOKENS])
    seqs, good_index, bad_index = ev.encode_pairs(pairs, tiny_tokenizer, model.cfg.max_seq_len)
    return pairs, seqs, good_index, bad_index, np.array([naive_score(model, s) for s in seqs])


@pytest.mark.parametrize("batch_tokens,pad_id,row_positions", [(1, 0, 128), (5, 299, 1), (16, 2, 8), (50, 0, 20),
                                                              (100_000, 299, 128), (100_000, 0, 1)])
def test_batched_scores_equal_one_sentence_at_a_time(model, tiny_tokenizer, small_pairs, batch_tokens, pad_id,
                                                     row_positions):
    pairs, seqs, good_index, bad_index, expected = small_pairs
    assert len({len(s) for s in seqs}) > 5          # many lengths, so rows really are padded
    scores = ev.score_sequences(model, seqs, batch_tokens=batch_tokens, pad_id=pad_id,
                                max_row_positions=row_positions)
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-4)
    # and each pair's two scores land in the right place once the length sort is undone
    bos = [tiny_tokenizer.bos_id]
    for k, p in enumerate(pairs[:4]):
        assert scores[good_index[k]] == pytest.approx(naive_score(model, bos + tiny_tokenizer.encode(p["good"])), abs=1e-4)
        assert scores[bad_index[k]] == pytest.approx(naive_score(model, bos + tiny_tokenizer.encode(p["bad"])), abs=1e-4)


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
    pairs = pair_files.read_pairs([SMALL])
    text = pairs[0]["good"]
    ids = tiny_tokenizer.encode(text)
    bos = tiny_tokenizer.bos_id
    cases = [  # (bos, leading_space) -> the sequence a naive scorer sees
        ((True, False), [bos] + ids),
        ((False, False), ids),                                   # first token: context only
        ((True, True), [bos] + tiny_tokenizer.encode(" " + text)),
    ]
    for (use_bos, space), seq in cases:
        seqs, good_index, _ = ev.encode_pairs(pairs, tiny_tokenizer, 64, bos=use_bos, leading_space=space)
        assert seqs[good_index[0]] == seq
        assert ev.score_sequences(model, seqs, 64)[good_index[0]] == pytest.approx(naive_score(model, seq), abs=1e-4)
    # counted terms: a uniform model gives log(1/V) per scored token; with BOS all n tokens are
    # scored, without it n - 1 (the first is context only); BOS itself never is
    uniform = tiny_model(tiny_tokenizer.vocab_size)
    with torch.no_grad():
        uniform.output.weight.zero_()
    for use_bos, n_scored in ((True, len(ids)), (False, len(ids) - 1)):
        seqs, good_index, _ = ev.encode_pairs(pairs, tiny_tokenizer, 64, bos=use_bos)
        score = ev.score_sequences(uniform, seqs, 64)[good_index[0]]
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

    pairs = pair_files.read_pairs([SMALL, SAME_TOKENS])
    seqs, good_index, bad_index = ev.encode_pairs(pairs, tiny_tokenizer, cfg.max_seq_len)
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
    pairs = pair_files.read_pairs([SMALL])
    seqs, good_index, bad_index = ev.encode_pairs(pairs, tiny_tokenizer, model.cfg.max_seq_len)
    scores = ev.score_sequences(model, seqs, batch_tokens=40)
    with torch.no_grad():
        for k, p in enumerate(pairs):
            for text, i in ((p["good"], good_index[k]), (p["bad"], bad_index[k])):
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
    pairs = pair_files.read_pairs([SAME_TOKENS])
    seqs, good_index, bad_index = ev.encode_pairs(pairs, tiny_tokenizer, 64)
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
                    for p in pair_files.read_pairs([SMALL])]
    same = [len(tiny_tokenizer.encode(p["good"])) == len(tiny_tokenizer.encode(p["bad"]))
            for p in pair_files.read_pairs([SMALL])]
    assert r["total"]["wins"] == sum(good_shorter) and r["total"]["ties"] == sum(same)


def test_evaluate_gives_the_decisions_of_the_naive_scores(model, tiny_tokenizer):
    """End to end (dedup, length sort, batching, order restored): each paradigm's accuracy is the
    one the naive per-sentence scores give."""
    r = ev.evaluate(model, tiny_tokenizer, [SMALL], batch_tokens=24, progress=False)["suites"]["pairs_small"]
    bos = [tiny_tokenizer.bos_id]
    expected = {}
    for p in pair_files.read_pairs([SMALL]):
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
    seqs, _, _ = ev.encode_pairs(pair_files.read_pairs([SMALL]), tiny_tokenizer, 64)
    fp32 = ev.score_sequences(model, seqs, 64)
    bf16 = ev.score_sequences(model, seqs, 64, dtype=torch.bfloat16)
    assert bf16.dtype == np.float64
    assert np.abs(bf16 - fp32).max() < 0.05 * np.abs(fp32).max()
    assert not np.array_equal(bf16, fp32)                 # the bf16 path really ran


# ----------------------------------------------------------------------------------- the tables

def test_aggregation_equals_hand_computed_numbers():
    pairs = pair_files.read_pairs([AGGREGATION])
    credits = np.array([1, 1, 0, 0.5,   # A: 2.5 / 4 = 0.625, one tie
                        1, 0,           # B: 0.5
                        1, 1])          # C: 1.0
    r = ev.aggregate(pairs, credits, ties=credits == 0.5)
    t = r["total"]
    assert (t["n"], t["paradigms"], t["wins"], t["ties"]) == (8, 3, 5, 1)
    assert t["micro"] == pytest.approx(5.5 / 8)
    assert t["macro"] == pytest.approx((0.625 + 0.5 + 1.0) / 3)
    # macro interval: with m = n + z^2 and q = (acc n + z^2/2) / m per paradigm,
    #   A: m = 7.841459, q = 0.563764;  B: m = 5.841459, q = 0.5;  C: m = 5.841459, q = 0.671190
    #   1.959964 * sqrt(q(1-q)/m summed: 0.031363 + 0.042798 + 0.037781) / 3 = 0.218586
    # (C, at 100%, adds its share: the plain acc (1 - acc) / n would add nothing)
    assert t["macro_ci95"] == pytest.approx([0.708333 - 0.218586, 0.708333 + 0.218586], abs=1e-5)
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
    fast = pair_files.read_pairs([str(path)], fast=True)
    xs = [p for p in fast if p["paradigm"] == "X"]
    assert len(xs) == 200 and len(fast) == 235
    all_x = [p for p in pair_files.read_pairs([str(path)]) if p["paradigm"] == "X"]
    assert [p["line"] for p in xs] == [p["line"] for p in all_x[:200]]


def test_a_file_without_uid_is_one_paradigm_named_after_the_file(tmp_path):
    path = tmp_path / "hypernym.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps({"sentence_good": "a b", "sentence_bad": "b a", "row": 0}) + "\n")
    assert pair_files.read_pairs([str(path)])[0]["paradigm"] == "hypernym"


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


def test_a_missing_file_or_unknown_suite_fails_before_any_suite_is_scored(tmp_path, model, tiny_tokenizer):
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
    assert "macro: mean over paradigms (headline)" in printed and f"{100 * macro:.1f}" in printed
    assert "by field" in printed and "by phenomenon" in printed
    assert result["settings"]["bos"] is True and result["settings"]["dtype"] == "float32"

    save_checkpoint(str(ckpt), model, {"model_config": asdict(model.cfg), "tokenizer": None})
    with pytest.raises(SystemExit, match="holds no tokenizer; give one with --tokenizer"):
        ev.main([str(ckpt), "--suite", SMALL])


SUITE_SIZES = {  # pairs, paradigms (SOURCES.md)
    "blimp": (67000, 67), "blimp_filtered": (59875, 67), "blimp_supplement": (5218, 5),
    "blimp_nl": (8400, 84), "zhoblimp": (35400, 118), "sling": (40560, 54),
}


@pytest.mark.slow
@pytest.mark.parametrize("suite", list(SUITE_SIZES))
def test_named_suites_read_the_shared_data(suite):
    if not os.path.isdir(SHARED_DATA):
        pytest.skip("../shared/data is absent")
    name, files = pair_files.suite_files(suite, SHARED_DATA)
    pairs = pair_files.read_pairs(files)
    assert (len(pairs), len({p["paradigm"] for p in pairs})) == SUITE_SIZES[suite]
    assert not any(f.endswith("models_summary.jsonl.gz") for f in files)
    if suite == "blimp":
        assert {p["field"] for p in pairs} == {"syntax", "morphology", "semantics", "syntax_semantics"}
        assert len(pair_files.read_pairs(files, fast=True)) == 67 * 200


# ------------------------------------------------------------- the definition and the fast path

@pytest.mark.parametrize("bos", [True, False])
def test_score_sentence_is_the_naive_fp64_loop_and_the_prefix_tree_path_gives_its_numbers(model, tiny_tokenizer, bos):
    seqs, _, _ = ev.encode_pairs(pair_files.read_pairs([SMALL, SAME_TOKENS]), tiny_tokenizer, 64, bos=bos)
    defined = np.array([ev.score_sentence(model, s) for s in seqs])
    np.testing.assert_allclose(defined, [naive_score(model, s) for s in seqs], rtol=0, atol=1e-4)
    for batch_tokens, row_positions in ((7, 4), (2048, 128)):
        fast = ev.score_sequences(model, seqs, batch_tokens=batch_tokens, max_row_positions=row_positions)
        np.testing.assert_allclose(fast, defined, rtol=0, atol=1e-4)


# ------------------------------------------------------------------------- the card's protocol

def card_credits(model, tokenizer, path):
    """Model A's card, one sentence at a time: no special token, the first token not scored, a
    pair right only when the good sentence scores strictly higher."""
    credits = {}
    for p in pair_files.read_pairs([path]):
        good = naive_score(model, tokenizer.encode(p["good"]))
        bad = naive_score(model, tokenizer.encode(p["bad"]))
        credits.setdefault(p["paradigm"], []).append(1.0 if good > bad else 0.0)
    return credits


@pytest.mark.slow
def test_card_protocol_equals_a_one_sentence_at_a_time_loop(model, tiny_tokenizer):
    result = ev.evaluate(model, tiny_tokenizer, [SMALL, AGGREGATION], protocol="card", batch_tokens=24,
                         progress=False)
    s = result["settings"]
    assert (s["protocol"], s["bos"], s["tie_credit"], s["headline"]) == ("card", False, 0.0, "micro")
    for path, name in ((SMALL, "pairs_small"), (AGGREGATION, "pairs_aggregation")):
        expected = card_credits(model, tiny_tokenizer, path)
        r = result["suites"][name]
        all_credits = [c for credits in expected.values() for c in credits]
        assert r["total"]["micro"] == pytest.approx(np.mean(all_credits))
        assert r["headline"] == r["total"]["micro"]                           # micro over pairs
        assert {k: v["accuracy"] for k, v in r["paradigms"].items()} == pytest.approx(
            {k: np.mean(v) for k, v in expected.items()})
    # the default protocol scores other sequences ([BOS] + ids), so its numbers differ
    ours = ev.evaluate(model, tiny_tokenizer, [AGGREGATION], progress=False)["suites"]["pairs_aggregation"]
    assert ours["headline"] == ours["total"]["macro"]


def test_under_the_card_protocol_a_tie_is_wrong(tiny_tokenizer):
    """A uniform model ties every pair of same-token sentences: half a point each under ours,
    none under the card; both count the ties."""
    model = tiny_model(tiny_tokenizer.vocab_size)
    with torch.no_grad():
        model.output.weight.zero_()
    for protocol, accuracy in (("ours", 0.5), ("card", 0.0)):
        t = ev.evaluate(model, tiny_tokenizer, SAME_TOKENS, protocol=protocol,
                        progress=False)["suites"]["pairs_same_tokens"]["total"]
        assert (t["ties"], t["wins"], t["micro"], t["macro"]) == (6, 0, accuracy, accuracy)


def test_the_printed_headline_follows_the_protocol(tmp_path, model, tiny_tokenizer, capsys):
    ckpt = tmp_path / "ckpt.safetensors"
    save_checkpoint(str(ckpt), model, {"model_config": asdict(model.cfg), "tokenizer": tiny_tokenizer.to_dict()})
    ev.main([str(ckpt), "--suite", f"{SMALL},{AGGREGATION}", "--protocol", "card", "--no-progress"])
    printed = capsys.readouterr().out
    assert "micro: mean over pairs (headline)" in printed and "macro: mean over paradigms (headline)" not in printed
    assert "protocol card: no BOS" in printed and "by field (micro over its pairs)" in printed
    assert "pairs_small          micro" in printed
    ev.main([str(ckpt), "--suite", SMALL, "--no-progress"])
    printed = capsys.readouterr().out
    assert "macro: mean over paradigms (headline)" in printed and "by field (macro over its paradigms)" in printed


# --------------------------------------------------------------------------- per-pair outputs

def read_jsonl_file(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_the_predictions_file_holds_every_pair_with_evaluates_numbers(tmp_path, model, tiny_tokenizer):
    path = str(tmp_path / "out" / "pairs.jsonl")
    result = ev.evaluate(model, tiny_tokenizer, [SMALL, AGGREGATION], predictions=path, progress=False)
    lines = read_jsonl_file(path)
    assert len(lines) == 16 and [ln["suite"] for ln in lines] == ["pairs_small"] * 8 + ["pairs_aggregation"] * 8
    bos = [tiny_tokenizer.bos_id]
    for ln in lines:
        with open(ln["file"], encoding="utf-8") as f:                     # file and line find the pair
            source = json.loads(f.read().splitlines()[ln["line"] - 1])
        assert (source["sentence_good"], source["sentence_bad"]) == (ln["good"], ln["bad"])
        assert ln["score_good"] == pytest.approx(naive_score(model, bos + tiny_tokenizer.encode(ln["good"])), abs=1e-4)
        assert ln["score_bad"] == pytest.approx(naive_score(model, bos + tiny_tokenizer.encode(ln["bad"])), abs=1e-4)
        assert ln["credit"] == ev.credit(np.array(ln["score_good"]), np.array(ln["score_bad"]))
    for suite, r in result["suites"].items():
        mine = [ln for ln in lines if ln["suite"] == suite]
        assert np.mean([ln["credit"] for ln in mine]) == pytest.approx(r["total"]["micro"])
        for paradigm, line in r["paradigms"].items():
            credits = [ln["credit"] for ln in mine if ln["paradigm"] == paradigm]
            assert np.mean(credits) == pytest.approx(line["accuracy"]) and len(credits) == line["n"]
            ids = [ln["id"] for ln in mine if ln["paradigm"] == paradigm]
            assert ids == [f"{paradigm}_{k}" for k in range(line["n"])]


def write_gz(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


def test_babylm_predictions_score_like_the_babylm_pipeline(tmp_path, model, tiny_tokenizer):
    """The file babylm/evaluation-pipeline-2025 collates: {"blimp": {UID: {"predictions": [{"id",
    "pred"}]}}, "blimp_supplement": ...}. Its scorer zips a UID's predictions with the lines of
    UID.jsonl and counts pred == sentence_good; that must give our accuracies (no ties here)."""
    small = pair_files.read_pairs([SMALL])
    for uid in ("word_order", "agreement"):
        write_gz(str(tmp_path / "blimp_filtered" / f"{uid}.jsonl.gz"),
                 [{"sentence_good": p["good"], "sentence_bad": p["bad"], "UID": uid, "field": "syntax",
                   "linguistics_term": "t"} for p in small if p["paradigm"] == uid])
    write_gz(str(tmp_path / "blimp_supplement" / "turn_taking.jsonl.gz"),   # no UID: the file names the task
             [{"sentence_good": p["good"], "sentence_bad": p["bad"]} for p in small[4:]])
    out = str(tmp_path / "preds.json")
    result = ev.evaluate(model, tiny_tokenizer, "blimp_filtered,blimp_supplement", data_root=str(tmp_path),
                         babylm_predictions=out, progress=False)
    with open(out, encoding="utf-8") as f:
        preds = json.load(f)
    assert set(preds) == {"blimp", "blimp_supplement"}
    assert set(preds["blimp"]) == {"word_order", "agreement"} and set(preds["blimp_supplement"]) == {"turn_taking"}
    for task, folder, suite in (("blimp", "blimp_filtered", "blimp_filtered"),
                                ("blimp_supplement", "blimp_supplement", "blimp_supplement")):
        for uid, entry in preds[task].items():
            with gzip.open(tmp_path / folder / f"{uid}.jsonl.gz", "rt", encoding="utf-8") as f:
                data = [json.loads(line) for line in f]
            assert [p["id"] for p in entry["predictions"]] == [f"{uid}_{k}" for k in range(len(data))]
            correct = [p["pred"].strip() == d["sentence_good"].strip() for p, d in zip(entry["predictions"], data)]
            paradigm = result["suites"][suite]["paradigms"][uid]
            assert paradigm["ties"] == 0 and np.mean(correct) == pytest.approx(paradigm["accuracy"])


def test_babylm_predictions_give_a_tie_to_the_good_sentence(tmp_path, tiny_tokenizer):
    model = tiny_model(tiny_tokenizer.vocab_size)
    with torch.no_grad():
        model.output.weight.zero_()
    out = str(tmp_path / "preds.json")
    ev.evaluate(model, tiny_tokenizer, SAME_TOKENS, babylm_predictions=out, progress=False)
    with open(out, encoding="utf-8") as f:
        preds = json.load(f)["pairs_same_tokens"]                       # other suites keep their names
    good = [p["good"] for p in pair_files.read_pairs([SAME_TOKENS])]
    assert [p["pred"] for entry in preds.values() for p in entry["predictions"]] == good


# ------------------------------------------------------------------------------ CSV and TSV

THREE_PAIRS = [("The cat sat on the mat.", "The cat sat the on mat."),
               ("A dog ran, then it sat.", "A dog ran, then it sit."),     # a comma: quoted in CSV
               ("These houses are red.", "This houses are red.")]


def write_table(path, header, rows, delimiter):
    quote = (lambda cell: f'"{cell}"' if "," in cell else cell) if delimiter == "," else (lambda cell: cell)
    lines = [delimiter.join(header)] + [delimiter.join(quote(c) for c in row) for row in rows]
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="") as f:
        f.write("\r\n".join(lines) + "\r\n")                           # CRLF, as spreadsheets write
    return str(path)


@pytest.mark.parametrize("good,bad", [("sentence_good", "sentence_bad"), ("good", "bad"),
                                      ("grammatical", "ungrammatical"), ("acceptable", "unacceptable"),
                                      ("Sentence_Good", "BAD")])
@pytest.mark.parametrize("ending", [".csv", ".tsv", ".csv.gz"])
def test_csv_and_tsv_files_are_read_under_each_recognised_header(tmp_path, good, bad, ending):
    delimiter = "\t" if ".tsv" in ending else ","
    path = write_table(tmp_path / f"agreement{ending}", ["label", good, bad],
                       [["1", g, b] for g, b in THREE_PAIRS], delimiter)
    pairs = pair_files.read_pairs([path])
    assert [(p["good"], p["bad"]) for p in pairs] == THREE_PAIRS
    assert {p["paradigm"] for p in pairs} == {"agreement"}                # the file names the paradigm
    assert [p["line"] for p in pairs] == [2, 3, 4]


def test_a_csv_file_scores_as_the_same_pairs_in_jsonl(tmp_path, model, tiny_tokenizer):
    os.makedirs(tmp_path / "csv")
    os.makedirs(tmp_path / "jsonl")
    write_table(tmp_path / "csv" / "agreement.csv", ["good", "bad"], THREE_PAIRS, ",")
    with open(tmp_path / "jsonl" / "agreement.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"sentence_good": g, "sentence_bad": b}) + "\n" for g, b in THREE_PAIRS)
    a, b = (ev.evaluate(model, tiny_tokenizer, str(path), progress=False)["suites"]["agreement"]
            for path in (tmp_path / "csv" / "agreement.csv", tmp_path / "jsonl" / "agreement.jsonl"))
    assert a["paradigms"] == b["paradigms"] and a["total"] == b["total"]


def test_a_folder_of_tables_takes_paradigms_and_fields_from_columns_or_file_names(tmp_path):
    folder = tmp_path / "mine"
    os.makedirs(folder / "sub")
    write_table(folder / "one.csv", ["UID", "Field", "good", "bad"],
                [["A", "syntax/semantics", "a b", "b a"], ["B", "syntax", "c d", "d c"]], ",")
    write_table(folder / "sub" / "two.tsv.gz", ["paradigm", "good", "bad"], [["C", "e f", "f e"]], "\t")
    write_table(folder / "three.tsv", ["good", "bad"], [["g h", "h g"]], "\t")
    name, files = pair_files.suite_files(str(folder))
    assert name == "mine" and [os.path.relpath(f, folder) for f in files] == ["one.csv", "sub/two.tsv.gz", "three.tsv"]
    pairs = pair_files.read_pairs(files)
    assert [p["paradigm"] for p in pairs] == ["A", "B", "C", "three"]
    assert [p.get("field") for p in pairs] == ["syntax_semantics", "syntax", None, None]


def test_other_column_names_are_mapped_with_columns(tmp_path, model, tiny_tokenizer):
    path = write_table(tmp_path / "mine.csv", ["kind", "ok", "nope"], [["X", g, b] for g, b in THREE_PAIRS], ",")
    columns = pair_files.parse_columns("good=ok,bad=nope,paradigm=kind")
    assert columns == {"good": "ok", "bad": "nope", "paradigm": "kind"}
    pairs = pair_files.read_pairs([path], columns=columns)
    assert [(p["good"], p["bad"], p["paradigm"]) for p in pairs] == [(g, b, "X") for g, b in THREE_PAIRS]
    jsonl = write(tmp_path, [json.dumps({"ok": g, "nope": b}) for g, b in THREE_PAIRS], "mine2.jsonl")
    assert [(p["good"], p["bad"]) for p in pair_files.read_pairs([jsonl], columns=columns)] == THREE_PAIRS
    r = ev.evaluate(model, tiny_tokenizer, [path], columns=columns, progress=False)["suites"]["mine"]
    assert list(r["paradigms"]) == ["X"] and r["total"]["n"] == 3
    with pytest.raises(SystemExit, match=r"^--columns good=ok,sad=nope: 'sad=nope' is not ROLE=NAME"):
        pair_files.parse_columns("good=ok,sad=nope")


@pytest.mark.parametrize("name,text,message", [
    ("bad.csv", "first,second\na,b\n", "bad.csv:1: no column for the good sentence in the header (first, second); "
                                       "recognised: sentence_good, good, grammatical, acceptable"),
    ("bad.csv", "good,other\na,b\n", "bad.csv:1: no column for the bad sentence"),
    ("bad.csv", "good,bad\na,b\nc,d,e\n", "bad.csv:3: 3 fields where the header has 2"),
    ("bad.csv", "good,bad\na,b\nc\n", "bad.csv:3: 1 fields where the header has 2"),
    ("bad.csv", 'good,bad\n"a,b\nc,d\n', "bad.csv:2: not valid CSV (unexpected end of data)"),
    ("bad.csv", 'good,bad\na,b\n"c"x,d\n', "bad.csv:3: not valid CSV (',' expected after '\"')"),
    ("bad.csv", "good,bad\n,b\n", "bad.csv:2: good is empty"),
    ("bad.tsv", "good\tbad\na\t  \n", "bad.tsv:2: bad is empty"),
    ("bad.tsv", "good\tbad\na b\n", "bad.tsv:2: 1 fields where the header has 2"),
    ("bad.csv", "good,bad\n", "bad.csv: no pairs in the file"),
    ("bad.csv", "", "bad.csv: no pairs in the file"),
])
def test_a_bad_csv_or_tsv_line_stops_with_one_line_naming_file_and_line(tmp_path, model, tiny_tokenizer, name,
                                                                         text, message):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SystemExit) as e:
        ev.evaluate(model, tiny_tokenizer, str(path), progress=False)
    assert str(e.value).startswith(str(tmp_path / message))
    assert "\n" not in str(e.value)


def test_a_mapped_column_that_is_absent_and_an_undecodable_file_are_one_line_errors(tmp_path):
    path = write_table(tmp_path / "t.csv", ["good", "bad"], [["a", "b"]], ",")
    with pytest.raises(SystemExit, match=r"t.csv:1: no column 'ok' \(--columns good=ok\); the header has good, bad$"):
        pair_files.read_pairs([path], columns={"good": "ok"})
    binary = tmp_path / "latin1.csv"
    binary.write_bytes("good,bad\ncaf\xe9,b\n".encode("latin-1"))
    with pytest.raises(SystemExit, match=r"latin1.csv: not a readable UTF-8 CSV/TSV file \(UnicodeDecodeError"):
        pair_files.read_pairs([str(binary)])


# ------------------------------------------------------------------------------- small fixes

def test_a_group_at_100_percent_has_an_interval_below_100_like_its_paradigms():
    pairs = [{"paradigm": f"P{k % 3}", "field": "f", "good": "", "bad": "", "file": "", "line": 0}
             for k in range(3000)]
    credits, ties = np.ones(3000), np.zeros(3000, dtype=bool)
    r = ev.aggregate(pairs, credits, ties)
    paradigm_low = r["paradigms"]["P0"]["ci95"][0]
    group_low, group_high = r["by_field"]["f"]["macro_ci95"]
    assert paradigm_low == pytest.approx(0.99617, abs=1e-5)                   # Wilson, 1000 of 1000
    assert group_high == 1.0 and paradigm_low < group_low < 1.0              # three paradigms: narrower
    # one paradigm alone: near its Wilson interval (within 0.2 points), not [100, 100]
    single = ev.accuracy_summary(np.ones(1000), np.zeros(1000, dtype=bool), np.array(["P"] * 1000))
    assert single["macro_ci95"][0] == pytest.approx(paradigm_low, abs=0.002) and single["macro_ci95"][0] < 0.998
    table = ev.format_table("x", {**r, "seconds": 1.0, "pairs_per_second": 1.0})
    assert "[100.0, 100.0]" not in table


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_plain_lines_in_a_log_and_one_redrawn_line_on_a_terminal(model, tiny_tokenizer, capsys,
                                                                               monkeypatch):
    ev.evaluate(model, tiny_tokenizer, [SMALL, AGGREGATION], batch_tokens=8, progress=True)
    err = capsys.readouterr().err                                 # captured: not a terminal
    assert "\r" not in err
    lines = err.splitlines()
    assert 2 <= len(lines) <= 22 and lines[-1].startswith("pairs_aggregation: 16/16 sentences (100%)")
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    ev.evaluate(model, tiny_tokenizer, SMALL, batch_tokens=8, progress=True)
    assert "\r" in terminal.getvalue() and "\n" not in terminal.getvalue()


# ------------------------------------------------------- the BabyLM pipeline's fast sets and results tree

# babylm/evaluation-pipeline-2025 at commit 20658672cca5, evaluation_pipeline/collate_preds.py: _check_size
# asks every UID of a task's predictions.json for exactly BLIMP_FAST_SIZE (200) or SUPPLEMENT_FAST_SIZE (50)
# predictions under --fast, and SUPPLEMENT_SIZES (these five numbers) for the full supplement.
PIPELINE_FAST_SIZES = {"blimp": 200, "blimp_supplement": 50}
PIPELINE_SUPPLEMENT_SIZES = {"hypernym": 842, "qa_congruence_easy": 64, "qa_congruence_tricky": 165,
                             "subject_aux_inversion": 3867, "turn_taking": 280}


def pipeline_size_errors(task_preds: dict, size) -> list:
    """The pipeline's size rule as we read it: for each key (lower-cased) of {UID: {"predictions":
    [...]}}, len(predictions) must equal size (a number, or a dict by UID). The messages it prints."""
    errors = []
    for key, res in task_preds.items():
        want = size[key.lower()] if isinstance(size, dict) else size
        if len(res["predictions"]) != want:
            errors.append(f"The sub-data {key.lower()} has {len(res['predictions'])} datapoints, not {want}")
    return errors


def fake_scores(model, seqs, *args, **kw):
    """Scores without a forward pass, for tests of the files only: the negative token count."""
    return -np.array([len(s) for s in seqs], dtype=np.float64)


def test_fast_means_the_pipelines_sizes_per_suite():
    assert pair_files.fast_size("blimp_filtered") == 200 and pair_files.fast_size("blimp_supplement") == 50
    assert pair_files.fast_size("zhoblimp") == 200 and pair_files.fast_size("my_pairs.csv") == 200


@pytest.mark.skipif(not os.path.isdir(SHARED_DATA), reason="needs ../shared/data (BLiMP-filtered and the supplement)")
@pytest.mark.parametrize("fast", [True, False])
def test_babylm_files_pass_the_pipelines_size_checks_and_land_in_its_tree(tmp_path, tiny_tokenizer, monkeypatch,
                                                                           fast):
    """On the shared BabyLM data: --babylm-predictions and the --babylm-results tree hold 200 per
    BLiMP paradigm (13,400) and 50 per supplement task under --fast, every pair otherwise, in the
    folders collate_preds.py reads, with ids UID_0, UID_1, ... in file order."""
    monkeypatch.setattr(ev, "score_sequences", fake_scores)
    model = tiny_model(tiny_tokenizer.vocab_size, max_seq_len=512)
    run = tmp_path / "out" / "model_a"
    os.makedirs(run)
    save_checkpoint(str(run / "ckpt.safetensors"), model,
                    {"model_config": asdict(model.cfg), "tokenizer": tiny_tokenizer.to_dict()})
    suites = "blimp_filtered,blimp_supplement" if fast else "blimp_supplement"
    argv = [str(run / "ckpt.safetensors"), "--suite", suites, "--data-root", SHARED_DATA, "--no-progress",
            "--babylm-predictions", str(tmp_path / "preds.json"), "--babylm-results", str(tmp_path / "results")]
    ev.main(argv + (["--fast"] if fast else []))
    preds = json.loads((tmp_path / "preds.json").read_text(encoding="utf-8"))
    tree = tmp_path / "results" / "model_a" / "main" / "zero_shot" / "causal" / "blimp"
    folders = {"blimp": "blimp_fast" if fast else "blimp_filtered",
               "blimp_supplement": "supplement_fast" if fast else "supplement_filtered"}
    for task in preds:
        size = PIPELINE_FAST_SIZES[task] if fast else PIPELINE_SUPPLEMENT_SIZES
        assert pipeline_size_errors(preds[task], size) == []
        assert json.loads((tree / folders[task] / "predictions.json").read_text(encoding="utf-8")) == preds[task]
        for uid, entry in preds[task].items():
            assert [p["id"] for p in entry["predictions"]] == [f"{uid}_{k}" for k in range(len(entry["predictions"]))]
    if fast:
        assert sum(len(e["predictions"]) for e in preds["blimp"].values()) == 13400 == 67 * 200
        assert sum(len(e["predictions"]) for e in preds["blimp_supplement"].values()) == 250
    assert sorted(os.listdir(tree)) == sorted(folders[t] for t in preds)


def test_the_results_tree_is_refused_where_it_would_overwrite_an_input_or_hold_nothing(tmp_path, model, tiny_tokenizer):
    small = pair_files.read_pairs([SMALL])
    data = tmp_path / "data"
    write_gz(str(data / "blimp_filtered" / "agreement.jsonl.gz"),
             [{"sentence_good": p["good"], "sentence_bad": p["bad"], "UID": "agreement"} for p in small])
    target = tmp_path / "res" / "m" / "main" / "zero_shot" / "causal" / "blimp" / "blimp_filtered" / "predictions.json"
    os.makedirs(target.parent)
    ckpt = str(target)            # the model itself lies where the tree would write
    save_checkpoint(ckpt, model, {"model_config": asdict(model.cfg), "tokenizer": tiny_tokenizer.to_dict()})
    argv = [ckpt, "--suite", "blimp_filtered", "--data-root", str(data), "--babylm-results", str(tmp_path / "res"),
            "--model-name", "m"]
    with pytest.raises(SystemExit, match="--babylm-results .*predictions.json: is .*an input of this command"):
        ev.main(argv)
    with pytest.raises(SystemExit, match="--babylm-results: the tree holds blimp_filtered and blimp_supplement"):
        ev.main([ckpt, "--suite", SMALL, "--babylm-results", str(tmp_path / "res")])


def test_all_checkpoints_scores_every_milestone_into_a_learning_curve(tmp_path, tiny_tokenizer, capsys):
    """A run folder's chck_1M, chck_2M (in milestone order, not name order: chck_10M last) and
    ckpt.safetensors as main: each scored as evaluate scores it alone, words seen from each
    checkpoint's info, the curve printed and written, a revision per milestone in the tree."""
    pytest.importorskip("matplotlib")
    run = tmp_path / "out" / "run_b"
    os.makedirs(run / "checkpoints")
    small = pair_files.read_pairs([SMALL])
    data = tmp_path / "data"
    write_gz(str(data / "blimp_filtered" / "agreement.jsonl.gz"),
             [{"sentence_good": p["good"], "sentence_bad": p["bad"], "UID": "agreement"} for p in small])
    models = {}
    for seed, (revision, words) in enumerate([("chck_1M", 1e6), ("chck_2M", 2e6), ("chck_10M", 1e7), ("main", 1.2e7)]):
        m = tiny_model(tiny_tokenizer.vocab_size, seed=seed)
        path = run / "ckpt.safetensors" if revision == "main" else run / "checkpoints" / f"{revision}.safetensors"
        save_checkpoint(str(path), m, {"model_config": asdict(m.cfg), "tokenizer": tiny_tokenizer.to_dict(),
                                       "words_seen": words, "tokens_seen": int(words * 1.3), "iter_num": seed})
        models[revision] = m
    out, png = tmp_path / "curve.json", tmp_path / "curve.png"
    result = ev.main([str(run), "--all-checkpoints", "--suite", f"{SMALL},blimp_filtered", "--data-root", str(data),
                      "--fast", "--out", str(out), "--png", str(png), "--babylm-results", str(tmp_path / "results"),
                      "--no-progress"])
    assert [c["revision"] for c in result["curve"]] == ["chck_1M", "chck_2M", "chck_10M", "main"]
    assert [c["words_seen"] for c in result["curve"]] == [1e6, 2e6, 1e7, 1.2e7]
    for c in result["curve"]:
        alone = ev.evaluate(models[c["revision"]], tiny_tokenizer, [SMALL], progress=False)
        assert c["headline"]["pairs_small"] == alone["suites"]["pairs_small"]["headline"]
        assert os.path.isfile(tmp_path / "results" / "run_b" / c["revision"] / "zero_shot" / "causal" / "blimp" /
                              "blimp_fast" / "predictions.json")
    assert json.loads(out.read_text())["curve"] == result["curve"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "words seen" in printed and "12,000,000" in printed and "chck_10M" in printed
    with pytest.raises(SystemExit, match="one file per checkpoint would overwrite itself"):
        ev.main([str(run), "--all-checkpoints", "--suite", SMALL, "--predictions", str(tmp_path / "p.jsonl")])
    with pytest.raises(SystemExit, match="no checkpoints/chck_"):
        ev.main([str(tmp_path / "data"), "--all-checkpoints", "--suite", SMALL])


def test_all_checkpoints_takes_token_milestones_too_in_milestone_order(tmp_path):
    import argparse
    import eval_outputs
    run = tmp_path / "run"
    os.makedirs(run / "checkpoints")
    for name in ("chck_tok_10M", "chck_tok_2M", "chck_tok_1M", "notes"):
        (run / "checkpoints" / f"{name}.safetensors").write_bytes(b"")
    args = argparse.Namespace(model=str(run), revision=None, predictions=None, babylm_predictions=None)
    assert [r for r, _ in eval_outputs.checkpoints_of(args)] == ["chck_tok_1M", "chck_tok_2M", "chck_tok_10M"]


# --------------------------------------------------------------- a sentence a row (CLiMP's CSVs)

CLIMP_ROWS = [("ba", "ba_1", "他把书看完了。", "1"), ("ba", "ba_1", "他把书看。", "0"),
              ("ba", "ba_1", "她把门关上了。", "1"), ("ba", "ba_1", "她把门关。", "0"),
              ("classifier", "cl_1", "一本书", "0"), ("classifier", "cl_1", "一个书", "1")]  # bad first: either order


def write_climp(path, rows, header=True):
    """As CLiMP's files: pandas' index column and header ",0,1,2,3"; or neither; CRLF line ends."""
    lines = [",0,1,2,3"] + [f"{i},{','.join(r)}" for i, r in enumerate(rows)] if header else [",".join(r) for r in rows]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    return str(path)


@pytest.mark.parametrize("header", [True, False])
def test_a_sentence_a_row_file_pairs_consecutive_good_and_bad_rows(tmp_path, header):
    path = write_climp(tmp_path / "climp.csv", CLIMP_ROWS, header)
    columns = pair_files.parse_columns("sentence=2,label=3,paradigm=1")
    pairs = pair_files.read_pairs([path], columns=columns)
    assert [(p["good"], p["bad"], p["paradigm"]) for p in pairs] == [
        ("他把书看完了。", "他把书看。", "ba_1"), ("她把门关上了。", "她把门关。", "ba_1"), ("一个书", "一本书", "cl_1")]
    assert [p["line"] for p in pairs] == ([2, 4, 6] if header else [1, 3, 5])


@pytest.mark.parametrize("rows,message", [
    (CLIMP_ROWS[:1] + CLIMP_ROWS[2:], "climp.csv:3: rows 2 and 3 are both good (1)"),
    (CLIMP_ROWS[:3], "climp.csv:4: the last sentence row has no partner"),
    (CLIMP_ROWS[:3] + [("ba", "ba_2", "她把门关。", "0")], "climp.csv:5: 1 'ba_2' here and 'ba_1' at line 4"),
    ([("ba", "ba_1", "他把书看完了。", "yes")] + CLIMP_ROWS[1:2], "climp.csv:2: 3 is 'yes', not 1 (good) or 0 (bad)"),
])
def test_sentence_rows_that_do_not_alternate_stop_with_file_and_line(tmp_path, rows, message):
    path = write_climp(tmp_path / "climp.csv", rows)
    with pytest.raises(SystemExit) as e:
        pair_files.read_pairs([path], columns=pair_files.parse_columns("sentence=2,label=3,paradigm=1"))
    assert str(e.value).startswith(str(tmp_path / message)) and "\n" not in str(e.value)


def test_columns_that_look_wrong_warn_and_impossible_ones_are_refused(tmp_path, capsys):
    path = write_climp(tmp_path / "climp.csv", CLIMP_ROWS)
    pair_files.read_pairs([path], columns=pair_files.parse_columns("good=2,bad=3"))   # sentences against labels
    err = capsys.readouterr().err
    assert err.startswith("warning: 6 of 6 pairs have a bare number for a sentence") and err.count("\n") == 1
    same = tmp_path / "same.csv"
    same.write_text("good,bad\na b,a b\nc d,c d\ne f,f e\n", encoding="utf-8")
    pair_files.read_pairs([str(same)])
    assert capsys.readouterr().err.startswith("warning: 2 of 3 pairs have the same good and bad sentence")
    for spec, message in [("sentence=2", "needs both sentence=NAME and label=NAME"),
                          ("sentence=2,label=2", "for both the sentence and its label"),
                          ("sentence=2,label=3,good=1", "not both")]:
        with pytest.raises(SystemExit, match=message):
            pair_files.parse_columns(spec)


def test_png_without_matplotlib_is_one_line_before_any_scoring(tmp_path, model, tiny_tokenizer, monkeypatch):
    run = tmp_path / "run"
    os.makedirs(run)
    save_checkpoint(str(run / "ckpt.safetensors"), model,
                    {"model_config": asdict(model.cfg), "tokenizer": tiny_tokenizer.to_dict()})
    monkeypatch.setitem(sys.modules, "matplotlib", None)          # import matplotlib raises ImportError
    monkeypatch.setattr(ev, "evaluate", lambda *a, **k: pytest.fail("scored before the error"))
    with pytest.raises(SystemExit, match=r"^eval_blimp.py: --png needs matplotlib \(pip install matplotlib\)$"):
        ev.main([str(run), "--all-checkpoints", "--suite", SMALL, "--png", str(tmp_path / "c.png")])


def test_a_pair_file_starting_with_a_utf8_bom_reads_as_without_it(tmp_path):
    """Spreadsheet programs save CSV with a byte-order mark: the header's first name must not carry it."""
    from pairs import read_pairs
    for name, text in (("p.csv", "sentence_good,sentence_bad\nThe cat sat.,The cat sit.\n"),
                       ("p.jsonl", '{"sentence_good": "The cat sat.", "sentence_bad": "The cat sit."}\n')):
        path = tmp_path / name
        path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
        pairs = read_pairs([str(path)])
        assert [(p["good"], p["bad"]) for p in pairs] == [("The cat sat.", "The cat sit.")]
