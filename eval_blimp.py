"""
Score a causal language model on minimal pairs: BLiMP and its Dutch and Chinese peers.

    python eval_blimp.py out/model_a/ckpt.safetensors                       # full English BLiMP
    python eval_blimp.py out/model_a/ckpt.safetensors --suite blimp_filtered,blimp_supplement --fast
    python eval_blimp.py exports/model_a --suite blimp,blimp_nl,zhoblimp --out results/blimp.json
    python eval_blimp.py out/model_a/ckpt.safetensors --suite my_pairs.jsonl    # any JSONL of pairs, or a folder
    python eval_blimp.py out/model_a/ckpt.safetensors --leading-space --no-bos  # other pipelines' conventions

From code (train.py and the results scripts do this):

    from eval_blimp import evaluate
    result = evaluate(model, tokenizer, "blimp,blimp_nl", fast=True)   # the dict --out writes
    result["suites"]["blimp"]["total"]["macro"]                        # the headline number

The model argument is a train.py checkpoint or a folder written by export_hf.py. Suites
(files under --data-root, default ../shared/data; see its SOURCES.md):

    blimp             blimp/*.jsonl.gz                        67 paradigms x 1000 pairs
    blimp_filtered    blimp_filtered/*.jsonl.gz               BabyLM's filtered BLiMP, 59,875 pairs
    blimp_supplement  blimp_supplement/*.jsonl.gz             BabyLM supplement, 5 tasks, 5,218 pairs
    blimp_nl          minimal_pairs/nl/blimp_nl.pairs.jsonl.gz   Dutch, 84 paradigms, 8,400 pairs
    zhoblimp          minimal_pairs/zh/zhoblimp.pairs.jsonl.gz   Chinese, 118 paradigms, 35,400 pairs
    sling             minimal_pairs/zh/sling.pairs.jsonl.gz      Chinese, 40,560 pairs

A pair file is JSONL (optionally gzip'd) with "sentence_good" and "sentence_bad" on every line,
and optionally "UID" (the paradigm; the file name otherwise), "field", "linguistics_term",
"phenomenon", which the tables group by.

The scoring rule (Warstadt et al. 2020, BLiMP; the rule lm-eval, minicons and the BabyLM
pipelines share, with their pitfalls fixed):

    score(s) = sum_{t=1..n} log p(w_t | <s>, w_1 .. w_{t-1})      s tokenized as w_1 .. w_n

BOS is the token training puts before every document; it is conditioned on and not scored. No
EOS, no length normalisation. A pair is right when score(good) > score(bad); an exact tie earns
half credit and is counted (several pipelines give ties to the good sentence, which lets a
degenerate model that scores everything alike look better than chance). log p is computed in
fp32 (and summed in fp64) even when the forward pass runs in bf16. --leading-space scores
" " + sentence as lm-eval's BLiMP task does (its target delimiter); --no-bos drops BOS, so the
first token is only context, as for a model trained without BOS.

Speed: all 2N sentences (N pairs; duplicates once) are laid out as prefix trees, so that a
prefix several sentences share ("<s> The cats" in "<s> The cats are/is ...") is computed once:
sorted lexicographically, each sentence adds only the positions after its common prefix with the
one before. Rows of up to 128 positions hold a tree each, with a tree attention mask (a position
sees its ancestors) and each position's depth as its RoPE position, which gives every position
exactly the hidden state it has in each of its sentences. Rows are batched to at most
--batch-tokens positions, one forward pass per batch; every position is projected to the
vocabulary once, 512 at a time. Full BLiMP needs 0.86M positions this way instead of 1.49M.
"""

import argparse
import glob
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch

from model import DTYPES

DEFAULT_DATA_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shared", "data")

