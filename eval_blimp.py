"""
Score a causal language model on minimal pairs: BLiMP and its Dutch and Chinese peers.

    python eval_blimp.py out/model_a/ckpt.safetensors                       # full English BLiMP
    python eval_blimp.py out/model_a/ckpt.safetensors --suite blimp_filtered,blimp_supplement --fast
    python eval_blimp.py exports/model_a --suite blimp,blimp_nl,zhoblimp --out results/blimp.json
    python eval_blimp.py out/model_a/ckpt.safetensors --suite my_pairs.csv     # JSONL, CSV, TSV, or a folder
    python eval_blimp.py out/model_a/ckpt.safetensors --protocol card --fast   # Model A card's protocol
    python eval_blimp.py out/model_a/ckpt.safetensors --predictions pairs.jsonl  # every pair's two scores
    python eval_blimp.py out/model_a/ckpt.safetensors --suite blimp_filtered,blimp_supplement \\
        --babylm-predictions babylm_preds.json                              # for a BabyLM submission
    python eval_blimp.py out/model_a/ckpt.safetensors --suite blimp_filtered,blimp_supplement \\
        --babylm-results results                                            # the pipeline's own tree
    python eval_blimp.py out/model_a --all-checkpoints --suite blimp_filtered,blimp_supplement --fast \\
        --out curve.json --png curve.png --babylm-results results           # every milestone

From code (train.py and the results scripts do this):

    from eval_blimp import evaluate
    result = evaluate(model, tokenizer, "blimp,blimp_nl", fast=True)   # the dict --out writes
    result["suites"]["blimp"]["headline"]                              # the protocol's headline number

The model argument is a train.py checkpoint or a folder written by export_hf.py; --suite takes
the named suites (blimp, blimp_filtered, blimp_supplement, blimp_nl, zhoblimp, sling), pair files
(JSONL, CSV, TSV) or folders of them: pairs.py says what each holds and how the files are read.

The scoring rule (Warstadt et al. 2020, BLiMP; the rule lm-eval, minicons and the BabyLM
pipelines share) is score_sentence below: a sentence's score is the sum of the log-probabilities
of its tokens, each given the tokens before it. Two protocols apply it (--protocol):

    ours  (default)  score(s) = sum_{t=1..n} log p(w_t | <s>, w_1 .. w_{t-1})
                     BOS, the token training puts before every document, is conditioned on and not
                     scored, so every token of the sentence is. An exact tie earns half a point and is
                     counted. Headline: the macro average, the mean of the paradigms' accuracies.
    card             score(s) = sum_{t=2..n} log p(w_t | w_1 .. w_{t-1})
                     No special token, so the first token is context only, as Model A's card scored
                     (../shared/MODEL_A_CARD.md, "How 57.2 was scored"). A tie counts as wrong.
                     Headline: the micro average, the fraction of all pairs right.

No EOS, no length normalisation in either. A pair is right when score(good) > score(bad).
(Several pipelines give ties to the good sentence, which lets a degenerate model that scores
everything alike look better than chance; the ties column shows how many there were.) log p is
computed in fp32 (and summed in fp64) even when the forward pass runs in bf16. --leading-space
scores " " + sentence as lm-eval's BLiMP task does (its target delimiter); --no-bos drops BOS
from the "ours" protocol; a model whose tokenizer was trained without BOS (bos_input False, the
card's) is scored without it under either protocol.

Speed: score_sequences gives score_sentence's numbers, faster. All 2N sentences (N pairs;
duplicates once) are laid out as prefix trees, so that a prefix several sentences share
("<s> The cats" in "<s> The cats are/is ...") is computed once: sorted lexicographically, each
sentence adds only the positions after its common prefix with the one before. Rows of up to 128
positions hold a tree each, with a tree attention mask (a position sees its ancestors) and each
position's depth as its RoPE position, which gives every position exactly the hidden state it has
in each of its sentences. Rows are batched to at most --batch-tokens positions, one forward pass
per batch; every position is projected to the vocabulary once, 512 at a time.
bench/README.md has the measurements.

Outputs: the tables (stdout), --out (the totals as JSON), --predictions (one JSON line per pair:
suite, paradigm, id, file, line, both sentences, both scores, the credit) and --babylm-predictions
(the minimal-pair part of a BabyLM submission, in the format of babylm/evaluation-pipeline-2025:
{"blimp": {UID: {"predictions": [{"id": "UID_k", "pred": the sentence the model prefers}]}},
 "blimp_supplement": {...}}, pairs in file order; a tie is given to the good sentence, as that
pipeline's argmax does, so the file holds what the pipeline would write for the same scores), and
--babylm-results (the same, one file per task, in the folders that pipeline writes and reads:
BABYLM_FOLDERS). --fast keeps the first pairs.fast_size(suite) pairs of each paradigm, the
pipeline's fast sizes (200 per BLiMP paradigm, 50 per supplement task). --all-checkpoints scores
every milestone of a run and writes the learning curve. How each of these files is laid out, and
the learning curve, are in eval_outputs.py.
"""

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from atomic import write_json
from eval_outputs import (BABYLM_FOLDERS, BABYLM_TASKS, babylm_results_file, babylm_task, check_outputs_are_not_inputs,
                          check_writable, checkpoints_of, learning_curve, prediction_lines, revision_dir, write_jsonl,
                          write_out)
