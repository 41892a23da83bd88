"""
Generate text from a train.py checkpoint (or an export_hf.py folder).

    python sample.py out/model_a/ckpt.safetensors --prompt "The cat" --max_new_tokens=100 --temperature=0.8 --top_k=50

The prompt is encoded as training saw the start of a document (tokenizer.encode_document: after
BOS, unless the model was trained without one), and generation stops where training would end a
document: at the next BOS or an EOS (tokenizer.end_ids).
"""

import argparse
import sys
from contextlib import nullcontext

import torch

from load import load_model
from machine import choose_dtype
from model import DTYPES


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--prompt", default="")
    p.add_argument("--max_new_tokens", "--max-new-tokens", type=int, default=100)
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    p.add_argument("--top_k", "--top-k", type=int, default=50, help="sample among the k likeliest tokens")
    p.add_argument("--num_samples", "--num-samples", type=int, default=1)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="auto: what the device computes natively (machine.py)")
    args = p.parse_args(argv)
    for name, least in (("max_new_tokens", 1), ("top_k", 1), ("num_samples", 1), ("temperature", 0)):
        if getattr(args, name) < least:
            raise SystemExit(f"--{name} {getattr(args, name)}: must be at least {least}")

    torch.manual_seed(args.seed)
    model, tok = load_model(args.checkpoint, args.device)
    ids = tok.encode_document(args.prompt)  # a document as training saw its start
    if not ids:
        raise SystemExit(f"{args.checkpoint}: the model was trained without BOS, so it needs a --prompt to start from")
    prompt_text = tok.encode(args.prompt)  # the prompt's ids without the BOS encode_document may add
    x = torch.tensor([ids], dtype=torch.long, device=args.device)
    device_type = torch.device(args.device).type
    dtype, why = choose_dtype(args.dtype, device_type)
    if "notice" in why:
        print(f"{device_type}: {dtype} ({why})", file=sys.stderr)
    autocast = torch.autocast(device_type, dtype=DTYPES[dtype]) if dtype != "float32" else nullcontext()
    for _ in range(args.num_samples):
        with autocast:
            new = model.generate(x, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                                 stop_ids=tok.end_ids)[0].tolist()
        if new and new[-1] in tok.end_ids:  # the document ended: its end token is not text
            new = new[:-1]
        print(tok.decode(prompt_text + new))
        if args.num_samples > 1:
            print("---")


if __name__ == "__main__":
    main(sys.argv[1:])
