"""
Minimal-pair scoring speed: eval_blimp.py against the one-pair-at-a-time Transformers loop that
lm-eval and minicons run, on the same BLiMP pairs and the same weights.

    python bench/eval_throughput.py                              # random Model A, 1000 BLiMP pairs
    python bench/eval_throughput.py --dtype bfloat16             # ours in bf16 autocast (fp32 log-softmax)
    python bench/eval_throughput.py --ckpt out/model_a/ckpt.safetensors --pairs 2000
    python bench/eval_throughput.py --full blimp                 # also time ours on a whole suite
                                                                 # (more sentences share more prefixes)
    python bench/eval_throughput.py --threads 1                  # both on one core (a busy machine)

The model (random Model A with a 16k ByteLevel BPE trained here on ../shared/data/corpora/en, or
--ckpt) is exported with export_hf.py. Ours: load_hf(folder) -> eval_blimp.evaluate's path
(tokenize all, shared prefixes once in prefix-tree rows, token-budget batches, one forward per
batch). Baseline: the folder loaded with AutoModelForCausalLM + AutoTokenizer (which adds BOS),
and for each pair one forward of the batch [good, bad], right-padded with an attention mask,
log_softmax, gather, masked sum: what minicons' scorer does, and what lm-eval does with batches
of one request pair.
The two run in alternating rounds in one process (fairer on a shared machine); the best round of
each is reported. Every pair must get the same decision from both. Ours computes in --dtype auto by
default, as eval_blimp.py: bf16 where this CPU computes it natively, else fp32 (machine.choose_dtype);
the header names the machine and the precision chosen.
"""

import argparse
import glob
import gzip
import os
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import eval_blimp as ev  # noqa: E402
import machine  # noqa: E402
import pairs as pair_files  # noqa: E402
from load import load_model  # noqa: E402
from model import ModelConfig, Transformer  # noqa: E402
from tokenizer import Tokenizer, load_tokenizer, train_tokenizer  # noqa: E402


def train_bpe(corpus_glob: str, vocab_size: int) -> Tokenizer:
    """A ByteLevel BPE trained as tokenize_data.py trains one."""
    lines = []
    for path in sorted(glob.glob(corpus_glob)):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            lines += f.read().splitlines()
    if not lines:
        raise SystemExit(f"{corpus_glob}: no corpus to train a tokenizer on (give --tokenizer)")
    return train_tokenizer(lines, "bpe", vocab_size)


@torch.no_grad()
def hf_score_pairs(hf, hf_tok, pairs, per: str = "pair"):
    """The reference loop, scores (N, 2) float64 of [good, bad]. per="pair": one forward of the
    batch [good, bad] per pair (minicons); per="sentence": one forward per sentence (lm-eval
    with batch size 1)."""
    out = np.empty((len(pairs), 2))
    for k, p in enumerate(pairs):
        texts = [[p["good"], p["bad"]]] if per == "pair" else [[p["good"]], [p["bad"]]]
        scores = []
        for batch in texts:
            enc = hf_tok(batch, return_tensors="pt", padding=True)                   # [<s> ids <pad>..]
            logits = hf(input_ids=enc.input_ids, attention_mask=enc.attention_mask).logits.float()  # (b, T, V)
            logp = logits[:, :-1].log_softmax(-1).gather(-1, enc.input_ids[:, 1:, None])[..., 0]  # (b, T-1)
            scores += (logp * enc.attention_mask[:, 1:]).sum(1).double().tolist()
        out[k] = scores
    return out