from load import load_model
from machine import choose_dtype, record as machine_record
from model import DTYPES
from pairs import (DEFAULT_DATA_ROOT, FAST_SIZES, GROUP_KEYS, SUITES, fast_size, parse_columns, read_pairs,
                   suite_files)
from report import pyplot



# ------------------------------------------------------------------------------- the scoring rule

@torch.no_grad()
def score_sentence(model, ids) -> float:
    """sum_{t=1..n-1} log p(ids[t] | ids[:t]): the score of one token sequence, the definition.

    ids is [BOS] + the sentence's tokens (protocol "ours": every token of the sentence is scored)
    or the tokens alone (protocol "card": the first is context only). The model is in eval mode.
    """
    x = torch.tensor([ids], device=next(model.parameters()).device)
    logp = model.output(model.hidden(x)[0, :-1]).float().log_softmax(-1)  # (n-1, V): row t predicts ids[t+1]
    return float(logp[torch.arange(len(ids) - 1), x[0, 1:]].double().sum())


@dataclass(frozen=True)
class Protocol:
    bos: bool           # condition on BOS, so that the sentence's first token is scored too
    tie_credit: float   # what an exact tie earns
    headline: str       # "macro" (mean over paradigms) or "micro" (mean over pairs)


PROTOCOLS = {
    "ours": Protocol(bos=True, tie_credit=0.5, headline="macro"),
    "card": Protocol(bos=False, tie_credit=0.0, headline="micro"),  # MODEL_A_CARD.md, "How 57.2 was scored"
}


def credit(good_scores, bad_scores, tie_credit: float = 0.5) -> np.ndarray:
    """Per pair: 1 if score(good) > score(bad), tie_credit for an exact tie, 0 otherwise."""
    return np.where(good_scores > bad_scores, 1.0, np.where(good_scores == bad_scores, tie_credit, 0.0))


# ------------------------------------------------------------------ the same numbers, faster

