"""
Generate text from a train.py checkpoint.

    python sample.py out/model_a/ckpt.safetensors --prompt "The cat" --max_new_tokens=100 --temperature=0.8 --top_k=50
"""

import argparse

import torch

from checkpoint import load_model


def main():
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--prompt", default="")
    p.add_argument("--max_new_tokens", type=int, default=100)
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    p.add_argument("--top_k", type=int, default=50)
    p.add_argument("--num_samples", type=int, default=1)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()

    torch.manual_seed(args.seed)
    model, tok = load_model(args.checkpoint, args.device)
    ids = tok.encode_document(args.prompt)  # a document as training saw its start
    x = torch.tensor([ids], dtype=torch.long, device=args.device)
    for _ in range(args.num_samples):
        new = model.generate(x, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                             stop_ids=tok.end_ids)[0].tolist()
        if new and new[-1] in tok.end_ids:  # the document ended: its end token is not text
            new = new[:-1]
        print(tok.decode(ids[1:] + new))
        if args.num_samples > 1:
            print("---")


if __name__ == "__main__":
    main()