# suite name -> glob under the data root
SUITES = {
    "blimp": "blimp/*.jsonl.gz",
    "blimp_filtered": "blimp_filtered/*.jsonl.gz",
    "blimp_supplement": "blimp_supplement/*.jsonl.gz",
    "blimp_nl": "minimal_pairs/nl/blimp_nl.pairs.jsonl.gz",
    "zhoblimp": "minimal_pairs/zh/zhoblimp.pairs.jsonl.gz",
    "sling": "minimal_pairs/zh/sling.pairs.jsonl.gz",
}
# BLiMP's folder also holds the published models' accuracies, which are not pairs
NOT_PAIRS = {"models_summary.jsonl.gz"}
FAST_PAIRS = 200       # --fast: the first 200 pairs of each paradigm, as BabyLM's fast set
GROUP_KEYS = ("field", "linguistics_term", "phenomenon")
Z95 = 1.959964         # two-sided 95% quantile of the standard normal


# ------------------------------------------------------------------------------------ reading pairs

def suite_files(suite: str, data_root: str = DEFAULT_DATA_ROOT):
    """A suite name, a pair file or a folder of pair files -> (name, sorted list of files)."""
    if suite in SUITES:
        pattern = os.path.join(data_root, SUITES[suite])
        files = sorted(f for f in glob.glob(pattern) if os.path.basename(f) not in NOT_PAIRS)
        if not files:
            raise SystemExit(f"{pattern}: no such file (suite {suite}; set --data-root, now {data_root})")
        return suite, files
    if os.path.isdir(suite):
        files = sorted(glob.glob(os.path.join(suite, "**", "*.jsonl"), recursive=True)
                       + glob.glob(os.path.join(suite, "**", "*.jsonl.gz"), recursive=True))
        if not files:
            raise SystemExit(f"{suite}: folder holds no .jsonl or .jsonl.gz file")
        return os.path.basename(os.path.normpath(suite)), files
    if os.path.isfile(suite):
        return file_stem(suite), [suite]
    raise SystemExit(f"{suite}: no such file or folder, and not a suite ({', '.join(SUITES)})")


def file_stem(path: str) -> str:
    name = os.path.basename(path)
    for ext in (".gz", ".jsonl", ".pairs"):
        name = name[:-len(ext)] if name.endswith(ext) else name
    return name


def read_pairs(files, fast: bool = False) -> list:
    """Every pair of the files, in order, as dicts with good, bad, paradigm, the GROUP_KEYS found,
    file and line. Any bad line stops with one message naming file and line: nothing is skipped
    silently (blank lines hold no pair and are passed over)."""
    pairs, per_paradigm = [], {}
    for path in files:
        if not os.path.isfile(path):
            raise SystemExit(f"{path}: no such file")
        opener = gzip.open if path.endswith(".gz") else open
        n_in_file = 0
        try:
            with opener(path, "rt", encoding="utf-8") as f:
                for line_no, line in enumerate(f, start=1):
                    if not line.strip():
                        continue
                    pair = parse_pair(line, path, line_no)
                    n_in_file += 1
                    seen = per_paradigm.get(pair["paradigm"], 0)
                    per_paradigm[pair["paradigm"]] = seen + 1
                    if fast and seen >= FAST_PAIRS:
                        continue
                    pairs.append(pair)
        except (UnicodeDecodeError, OSError, EOFError) as e:
            raise SystemExit(f"{path}: not a readable UTF-8 JSONL file ({type(e).__name__}: {e})")
        if n_in_file == 0:
            raise SystemExit(f"{path}: no pairs in the file")
    return pairs