def encode_pairs(pairs, tokenizer, max_seq_len: int, bos: bool = True, leading_space: bool = False):
    """Token ids of every distinct sentence, and for each pair the index of its good and bad one.

    Returns (seqs, good_index, bad_index): seqs[i] = [BOS] + ids (or ids without bos). A sentence
    that needs more than max_seq_len input positions stops with a message naming file and line.
    """
    seq_of_text, texts = {}, []
    good_index, bad_index = np.empty(len(pairs), np.int64), np.empty(len(pairs), np.int64)
    prefix = " " if leading_space else ""
    for k, p in enumerate(pairs):
        for key, index in (("good", good_index), ("bad", bad_index)):
            text = prefix + p[key]
            if text not in seq_of_text:
                seq_of_text[text] = len(texts)
                texts.append(text)
            index[k] = seq_of_text[text]
    seqs = tokenizer.encode_documents(texts, bos)
    for k, p in enumerate(pairs):  # a sentence is scored from n - 1 inputs predicting n - 1 targets
        for key, i in (("good", good_index[k]), ("bad", bad_index[k])):
            if len(seqs[i]) - 1 > max_seq_len:
                raise SystemExit(f"{p['file']}:{p['line']}: sentence_{key} is {len(seqs[i]) - 1} tokens "
                                 f"after {'BOS' if bos else 'its first token'}, more than the model's "
                                 f"context of {max_seq_len}")
            if len(seqs[i]) == int(bos):
                raise SystemExit(f"{p['file']}:{p['line']}: sentence_{key} encodes to no tokens")
    return seqs, good_index, bad_index


MAX_ROW_POSITIONS = 128  # positions per prefix-tree row (unless one sentence is longer); see pack_prefix_trees


def pack_prefix_trees(seqs, max_positions: int = MAX_ROW_POSITIONS):
    """Lay out the input positions of all sequences so that a prefix they share is computed once.

    A sequence s is scored from its inputs s[:-1], which predict s[1:]. In a causal model the
    hidden state at a position depends only on the tokens up to it, so "<s> The cats are" and
    "<s> The cats is" share the states of "<s> The cats". Sorted lexicographically, each sequence
    shares its longest common prefix with the one before it; appending only the rest gives a
    prefix tree (trie) in depth-first order. A row holds such a tree (a forest without BOS) of
    at most max_positions nodes, or one longer sequence. Larger rows share a little more, but
    attention over a row costs its length squared (bench/README.md).

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
    """score_sentence of every sequence, as float64 (N,), computed in prefix-tree batches.

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
    bar = Progress(len(seqs), desc, progress)
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
            h = model.hidden(x, positions=depth, mask=mask)   # (B, N, dim)
            add_logprobs(scores, model.output, h.flatten(0, 1), node, target, owner)
        bar.update(sum(len(in_row[r]) for r in batch))
        start += len(batch)
    bar.close()
    return scores.cpu().numpy()


LOGIT_ROWS = 512  # positions projected to the vocabulary at a time: 512 x 16k fp32 logits = 33 MB


def add_logprobs(sums, output, h, node, target, owner):
    """sums[owner[e]] += log_softmax(output(h[node[e]]))[target[e]] for every entry e, in fp64.
    Only the positions some entry names are projected, a slice at a time, so the full fp32 logits
    of a batch never exist at once; they go to fp32 before the log-softmax, whatever dtype the
    projection ran in."""
    used, node = torch.unique(node, return_inverse=True)         # sorted positions, entry -> index
    h = h[used]
    for i in range(0, len(used), LOGIT_ROWS):
        here = (node >= i) & (node < i + LOGIT_ROWS)
        logp = output(h[i:i + LOGIT_ROWS]).float().log_softmax(-1)                 # (<=512, V)
        sums.index_add_(0, owner[here], logp[node[here] - i, target[here]].double())


class Progress:
    """Sentences scored so far, on stderr: one line redrawn in place on a terminal; in a log file
    (stderr redirected) a plain line at each tenth of the work, not a stream of carriage returns."""

    def __init__(self, total: int, desc: str, enabled: bool):
        self.total, self.desc, self.enabled = total, desc, enabled and total > 0
        self.terminal = sys.stderr.isatty()
        self.done, self.tenths_shown, self.drawn_at, self.start = 0, 0, 0.0, time.time()

    def update(self, n: int):
        self.done += n
        if not self.enabled:
            return
        line = (f"{self.desc}: {self.done}/{self.total} sentences ({100 * self.done / self.total:.0f}%), "
                f"{time.time() - self.start:.0f} s")
        if self.terminal and (time.time() - self.drawn_at > 0.2 or self.done == self.total):
            sys.stderr.write(f"\r{line}\033[K")
            sys.stderr.flush()
            self.drawn_at = time.time()
        elif not self.terminal and self.done * 10 // self.total > self.tenths_shown:
            self.tenths_shown = self.done * 10 // self.total
            print(line, file=sys.stderr, flush=True)

    def close(self):
        if self.enabled and self.terminal:
            sys.stderr.write("\r\033[K")   # the table follows on a clean line
            sys.stderr.flush()


