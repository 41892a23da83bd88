"""
Token bins on disk and the batches train.py draws from them.

    from data import read_meta, TokenWindows, heldout_windows
    meta = read_meta("data/model_a")                       # what tokenize_data.py wrote
    windows = TokenWindows("data/model_a", meta, batch_size=16, block_size=512, grad_accum=4, seed=1337)
    x, y, lang = windows.get_batch(step, micro_step)       # (B, T) int64 each; y is x shifted by one

A data folder (tokenize_data.py writes it): meta.json, the tokenizer file, and per language
<lang>/train.bin and <lang>/val.bin, each [BOS d1 BOS d2 ...] as meta["dtype"] (uint16 or uint32),
read with np.memmap so that a corpus larger than memory costs nothing to open.
"""

import json
import os

import numpy as np
import torch


def read_meta(data_dir):
    """meta.json of a data folder, checked enough that later code can trust its keys."""
    path = os.path.join(data_dir, "meta.json")
    if not os.path.isfile(path):
        raise SystemExit(f"{data_dir}: no meta.json; make the data first (python tokenize_data.py --out {data_dir} ...)")
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"{path}: not a readable meta.json ({type(e).__name__}: {str(e)[:120]})")
    if not isinstance(meta, dict) or not meta.get("languages") or not isinstance(meta["languages"], dict):
        raise SystemExit(f"{path}: no languages listed")
    for key in ("vocab_size", "dtype", "bos_id"):
        if key not in meta:
            raise SystemExit(f"{path}: no {key!r} (not written by tokenize_data.py?)")
    if meta["dtype"] not in ("uint16", "uint32"):
        raise SystemExit(f"{path}: dtype {meta['dtype']!r}, expected uint16 or uint32")
    return meta


def open_bin(data_dir, meta, lang, split):
    """<data_dir>/<lang>/<split>.bin as a read-only memmap of token ids."""
    path = os.path.join(data_dir, lang, f"{split}.bin")
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        raise SystemExit(f"{path}: missing or empty token file")
    itemsize = np.dtype(meta["dtype"]).itemsize
    if os.path.getsize(path) % itemsize:
        raise SystemExit(f"{path}: {os.path.getsize(path)} bytes is not a whole number of {meta['dtype']} tokens (truncated?)")
    tokens = np.memmap(path, dtype=np.dtype(meta["dtype"]), mode="r")
    biggest = int(tokens.max())  # one pass over the file: a corrupt bin must not reach the embedding
    if biggest >= meta["vocab_size"]:
        raise SystemExit(f"{path}: token id {biggest} is not below meta.json's vocab_size {meta['vocab_size']} (corrupt file?)")
    return tokens


class TokenWindows:
    """The plain batch source: every language's train.bin cut into windows of block_size + 1
    tokens, visited in a fresh random order each epoch, so "5 epochs" means each window is seen
    exactly 5 times. Sample i of the run is a pure function of (seed, i), and i is fixed by
    (step, micro_step, rank), so a resumed or re-sharded run draws exactly the same windows.
    (mixer.Mixer is the other batch source, with the same methods.)

    align_windows: window k starts at the first BOS in its stretch [k T, (k+1) T) instead of at k T,
    so that every window opens as an evaluated sentence does: BOS at position 0, nothing before it.
    Each window still holds T + 1 tokens; the tokens a shift skips at one window's start are the end
    of the window before, so the data seen per epoch changes by about one document per window."""

    def __init__(self, data_dir, meta, batch_size, block_size, grad_accum, seed, rank=0, world_size=1,
                 align_windows=False):
        self.B, self.T, self.grad_accum = batch_size, block_size, grad_accum
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.langs = sorted(meta["languages"])
        self.bins = [open_bin(data_dir, meta, lang, "train") for lang in self.langs]
        counts = [(len(b) - 1) // block_size for b in self.bins]  # full windows per language
        if sum(counts) == 0:
            raise SystemExit(f"{data_dir}: fewer than block_size={block_size} training tokens")
        self.window_start = np.cumsum([0] + counts)  # window k belongs to the language whose range holds k
        self.offsets = [np.arange(n, dtype=np.int64) * block_size for n in counts]  # per language, window k's start
        if align_windows:  # move each window's start to the first BOS in its stretch, if it has one
            for li, b in enumerate(self.bins):
                bos = np.flatnonzero(np.asarray(b) == meta["bos_id"])
                start = self.offsets[li]
                first = np.append(bos, len(b))[np.searchsorted(bos, start)]  # first BOS at or after start
                moved = np.where(first < start + block_size, first, start)
                self.offsets[li] = np.minimum(moved, len(b) - block_size - 1)  # the last window must fit
        self.n_windows = int(self.window_start[-1])
        self._epoch, self._order = None, None

    def position(self, sample_index):
        """(language index, token offset) of the run's sample_index-th window."""
        epoch, k = divmod(sample_index, self.n_windows)
        if epoch != self._epoch:  # one shuffle per epoch, cached
            self._order = np.random.default_rng([self.seed, epoch]).permutation(self.n_windows)
            self._epoch = epoch
        w = int(self._order[k])
        li = int(np.searchsorted(self.window_start, w, side="right") - 1)
        return li, int(self.offsets[li][w - int(self.window_start[li])])

    def window(self, sample_index):
        li, offset = self.position(sample_index)
        return li, np.asarray(self.bins[li][offset:offset + self.T + 1], dtype=np.int64)

    def get_batch(self, step, micro_step):
        first = ((step * self.grad_accum + micro_step) * self.world_size + self.rank) * self.B
        rows = [self.window(first + b) for b in range(self.B)]
        data = torch.from_numpy(np.stack([r for _, r in rows]))  # (B, T+1)
        langs = {self.langs[li] for li, _ in rows}
        return data[:, :-1], data[:, 1:], (langs.pop() if len(langs) == 1 else "mixed")

    def train_tokens(self):
        return self.n_windows * self.T

    def update(self, step, val_losses):
        return None  # a fixed mixture: nothing to learn from the held-out losses

    def summary(self):
        return None  # what a mixer reports in the model card; a fixed mixture has nothing to add

    def state_dict(self):
        return {}  # everything is a function of (seed, step): no state to keep

    def load_state_dict(self, state):
        pass


def heldout_windows(data_dir, meta, block_size, n_windows):
    """Per language, n_windows evenly spaced windows of val.bin: the same tokens at every evaluation."""
    out = {}
    for lang in sorted(meta["languages"]):
        val = open_bin(data_dir, meta, lang, "val")
        if len(val) < block_size + 1:
            raise SystemExit(f"{os.path.join(data_dir, lang, 'val.bin')}: fewer than block_size+1={block_size + 1} tokens")
        starts = np.linspace(0, len(val) - block_size - 1, num=min(n_windows, len(val) // block_size)).astype(np.int64)
        out[lang] = torch.from_numpy(np.stack([np.asarray(val[s:s + block_size + 1], dtype=np.int64) for s in starts]))
    return out
