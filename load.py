"""
A model from a path: a checkpoint file train.py wrote, or a folder export_hf.py wrote.

    from load import load_model
    model, tokenizer = load_model("out/model_a/ckpt.safetensors")        # a checkpoint file
    model, tokenizer = load_model("exports/model_a", device="cuda")      # an exported folder
    model, tokenizer = load_model("out/old/ckpt.safetensors", tokenizer_path="data/eng")  # another tokenizer

It returns our model.Transformer and tokenizer.Tokenizer, whichever the path holds. train.py
(--init_from), eval_blimp.py and sample.py read their model this way. Each kind has its own
reader, next to the code that writes it:

    a file     checkpoint.load_checkpoint + stored_tokenizer   what train.py saves
    a folder   export_hf.load_hf                               what export_hf.py writes (or any
                                                               Transformers LLaMA of our design)

This file sits above both, so neither reader needs to know about the other.
"""

import os

import torch

from checkpoint import load_checkpoint, stored_tokenizer
from export_hf import load_hf
from tokenizer import load_tokenizer


def load_model(path: str, device="cpu", tokenizer_path: str = None):
    """(model, tokenizer) from a train.py checkpoint file or an exported folder. tokenizer_path (a
    tokenizer file or data folder) replaces the tokenizer stored with the model, or gives one to
    a checkpoint that holds none. Errors are one line naming the path."""
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {device}: this machine has no CUDA GPU (torch {torch.__version__}); use --device cpu")
    if os.path.isdir(path):
        model, tokenizer = load_hf(path, device)
    else:
        model, info = load_checkpoint(path, device)
        tokenizer = None if tokenizer_path else stored_tokenizer(path, info)  # a given one wins
    if tokenizer_path:
        tokenizer = load_tokenizer(tokenizer_path)
    if tokenizer is None:
        raise SystemExit(f"{path}: holds no tokenizer; give one with --tokenizer")
    if tokenizer.vocab_size > model.cfg.vocab_size:
        raise SystemExit(f"{path}: tokenizer has {tokenizer.vocab_size} tokens, the model only {model.cfg.vocab_size}")
    return model, tokenizer