def resolve_dtype(dtype, device: torch.device):
    """None or "auto" -> the precision native on the device (machine.choose_dtype: bf16 on a GPU that
    has it or a CPU that computes it natively, else float32); strings -> torch dtypes. float16 on a
    GPU without bf16 is not chosen by auto: scores summed over a sentence need the range."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in (None, "auto", *DTYPES):
        raise SystemExit(f"--dtype {dtype}: use one of auto, {', '.join(DTYPES)}")
    name, why = choose_dtype(dtype or "auto", device.type)
    if name == "float16" and dtype in (None, "auto"):
        name = "float32"
    if "notice" in why:
        print(f"{device.type}: {name} ({why})", file=sys.stderr)
    return DTYPES[name]


def default_batch_tokens(device: torch.device) -> int:
    # on a CPU larger batches stop paying off early (bench/README.md); a GPU needs far larger
    # batches to be kept busy
    return 32768 if device.type == "cuda" else 2048


# -------------------------------------------------------------------------------------- aggregation

Z95 = 1.959964         # two-sided 95% quantile of the standard normal


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


def accuracy_summary(credits: np.ndarray, ties: np.ndarray, paradigms: np.ndarray) -> dict:
    """One line of the table for the pairs given (credits, tie flags and paradigm names alongside).

    micro = mean credit over pairs, with a Wilson interval.
    macro = (1/P) sum_p acc_p over the P paradigms, with the normal interval
            macro +- z sqrt(sum_p q_p (1 - q_p) / m_p) / P   (pairs sampled within paradigms),
    where q_p = (acc_p n_p + z^2/2) / m_p and m_p = n_p + z^2 (Agresti & Coull 1998): with acc_p
    itself a paradigm at 0% or 100% would add no uncertainty, and a group of such paradigms would
    get the interval [100, 100] while each of its paradigms' Wilson intervals is wider.
    """
    names, inverse, counts = np.unique(paradigms, return_inverse=True, return_counts=True)
    acc = np.bincount(inverse, weights=credits) / counts
    macro = float(acc.mean())
    m = counts + Z95 ** 2
    q = (acc * counts + Z95 ** 2 / 2) / m
    half = Z95 * math.sqrt(float(np.sum(q * (1 - q) / m))) / len(names)
    micro = float(credits.mean())
    return {"n": int(len(credits)), "paradigms": int(len(names)), "wins": int((credits == 1).sum()),
            "ties": int(ties.sum()), "micro": micro, "micro_ci95": wilson_interval(micro, len(credits)),
            "macro": macro, "macro_ci95": [max(0.0, macro - half), min(1.0, macro + half)]}


def aggregate(pairs, credits: np.ndarray, ties: np.ndarray) -> dict:
    """Per paradigm, per value of each group key present (field, linguistics_term, phenomenon) and
    in total. Pairs without a key's value are grouped under "(none)"."""
    paradigms = np.array([p["paradigm"] for p in pairs])
    result = {"total": accuracy_summary(credits, ties, paradigms), "paradigms": {}}
    for name in dict.fromkeys(paradigms):      # file order
        mask = paradigms == name
        acc = float(credits[mask].mean())
        line = {"n": int(mask.sum()), "wins": int((credits[mask] == 1).sum()), "ties": int(ties[mask].sum()),
                "accuracy": acc, "ci95": wilson_interval(acc, int(mask.sum()))}
        first = pairs[int(np.argmax(mask))]
        line.update({k: first[k] for k in GROUP_KEYS if k in first})
        result["paradigms"][str(name)] = line
    for key in GROUP_KEYS:
        if not any(key in p for p in pairs):
            continue
        values = np.array([p.get(key, "(none)") for p in pairs])
        result[f"by_{key}"] = {str(v): accuracy_summary(credits[values == v], ties[values == v], paradigms[values == v])
                               for v in sorted(set(values))}
    return result