def ours_score_pairs(model, tokenizer, pairs, batch_tokens, dtype):
    seqs, good_index, bad_index = ev.encode_pairs(pairs, tokenizer, model.cfg.max_seq_len)
    scores = ev.score_sequences(model, seqs, batch_tokens, dtype, tokenizer.pad_id)
    return np.stack([scores[good_index], scores[bad_index]], axis=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt", help="a train.py checkpoint (default: a random Model A)")
    ap.add_argument("--tokenizer", help="tokenizer file for the random model (default: train a 16k BPE here)")
    ap.add_argument("--pairs", type=int, default=1000, help="BLiMP pairs, spread evenly over the 67 paradigms")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch-tokens", type=int, default=None)
    ap.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"],
                    help="ours (auto: the precision this machine computes natively); the baseline is fp32")
    ap.add_argument("--full", help="also time ours on this whole suite (e.g. blimp)")
    ap.add_argument("--data-root", default=ev.DEFAULT_DATA_ROOT)
    ap.add_argument("--baseline", default="pair", choices=["pair", "sentence"],
                    help="reference loop: one forward per pair (minicons) or per sentence (lm-eval, batch 1)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads for both (default: torch's)")
    args = ap.parse_args()
    import transformers
    from export_hf import export, load_hf
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.ckpt:
        model, tokenizer = load_model(args.ckpt)
        what = args.ckpt
    else:
        t0 = time.time()
        tokenizer = (load_tokenizer(args.tokenizer) if args.tokenizer else
                     train_bpe(os.path.join(args.data_root, "corpora", "en", "*.txt.gz"), 16000))
        torch.manual_seed(0)
        model = Transformer(ModelConfig(dim=384, n_layers=6, n_heads=6, hidden_dim=1536,
                                        vocab_size=tokenizer.vocab_size, max_seq_len=512))
        what = f"random Model A ({model.num_params() / 1e6:.1f}M parameters; tokenizer {time.time() - t0:.0f} s)"
    folder = tempfile.mkdtemp(prefix="eval_bench_")
    export(model, tokenizer, os.path.join(folder, "model"))
    ours, ours_tok = load_hf(os.path.join(folder, "model"))
    ours.eval()
    hf = transformers.AutoModelForCausalLM.from_pretrained(os.path.join(folder, "model"), dtype=torch.float32).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(os.path.join(folder, "model"))

    _, files = pair_files.suite_files("blimp", args.data_root)
    all_pairs = pair_files.read_pairs(files)
    stride = max(1, len(all_pairs) // args.pairs)
    pairs = all_pairs[::stride][:args.pairs]
    dtype = ev.resolve_dtype(args.dtype, torch.device("cpu"))
    _, why = machine.choose_dtype(args.dtype, "cpu")  # the same choice as resolve_dtype's, with its reason
    batch_tokens = args.batch_tokens or ev.default_batch_tokens(torch.device("cpu"))
    print(f"# ours: {machine.describe('cpu', str(dtype).removeprefix('torch.'), why)}; torch {torch.__version__}, "
          f"transformers {transformers.__version__}")
    warning = machine.thread_warning()
    if warning:
        print(f"# {warning}")
    print(f"model: {what}; {len(pairs)} BLiMP pairs; batch_tokens {batch_tokens}; baseline float32, "
          f"one {args.baseline} per forward")

    best = {"ours": float("inf"), "transformers loop": float("inf")}
    for r in range(args.rounds):
        t = time.time()
        s_ours = ours_score_pairs(ours, ours_tok, pairs, batch_tokens, dtype)
        best["ours"] = min(best["ours"], time.time() - t)
        t = time.time()
        s_hf = hf_score_pairs(hf, hf_tok, pairs, args.baseline)
        best["transformers loop"] = min(best["transformers loop"], time.time() - t)
        print(f"round {r + 1}: ours {len(pairs) / best['ours']:.1f} pairs/s, "
              f"transformers loop {len(pairs) / best['transformers loop']:.1f} pairs/s (best so far)")

    d_ours = ev.credit(s_ours[:, 0], s_ours[:, 1])
    d_hf = ev.credit(s_hf[:, 0], s_hf[:, 1])
    differ = np.flatnonzero(d_ours != d_hf)
    margin = np.abs(s_hf[:, 0] - s_hf[:, 1])
    print(f"max |score difference| ours vs transformers: {np.abs(s_ours - s_hf).max():.2e}; "
          f"smallest |good - bad| margin: {margin.min():.2e}")
    print(f"same decision on {len(pairs) - len(differ)} / {len(pairs)} pairs"
          + (f"; differing margins: {', '.join(f'{margin[i]:.1e}' for i in differ[:10])}" if len(differ) else ""))
    print(f"accuracy: ours {100 * d_ours.mean():.2f}%, transformers loop {100 * d_hf.mean():.2f}%")
    ratio = best["transformers loop"] / best["ours"]
    print(f"ours {len(pairs) / best['ours']:.1f} pairs/s, transformers loop "
          f"{len(pairs) / best['transformers loop']:.1f} pairs/s: ratio {ratio:.1f}x")

    if args.full:
        t = time.time()
        result = ev.evaluate(ours, ours_tok, args.full, data_root=args.data_root, dtype=dtype,
                             batch_tokens=batch_tokens, progress=False)
        r = result["suites"][args.full]
        # the loop's cost per pair does not depend on the other pairs, so its pairs/s on the sample
        # stands for the whole suite; ours shares more prefixes the more sentences it sees
        loop = len(pairs) / best["transformers loop"]
        print(f"full {args.full}: {r['total']['n']} pairs in {time.time() - t:.0f} s "
              f"({r['pairs_per_second']:.0f} pairs/s, {r['pairs_per_second'] / loop:.1f}x the loop's "
              f"{loop:.1f} pairs/s above), macro {100 * r['total']['macro']:.2f}%")


if __name__ == "__main__":
    main()