def parse_pair(line: str, path: str, line_no: int) -> dict:
    where = f"{path}:{line_no}"
    try:
        d = json.loads(line)
    except json.JSONDecodeError as e:
        raise SystemExit(f"{where}: not valid JSON ({e.msg})")
    if not isinstance(d, dict):
        raise SystemExit(f"{where}: a line must be a JSON object with sentence_good and sentence_bad")
    for key in ("sentence_good", "sentence_bad"):
        if key not in d:
            raise SystemExit(f"{where}: no '{key}' (a pair needs sentence_good and sentence_bad)")
        if not isinstance(d[key], str):
            raise SystemExit(f"{where}: {key} is a {type(d[key]).__name__}, not a string")
        if not d[key].strip():
            raise SystemExit(f"{where}: {key} is empty")
    pair = {"good": d["sentence_good"], "bad": d["sentence_bad"],
            "paradigm": str(d.get("UID") or file_stem(path)), "file": path, "line": line_no}
    for key in GROUP_KEYS:
        if d.get(key) is not None:
            # BLiMP spells one field two ways; "syntax/semantics" is "syntax_semantics"
            pair[key] = str(d[key]).replace("/", "_") if key == "field" else str(d[key])
    return pair


# ------------------------------------------------------------------------------------------ scoring

def encode_pairs(pairs, tokenizer, max_seq_len: int, bos: bool = True, leading_space: bool = False):
    """Token ids of every distinct sentence, and for each pair the index of its good and bad one.

    Returns (seqs, good_idx, bad_idx): seqs[i] = [BOS] + ids (or ids with --no-bos). A sentence
    that needs more than max_seq_len input positions stops with a message naming file and line.
    """
    index, texts = {}, []
    good_idx, bad_idx = np.empty(len(pairs), np.int64), np.empty(len(pairs), np.int64)
    prefix = " " if leading_space else ""
    for k, p in enumerate(pairs):
        for key, out in (("good", good_idx), ("bad", bad_idx)):
            text = prefix + p[key]
            if text not in index:
                index[text] = len(texts)
                texts.append(text)
            out[k] = index[text]
    seqs = tokenizer.encode_documents(texts, bos)
    for k, p in enumerate(pairs):  # a sentence is scored from n - 1 inputs predicting n - 1 targets
        for key, i in (("good", good_idx[k]), ("bad", bad_idx[k])):
            if len(seqs[i]) - 1 > max_seq_len:
                raise SystemExit(f"{p['file']}:{p['line']}: sentence_{key} is {len(seqs[i]) - 1} tokens "
                                 f"after {'BOS' if bos else 'its first token'}, more than the model's "
                                 f"context of {max_seq_len}")
            if len(seqs[i]) == int(bos):
                raise SystemExit(f"{p['file']}:{p['line']}: sentence_{key} encodes to no tokens")
    return seqs, good_idx, bad_idx


MAX_ROW_POSITIONS = 128  # positions per prefix-tree row (unless one sentence is longer); see pack_prefix_trees


def pack_prefix_trees(seqs, max_positions: int = MAX_ROW_POSITIONS):
    """Lay out the input positions of all sequences so that a prefix they share is computed once.

    A sequence s is scored from its inputs s[:-1], which predict s[1:]. In a causal model the
    hidden state at a position depends only on the tokens up to it, so "<s> The cats are" and
    "<s> The cats is" share the states of "<s> The cats". Sorted lexicographically, each sequence
    shares its longest common prefix with the one before it; appending only the rest gives a
    prefix tree (trie) in depth-first order. A row holds such a tree (a forest under --no-bos) of
    at most max_positions nodes, or one longer sequence. On full BLiMP this computes 0.86M
    positions instead of 1.49M (1.7x fewer); larger rows save little more (1.79x at 1024) while
    attention over a row costs its length squared.

    Returns (rows, paths): rows[r] = (tokens, parent) of its nodes, parent -1 for a root;
    paths[i] = (r, node indices of seq i's inputs in row r), or None for a sequence of one token.
    """
    rows, paths = [], [None] * len(seqs)
    tokens, parent, path, prev = [], [], [], []   # the open row, and the previous sequence's inputs
    for i in sorted(range(len(seqs)), key=lambda i: seqs[i]):
        inputs = seqs[i][:-1]
        if not inputs:
            continue
        shared = 0
        while shared < min(len(inputs), len(prev)) and inputs[shared] == prev[shared]:
            shared += 1
        if shared < len(inputs) and tokens and len(tokens) + len(inputs) - shared > max_positions:
            rows.append((np.array(tokens), np.array(parent)))            # the row is full
            tokens, parent, shared = [], [], 0
        path = path[:shared]
        for tok in inputs[shared:]:
            parent.append(path[-1] if path else -1)
            path.append(len(tokens))
            tokens.append(tok)
        paths[i] = (len(rows), np.array(path))
        prev = inputs
    if tokens:
        rows.append((np.array(tokens), np.array(parent)))
    return rows, paths