# ------------------------------------------------------------------------------------------- driver

def evaluate(model, tokenizer, suites="blimp", *, data_root: str = DEFAULT_DATA_ROOT, fast: bool = False,
             protocol: str = "ours", leading_space: bool = False, bos: bool = None, batch_tokens: int = None,
             dtype=None, columns: dict = None, predictions: str = None, babylm_predictions: str = None,
             babylm_results: str = None, progress: bool = True) -> dict:
    """Score model on each suite (a comma-separated string or a list of suite names, pair files
    and folders) under a protocol (PROTOCOLS; bos overrides its BOS choice). Returns the JSON-able
    result that --out writes; writes the per-pair files if given: babylm_results is a revision's
    folder of the pipeline's results tree (RESULTS/<model>/<revision>), where blimp_filtered and
    blimp_supplement go (babylm_results_file). fast keeps the first fast_size(suite) pairs of each
    paradigm. columns maps roles to column names in the user's own pair files. The model's train/eval mode is left as it was found. Pass
    the plain model, not a torch.compile'd one (every batch has another shape)."""
    if isinstance(suites, str):
        suites = [s for s in suites.split(",") if s]
    if protocol not in PROTOCOLS:
        raise SystemExit(f"--protocol {protocol}: use one of {', '.join(PROTOCOLS)}")
    rules = PROTOCOLS[protocol]
    if bos is None:  # the protocol's choice, but never a BOS the model was trained without
        bos = rules.bos and tokenizer.bos_input
    device = next(model.parameters()).device
    dtype = resolve_dtype(dtype, device)
    batch_tokens = batch_tokens or default_batch_tokens(device)
    if bos and tokenizer.bos_id is None:
        raise SystemExit("tokenizer has no BOS token: score with --no-bos or --protocol card")
    settings = {"protocol": protocol, "headline": rules.headline, "tie_credit": rules.tie_credit, "bos": bos,
                "leading_space": leading_space, "fast": fast, "dtype": str(dtype).replace("torch.", ""),
                "batch_tokens": batch_tokens, "device": str(device), "data_root": os.path.abspath(data_root)}
    result = {"settings": settings, "machine": machine_record(device.type, settings["dtype"]), "suites": {}}
    named = [suite_files(s, data_root) for s in suites]   # every file is checked before any scoring
    per_pair, babylm = [], {}
    was_training = model.training
    model.eval()
    try:
        for k, (name, files) in enumerate(named):
            name = name if name not in result["suites"] else suites[k]   # two files with one stem
            t0 = time.time()
            per_paradigm = fast_size(suites[k]) if fast else None
            pairs = read_pairs(files, per_paradigm, None if name in SUITES else columns)
            seqs, good_index, bad_index = encode_pairs(pairs, tokenizer, model.cfg.max_seq_len, bos, leading_space)
            scores = score_sequences(model, seqs, batch_tokens, dtype, tokenizer.pad_id or 0, progress, name)
            good_scores, bad_scores = scores[good_index], scores[bad_index]
            credits = credit(good_scores, bad_scores, rules.tie_credit)
            seconds = time.time() - t0
            r = {"files": [os.path.relpath(f, data_root) if name in SUITES else f for f in files],
                 "fast_pairs": per_paradigm, "seconds": round(seconds, 2),
                 "pairs_per_second": round(len(pairs) / seconds, 1)}
            r.update(aggregate(pairs, credits, good_scores == bad_scores))
            r["headline"] = r["total"][rules.headline]
            result["suites"][name] = r
            if predictions:
                per_pair += prediction_lines(name, pairs, good_scores, bad_scores, credits)
            if babylm_predictions:
                babylm[BABYLM_TASKS.get(name, name)] = babylm_task(pairs, good_scores, bad_scores)
            if babylm_results and suites[k] in BABYLM_FOLDERS:
                path = babylm_results_file(babylm_results, suites[k], fast)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                write_json(path, babylm_task(pairs, good_scores, bad_scores), ensure_ascii=False)
    finally:
        model.train(was_training)
    if predictions:
        write_jsonl(predictions, per_pair)
    if babylm_predictions:
        os.makedirs(os.path.dirname(os.path.abspath(babylm_predictions)), exist_ok=True)
        write_json(babylm_predictions, babylm, ensure_ascii=False)
    return result


