"""
Load an export_hf.py folder with plain Transformers, as a BabyLM participant would, and check it
against the train.py checkpoint it came from. (results/model_a/run_model_a.sh runs this: results/README.md, Results I.)

    python results/model_a/check_export.py exports/model_a_fit out/model_a_fit/ckpt.safetensors --json results/model_a/model_a_export_check.json

Prints the greedy continuation of a few prompts under Transformers and under model.py (they must be
the same tokens), the largest logit difference on a held-out sentence, and the checkpoint branches of
the folder's git repository (export_hf.py --all).
"""

import argparse
import json
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from load import load_model  # noqa: E402

PROMPTS = ["The little girl", "Once upon a time, there was a", "I don't think"]
SENTENCE = "The children went to the park to play with their new ball."


def main():
    p = argparse.ArgumentParser()
    p.add_argument("folder")
    p.add_argument("ckpt")
    p.add_argument("--json")
    p.add_argument("--new-tokens", type=int, default=16)
    a = p.parse_args()
    from transformers import AutoModelForCausalLM, AutoTokenizer
    hf = AutoModelForCausalLM.from_pretrained(a.folder).eval()
    hf_tok = AutoTokenizer.from_pretrained(a.folder)
    ours, tok = load_model(a.ckpt)
    ours.eval()

    out = {"folder": a.folder, "checkpoint": a.ckpt, "transformers_class": type(hf).__name__,
           "tokenizer_class": type(hf_tok).__name__, "generations": []}
    for prompt in PROMPTS:
        enc = hf_tok(prompt, return_tensors="pt")          # [<s>] + ids, as in training
        assert enc["input_ids"][0].tolist() == tok.encode_document(prompt)
        with torch.no_grad():
            g = hf.generate(**enc, max_new_tokens=a.new_tokens, do_sample=False)[0, enc["input_ids"].shape[1]:]
        o = ours.generate(enc["input_ids"], a.new_tokens, temperature=0.0, stop_ids=tok.end_ids)[0]
        text = hf_tok.decode(g, skip_special_tokens=True)
        same = g.tolist() == o.tolist()
        print(f"{prompt!r} -> {text!r}  (model.py gives the same tokens: {same})")
        out["generations"].append({"prompt": prompt, "transformers": text, "same_tokens_as_model_py": same})

    ids = hf_tok(SENTENCE, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        theirs = hf(ids).logits
        mine, _ = ours(ids, ids)                            # with targets: logits at every position
    out["max_abs_logit_diff"] = float((theirs - mine).abs().max())
    print(f"largest |logit difference| over {ids.shape[1]} positions: {out['max_abs_logit_diff']:.2e}")

    if os.path.isdir(os.path.join(a.folder, ".git")):
        r = subprocess.run(["git", "-C", a.folder, "branch", "--format=%(refname:short)"], capture_output=True, text=True)
        out["branches"] = sorted(r.stdout.split(), key=lambda b: (b != "main", len(b), b))
        print("branches:", " ".join(out["branches"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
        print("wrote", a.json)


if __name__ == "__main__":
    main()