def tree_attention(parent):
    """(n, n) bool: node i may attend to node j when j is i itself or one of its ancestors,
    exactly the positions before it in each sequence through it. Parents come before children."""
    mask = np.eye(len(parent), dtype=bool)
    for i, p in enumerate(parent):
        if p >= 0:
            mask[i] |= mask[p]
    return mask


@torch.no_grad()
def score_sequences(model, seqs, batch_tokens: int = 2048, dtype=None, pad_id: int = 0,
                    progress: bool = False, desc: str = "scoring",
                    max_row_positions: int = MAX_ROW_POSITIONS) -> np.ndarray:
    """Sum of log p(seq[t] | seq[:t]) over t = 1 .. len(seq)-1 for every sequence, as float64 (N,).

    The sequences are packed into prefix-tree rows (pack_prefix_trees); rows are sorted by length,
    longest first (so the largest batch, and any out-of-memory, comes first), and batched to at
    most batch_tokens positions. In a batch padded to N positions, one forward pass runs with
        x = each row's tokens padded with pad_id,  position = the node's depth in its tree,
        attention mask = tree_attention (a padded position sees only itself),
    which gives every node the hidden state it has in each of its sequences. Then per sequence
        score = sum over its inputs t of  logit_t[y_t] - logsumexp(logit_t)   in fp32,
    the log-softmax of a shared node computed once, and the terms summed in fp64. The model should
    be in eval mode (no dropout).
    """
    device = next(model.parameters()).device
    autocast = dtype is not None and dtype != torch.float32
    rows, paths = pack_prefix_trees(seqs, max_row_positions)
    in_row = [[] for _ in rows]                    # the sequences placed in each row
    for i, p in enumerate(paths):
        if p is not None:
            in_row[p[0]].append(i)
    scores = torch.zeros(len(seqs), dtype=torch.float64, device=device)  # a one-token sequence scores 0
    lengths = np.array([len(tokens) for tokens, _ in rows])
    order = np.argsort(-lengths, kind="stable")
    bar = _progress_bar(len(seqs), desc, progress)
    bar.update(len(seqs) - sum(len(r) for r in in_row))
    start = 0
    while start < len(order):
        N = int(lengths[order[start]])                    # the longest row of this batch
        batch = order[start:start + max(1, batch_tokens // N)]
        x = np.full((len(batch), N), pad_id, dtype=np.int64)
        depth = np.zeros((len(batch), N), dtype=np.int64)
        mask = np.broadcast_to(np.eye(N, dtype=bool), (len(batch), N, N)).copy()
        node, target, owner = [], [], []               # one entry per scored token
        for b, r in enumerate(batch):
            tokens, parent = rows[r]
            n = len(tokens)
            x[b, :n] = tokens
            mask[b, :n, :n] = tree_attention(parent)
            depth[b, :n] = mask[b, :n, :n].sum(1) - 1  # depth = number of ancestors
            for i in in_row[r]:
                node.append(b * N + paths[i][1])
                target.append(seqs[i][1:])
                owner.append(np.full(len(seqs[i]) - 1, i))
        node, target, owner = (torch.from_numpy(np.concatenate(a)).to(device) for a in (node, target, owner))
        x, depth, mask = (torch.from_numpy(a).to(device, non_blocking=True) for a in (x, depth, mask))
        with torch.autocast(device.type, dtype=dtype, enabled=autocast):
            h = final_hidden(model, x, depth, mask)       # (B, N, dim)
            add_logprobs(scores, model.output, h.flatten(0, 1), node, target, owner)
        bar.update(sum(len(in_row[r]) for r in batch))
        start += len(batch)
    bar.close()
    return scores.cpu().numpy()


def final_hidden(model, x, position, mask):
    """model.forward up to the output projection, at the given positions (B, T) and attention
    mask (B, T, T): the final RMSNorm's output, (B, T, dim).

    Why not model(x)? Its positions are 0 .. T-1 with causal attention, where a tree needs each
    node's depth and its ancestors; and it projects every position (or only the last) to the
    vocabulary, where add_logprobs projects each scored position once, a slice at a time, so the
    full fp32 logits never exist at once. tests/test_eval_blimp.py checks the scores against model(x, x).
    """
    cos, sin = model.rope_cos[position][:, None], model.rope_sin[position][:, None]  # (B, 1, T, head_dim)
    h = model.tok_embeddings(x)
    for layer in model.layers:
        h = layer(h, cos, sin, mask=mask[:, None])     # the same mask for every head
    return model.norm(h)


LOGIT_ROWS = 512  # positions projected to the vocabulary at a time: 512 x 16k fp32 logits = 33 MB


def add_logprobs(sums, output, h, node, target, owner):
    """sums[owner[e]] += log_softmax(output(h[node[e]]))[target[e]] for every entry e, in fp64.
    Only the positions some entry names are projected; the logits go to fp32 before the
    log-softmax, whatever dtype the projection ran in."""
    used, node = torch.unique(node, return_inverse=True)         # sorted positions, entry -> index
    h = h[used]
    for i in range(0, len(used), LOGIT_ROWS):
        here = (node >= i) & (node < i + LOGIT_ROWS)
        logp = output(h[i:i + LOGIT_ROWS]).float().log_softmax(-1)                 # (<=512, V)
        sums.index_add_(0, owner[here], logp[node[here] - i, target[here]].double())


def _progress_bar(total, desc, enabled):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="sent", disable=not enabled, leave=False, file=sys.stderr)


def resolve_dtype(dtype, device: torch.device):
    """None or "auto" -> bfloat16 on a GPU that has it, float32 otherwise; strings -> torch dtypes."""
    if dtype in (None, "auto"):
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise SystemExit(f"--dtype {dtype}: use one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def default_batch_tokens(device: torch.device) -> int:
    # CPU: 2k positions were as fast as any size from 1k to 16k for Model A, and larger batches
    # slower (bench/eval_throughput.py); a GPU wants far larger batches to be kept busy
    return 32768 if device.type == "cuda" else 2048


# -------------------------------------------------------------------------------------- aggregation

def credit(good_scores, bad_scores) -> np.ndarray:
    """Per pair: 1 if score(good) > score(bad), 0.5 for an exact tie, 0 otherwise."""
    return np.where(good_scores > bad_scores, 1.0, np.where(good_scores == bad_scores, 0.5, 0.0))


def wilson_interval(p: float, n: int, z: float = Z95):
    """95% score interval for a proportion (Wilson 1927):
    (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n). Unlike p +- z sqrt(p(1-p)/n) it
    stays inside [0, 1] and does not collapse to a point at 0% or 100%. A tie counts as half a
    success in p, so the interval is approximate where there are many ties."""
    if n == 0:
        return [float("nan"), float("nan")]
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(max(p * (1 - p), 0.0) / n + z * z / (4 * n * n)) / d
    return [max(0.0, centre - half), min(1.0, centre + half)]


def summarize(c: np.ndarray, paradigms: np.ndarray) -> dict:
    """One line of the table for the pairs given (credits c, paradigm names alongside).

    micro = mean credit over pairs, with a Wilson interval.
    macro = (1/P) sum_p acc_p over the P paradigms, with the normal interval
            macro +- z sqrt(sum_p acc_p (1 - acc_p) / n_p) / P   (pairs sampled within paradigms).
    """
    names, inverse, counts = np.unique(paradigms, return_inverse=True, return_counts=True)
    acc = np.bincount(inverse, weights=c) / counts
    macro = float(acc.mean())
    half = Z95 * math.sqrt(float(np.sum(acc * (1 - acc) / counts))) / len(names)
    micro = float(c.mean())
    return {"n": int(len(c)), "paradigms": int(len(names)), "wins": int((c == 1).sum()),
            "ties": int((c == 0.5).sum()), "micro": micro, "micro_ci95": wilson_interval(micro, len(c)),
            "macro": macro, "macro_ci95": [max(0.0, macro - half), min(1.0, macro + half)]}


def aggregate(pairs, c: np.ndarray) -> dict:
    """Per paradigm, per value of each group key present (field, linguistics_term, phenomenon) and
    in total. Pairs without a key's value are grouped under "(none)"."""
    paradigms = np.array([p["paradigm"] for p in pairs])
    result = {"total": summarize(c, paradigms), "paradigms": {}}
    for name in dict.fromkeys(paradigms):      # file order
        mask = paradigms == name
        cp = c[mask]
        acc = float(cp.mean())
        line = {"n": int(mask.sum()), "wins": int((cp == 1).sum()), "ties": int((cp == 0.5).sum()),
                "accuracy": acc, "ci95": wilson_interval(acc, int(mask.sum()))}
        first = pairs[int(np.argmax(mask))]
        line.update({k: first[k] for k in GROUP_KEYS if k in first})
        result["paradigms"][str(name)] = line
    for key in GROUP_KEYS:
        if not any(key in p for p in pairs):
            continue
        values = np.array([p.get(key, "(none)") for p in pairs])
        result[f"by_{key}"] = {str(v): summarize(c[values == v], paradigms[values == v])
                               for v in sorted(set(values))}
    return result


# ------------------------------------------------------------------------------------------- driver

def evaluate(model, tokenizer, suites="blimp", *, data_root: str = DEFAULT_DATA_ROOT, fast: bool = False,
             leading_space: bool = False, bos: bool = True, batch_tokens: int = None, dtype=None,
             progress: bool = True) -> dict:
    """Score model on each suite (a comma-separated string or a list of suite names, pair files
    and folders). Returns the JSON-able result that --out writes; the model's train/eval mode is
    left as it was found. Pass the plain model, not a torch.compile'd one (every batch has
    another shape)."""
    if isinstance(suites, str):
        suites = [s for s in suites.split(",") if s]
    device = next(model.parameters()).device
    dtype = resolve_dtype(dtype, device)
    batch_tokens = batch_tokens or default_batch_tokens(device)
    if bos and tokenizer.bos_id is None:
        raise SystemExit("tokenizer has no BOS token: score with --no-bos")
    settings = {"bos": bos, "leading_space": leading_space, "fast": fast, "dtype": str(dtype).replace("torch.", ""),
                "batch_tokens": batch_tokens, "device": str(device), "data_root": os.path.abspath(data_root)}
    result = {"settings": settings, "suites": {}}
    named = [suite_files(s, data_root) for s in suites]   # every file is checked before any scoring
    was_training = model.training
    model.eval()
    try:
        for k, (name, files) in enumerate(named):
            name = name if name not in result["suites"] else suites[k]   # two files with one stem
            t0 = time.time()
            pairs = read_pairs(files, fast)
            seqs, gi, bi = encode_pairs(pairs, tokenizer, model.cfg.max_seq_len, bos, leading_space)
            scores = score_sequences(model, seqs, batch_tokens, dtype, tokenizer.pad_id or 0, progress, name)
            seconds = time.time() - t0
            r = {"files": [os.path.relpath(f, data_root) if name in SUITES else f for f in files],
                 "seconds": round(seconds, 2), "pairs_per_second": round(len(pairs) / seconds, 1)}
            r.update(aggregate(pairs, credit(scores[gi], scores[bi])))
            result["suites"][name] = r
    finally:
        model.train(was_training)
    return result


def format_table(name: str, r: dict, settings: dict = None) -> str:
    """The result of one suite as a fixed-width table (accuracies in %)."""
    def row(label, n, ties, acc, ci):
        return f"{label[:52]:<52} {n:>7} {ties:>5} {100 * acc:>6.1f}  [{100 * ci[0]:5.1f}, {100 * ci[1]:5.1f}]"

    t = r["total"]
    head = f"{name}: {t['paradigms']} paradigms, {t['n']} pairs, {r['seconds']:.1f} s ({r['pairs_per_second']:.0f} pairs/s)"
    if settings:
        head += (f"; {'BOS' if settings['bos'] else 'no BOS'}, {'leading space' if settings['leading_space'] else 'no leading space'}"
                 f", {settings['dtype']}{', fast (200 per paradigm)' if settings['fast'] else ''}")
    rule = "-" * 89
    lines = [head, rule, f"{'paradigm':<52} {'pairs':>7} {'ties':>5} {'acc %':>6}  95% interval", rule]
    lines += [row(k, v["n"], v["ties"], v["accuracy"], v["ci95"]) for k, v in r["paradigms"].items()]
    for key in GROUP_KEYS:
        if f"by_{key}" in r:
            lines += [rule, f"by {key} (macro over its paradigms)", rule]
            lines += [row(k, v["n"], v["ties"], v["macro"], v["macro_ci95"]) for k, v in r[f"by_{key}"].items()]
    lines += [rule, row("macro: mean over paradigms (headline)", t["n"], t["ties"], t["macro"], t["macro_ci95"]),
              row("micro: mean over pairs", t["n"], t["ties"], t["micro"], t["micro_ci95"]), rule]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Minimal-pair evaluation (BLiMP and peers) of a causal LM.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a train.py checkpoint (.safetensors) or an export_hf.py folder")
    ap.add_argument("--suite", default="blimp",
                    help=f"comma-separated suites ({', '.join(SUITES)}), pair files or folders (default blimp)")
    ap.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="where the suites live (default ../shared/data)")
    ap.add_argument("--fast", action="store_true", help=f"first {FAST_PAIRS} pairs of each paradigm")
    ap.add_argument("--out", help="write the full result as JSON here")
    ap.add_argument("--leading-space", action="store_true", help='score " " + sentence (lm-eval\'s convention)')
    ap.add_argument("--no-bos", action="store_true", help="do not condition on BOS; the first token is not scored")
    ap.add_argument("--batch-tokens", type=int, help="input positions per forward pass (default 2048 CPU, 32768 GPU)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                    help="forward-pass precision; auto = bfloat16 on a GPU, float32 on CPU")
    ap.add_argument("--tokenizer", help="a tokenizer file or data folder, for checkpoints without one")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.batch_tokens is not None and args.batch_tokens < 1:
        raise SystemExit(f"--batch-tokens {args.batch_tokens}: must be at least 1")

    from checkpoint import load_model
    model, tokenizer = load_model(args.model, args.device, args.tokenizer)
    result = evaluate(model, tokenizer, args.suite, data_root=args.data_root, fast=args.fast,
                      leading_space=args.leading_space, bos=not args.no_bos, batch_tokens=args.batch_tokens,
                      dtype=args.dtype, progress=not args.no_progress)
    result["model"] = os.path.abspath(args.model)
    result["command"] = " ".join(["python", "eval_blimp.py"] + (argv if argv is not None else sys.argv[1:]))
    for name, r in result["suites"].items():
        print(format_table(name, r, result["settings"]) + "\n")
    if len(result["suites"]) > 1:
        for name, r in result["suites"].items():
            t = r["total"]
            print(f"{name:<20} macro {100 * t['macro']:5.1f}   micro {100 * t['micro']:5.1f}   ({t['n']} pairs)")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(result, f, indent=1, ensure_ascii=False)
        os.replace(tmp, args.out)
        print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