def format_table(name: str, r: dict, settings: dict = None) -> str:
    """The result of one suite as a fixed-width table (accuracies in %). Group rows and the
    headline row use the protocol's headline average (macro unless settings say otherwise)."""
    def row(label, n, ties, acc, ci):
        return f"{label[:52]:<52} {n:>7} {ties:>5} {100 * acc:>6.1f}  [{100 * ci[0]:5.1f}, {100 * ci[1]:5.1f}]"

    headline = (settings or {}).get("headline", "macro")
    t = r["total"]
    head = (f"{name}: {t['paradigms']} paradigms, {t['n']} pairs, {r['seconds']:.1f} s "
            f"({r['pairs_per_second']:.0f} pairs/s)")
    if settings:
        head += (f"; protocol {settings['protocol']}: {'BOS' if settings['bos'] else 'no BOS'}, "
                 f"{'leading space' if settings['leading_space'] else 'no leading space'}, "
                 f"a tie earns {settings['tie_credit']:g}, {settings['dtype']}"
                 + (f", fast ({r['fast_pairs']} per paradigm)" if r.get("fast_pairs") else ""))
    rule = "-" * 89
    lines = [head, rule, f"{'paradigm':<52} {'pairs':>7} {'ties':>5} {'acc %':>6}  95% interval", rule]
    lines += [row(k, v["n"], v["ties"], v["accuracy"], v["ci95"]) for k, v in r["paradigms"].items()]
    over = "its paradigms" if headline == "macro" else "its pairs"
    for key in GROUP_KEYS:
        if f"by_{key}" in r:
            lines += [rule, f"by {key} ({headline} over {over})", rule]
            lines += [row(k, v["n"], v["ties"], v[headline], v[f"{headline}_ci95"]) for k, v in r[f"by_{key}"].items()]
    labels = {"macro": "macro: mean over paradigms", "micro": "micro: mean over pairs"}
    other = "micro" if headline == "macro" else "macro"
    lines += [rule, row(labels[headline] + " (headline)", t["n"], t["ties"], t[headline], t[f"{headline}_ci95"]),
              row(labels[other], t["n"], t["ties"], t[other], t[f"{other}_ci95"]), rule]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Minimal-pair evaluation (BLiMP and peers) of a causal LM.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a train.py checkpoint (.safetensors) or an export_hf.py folder; with "
                                  "--all-checkpoints a run folder or a folder of chck_* checkpoints")
    ap.add_argument("--suite", default="blimp",
                    help=f"comma-separated suites ({', '.join(SUITES)}), pair files or folders (default blimp)")
    ap.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="where the suites live (default ../shared/data)")
    ap.add_argument("--fast", action="store_true",
                    help="the first N pairs of each paradigm: the BabyLM pipeline's fast sizes (" +
                         ", ".join(f"{k} {v}" for k, v in FAST_SIZES.items()) + "), 200 for other files")
    ap.add_argument("--protocol", default="ours", choices=list(PROTOCOLS),
                    help="ours: BOS, every token scored, a tie earns half, macro headline; "
                         "card: no BOS, first token not scored, a tie is wrong, micro headline")
    ap.add_argument("--out", help="write the totals (with --all-checkpoints: the learning curve) as JSON here")
    ap.add_argument("--predictions", help="write one JSON line per pair here (both scores, the credit)")
    ap.add_argument("--babylm-predictions", help="write the BabyLM pipeline's predictions file here")
    ap.add_argument("--babylm-results", metavar="DIR",
                    help="write the BabyLM pipeline's results tree: DIR/MODEL/REVISION/zero_shot/causal/blimp/"
                         "{blimp_filtered,supplement_filtered,blimp_fast,supplement_fast}/predictions.json")
    ap.add_argument("--model-name", help="MODEL in the results tree (default: the run folder's name)")
    ap.add_argument("--revision", help="REVISION in the results tree (default main)")
    ap.add_argument("--all-checkpoints", action="store_true",
                    help="score every milestone (checkpoints/chck_*.safetensors) and ckpt.safetensors as main")
    ap.add_argument("--png", help="with --all-checkpoints: plot the learning curve here (needs matplotlib)")
    ap.add_argument("--columns", help="good=NAME,bad=NAME,paradigm=NAME (a pair a row) or sentence=NAME,"
                                      "label=NAME,paradigm=NAME (a sentence a row): your own files' columns")
    ap.add_argument("--leading-space", action="store_true", help='score " " + sentence (lm-eval\'s convention)')
    ap.add_argument("--no-bos", action="store_true", help="do not condition on BOS; the first token is not scored")
    ap.add_argument("--batch-tokens", type=int, help="input positions per forward pass (default 2048 CPU, 32768 GPU)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                    help="forward-pass precision; auto = what the device computes natively (bf16 on a GPU or a "
                         "CPU with native bf16, else float32)")
    ap.add_argument("--tokenizer", help="a tokenizer file or data folder, for checkpoints without one")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.batch_tokens is not None and args.batch_tokens < 1:
        raise SystemExit(f"--batch-tokens {args.batch_tokens}: must be at least 1")
    columns = parse_columns(args.columns) if args.columns else None
    steps = checkpoints_of(args) if args.all_checkpoints else [(args.revision or "main", args.model)]
    if args.png:  # before minutes of scoring, not after
        if not args.all_checkpoints:
            raise SystemExit("--png: plots the learning curve of --all-checkpoints")
        pyplot("eval_blimp.py")
    for flag, path in (("--out", args.out), ("--predictions", args.predictions),
                       ("--babylm-predictions", args.babylm_predictions), ("--png", args.png)):
        check_writable(flag, path)  # before minutes of scoring, not after
    check_outputs_are_not_inputs(args, steps)
    command = " ".join(["python", "eval_blimp.py"] + (argv if argv is not None else sys.argv[1:]))

    def score(path, revision, progress):
        model, tokenizer = load_model(path, args.device, args.tokenizer)
        try:
            return evaluate(model, tokenizer, args.suite, data_root=args.data_root, fast=args.fast,
                            protocol=args.protocol, leading_space=args.leading_space,
                            bos=False if args.no_bos else None, batch_tokens=args.batch_tokens, dtype=args.dtype,
                            columns=columns, predictions=args.predictions,
                            babylm_predictions=args.babylm_predictions,
                            babylm_results=revision_dir(args, revision), progress=progress)
        except OSError as e:  # writing --predictions on a full disk or a read-only file system
            raise SystemExit(f"{e.filename or 'predictions'}: cannot write ({e.strerror or e})")

    if args.all_checkpoints:
        return learning_curve(args, steps, score, command)
    result = score(args.model, steps[0][0], not args.no_progress)
    result["model"] = os.path.abspath(args.model)
    result["command"] = command
    for name, r in result["suites"].items():
        print(format_table(name, r, result["settings"]) + "\n")
    headline = result["settings"]["headline"]
    other = "micro" if headline == "macro" else "macro"
    if len(result["suites"]) > 1:
        for name, r in result["suites"].items():
            t = r["total"]
            print(f"{name:<20} {headline} {100 * t[headline]:5.1f} (headline)   {other} {100 * t[other]:5.1f}"
                  f"   ({t['n']} pairs)")
    for path in (args.predictions, args.babylm_predictions, revision_dir(args, steps[0][0])):
        if path:
            print(f"wrote {path}")
    write_out(args.out, result)
    return result


if __name__ == "__main__":
    main()
