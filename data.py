"""
Token bins on disk and the batches train.py draws from them.

    from data import read_meta, TokenWindows, heldout_windows
    meta = read_meta("data/model_a")                       # what tokenize_data.py wrote
    windows = TokenWindows("data/model_a", meta, batch_size=16, block_size=512, grad_accum=4, seed=1337)
    batch = windows.get_batch(step, micro_step)            # batch.x, batch.y: (B, T) int64; y is x shifted by one

A data folder (tokenize_data.py writes it): meta.json, the tokenizer file, and per language
<lang>/train.bin and <lang>/val.bin, each [BOS d1 BOS d2 ...] as meta["dtype"] (uint16 or uint32),
read with np.memmap so that a corpus larger than memory costs nothing to open.

Two ways to cut the bins into training samples (TrainConfig.samples):
  windows  TokenWindows: fixed windows of block_size + 1 tokens that run across documents, every
           position a target (nanoGPT's, and the usual way to pretrain).
  lines    LineSamples: one document (a line of the corpus) is one sample, cut into pieces of at
           most block_size tokens; each piece sees only itself, from position 0 (the Model A card's
           way). Short pieces are packed into rows with a block-diagonal mask, so the cost follows
           the real tokens rather than block_size.
Both are pure functions of (seed, step, micro_step, rank): a resumed or re-sharded run draws
exactly the batches an uninterrupted one would.
"""

import json
import os
from typing import NamedTuple, Optional

import numpy as np
import torch


class Batch(NamedTuple):
    """One micro-batch as the training loop feeds it to the model."""
    x: torch.Tensor                            # (B, T) input ids
    y: torch.Tensor                            # (B, T) target ids; -1 where nothing is predicted (padding)
    lang: str                                  # the language of every row, or "mixed"
    weight: float                              # the micro-batch's mean loss x weight, summed: the step's loss
    tokens: int                                # real input tokens of this micro-step, all ranks together
    positions: Optional[torch.Tensor] = None   # (B, T) RoPE positions; None: 0 .. T-1 in every row
    mask: Optional[torch.Tensor] = None        # (B, T, T) bool, True where t may attend to s; None: causal

    def to(self, device):
        """On device; pinned memory lets a host-to-GPU copy run while the GPU computes."""
        def move(t):
            if t is None or device == "cpu":
                return t
            return t.pin_memory().to(device, non_blocking=True) if str(device).startswith("cuda") else t.to(device)
        return self._replace(x=move(self.x), y=move(self.y), positions=move(self.positions), mask=move(self.mask))


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


class FixedMixture:
    """What the training loop asks of a batch source besides batches (mixer.Mixer answers each):
    a fixed mixture has nothing to learn from held-out losses, nothing to report, and no state to
    save, since every batch is a function of (seed, step, micro_step, rank)."""

    def update(self, step, val_losses):
        return None

    def summary(self):
        return None

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


class TokenWindows(FixedMixture):
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

    def get_batch(self, step, micro_step) -> Batch:
        first = ((step * self.grad_accum + micro_step) * self.world_size + self.rank) * self.B
        rows = [self.window(first + b) for b in range(self.B)]
        data = torch.from_numpy(np.stack([r for _, r in rows]))  # (B, T+1)
        langs = {self.langs[li] for li, _ in rows}
        # every micro-batch holds B x T targets, so the step's loss is the mean of the micro-batches'
        return Batch(data[:, :-1], data[:, 1:], langs.pop() if len(langs) == 1 else "mixed",
                     weight=1.0 / self.grad_accum, tokens=self.B * self.T * self.world_size)

    def train_tokens(self):
        return self.n_windows * self.T

    def samples_per_epoch(self):
        return self.n_windows



class LineSamples(FixedMixture):
    """The Model A card's batches: one document is one sample. Each document of train.bin (the
    tokens after a BOS, up to the next; with the BOS itself when bos_input) is cut into pieces of
    at most block_size tokens, the overflow of a long document becoming further pieces; a piece of
    n tokens gives n - 1 inputs and targets, attends only to itself, and has positions 0 .. n - 2.
    Pieces of one token predict nothing and are left out. Each epoch visits every piece once, in a
    fresh random order; a step takes batch_size x grad_accum x world_size pieces, and its loss is
    the mean over all their target tokens (not the mean of per-piece means), so a long piece
    weighs as much as its tokens.

    A micro-batch of B pieces is packed into rows of block_size positions (first fit): a row holds
    several pieces side by side, each with its own positions from 0 and a block-diagonal causal
    mask, so the forward pass gives every token exactly the hidden state it has alone
    (tests/test_train.py checks losses and gradients against one piece at a time)."""

    def __init__(self, data_dir, meta, batch_size, block_size, grad_accum, seed, rank=0, world_size=1,
                 bos_input=True, split="train"):
        self.B, self.T, self.grad_accum = batch_size, block_size, grad_accum
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.langs = sorted(meta["languages"])
        self.bins, starts, lengths, langs = [], [], [], []
        for li, lang in enumerate(self.langs):
            tokens = open_bin(data_dir, meta, lang, split)
            self.bins.append(tokens)
            s, n = document_pieces(tokens, meta["bos_id"], block_size, bos_input)
            starts.append(s)
            lengths.append(n)
            langs.append(np.full(len(s), li))
        self.start, self.length, self.lang = (np.concatenate(a) for a in (starts, lengths, langs))
        if len(self.start) == 0:
            raise SystemExit(f"{data_dir}: no document of two or more tokens in the {split} data")
        self.n_pieces = len(self.start)
        self._epoch, self._order = None, None
        self._counted_step, self._counts = None, None

    def piece(self, sample_index):
        """Index (into start, length, lang) of the run's sample_index-th piece."""
        epoch, k = divmod(sample_index, self.n_pieces)
        if epoch != self._epoch:  # one shuffle per epoch, cached
            self._order = np.random.default_rng([self.seed, epoch]).permutation(self.n_pieces)
            self._epoch = epoch
        return int(self._order[k])

    def pieces_of(self, step, micro_step, rank):
        first = ((step * self.grad_accum + micro_step) * self.world_size + rank) * self.B
        return [self.piece(first + b) for b in range(self.B)]

    def get_batch(self, step, micro_step) -> Batch:
        mine = self.pieces_of(step, micro_step, self.rank)
        step_targets, micro_inputs = self.targets_in(step)
        micro_inputs = micro_inputs[micro_step]
        batch = pack([self.tokens_of(p) for p in mine], self.T)
        langs = {self.langs[self.lang[p]] for p in mine}
        # DDP averages the ranks' gradients, hence x world_size: the shares add up to the step's
        # sum of target losses over its number of targets
        mine_targets = sum(int(self.length[p]) - 1 for p in mine)
        return batch._replace(lang=langs.pop() if len(langs) == 1 else "mixed",
                              weight=mine_targets * self.world_size / step_targets, tokens=micro_inputs)

    def targets_in(self, step):
        """(target tokens of the whole step, per micro-step the target tokens of all ranks), counted once
        a step: every rank can count the others' pieces, since they are a function of the step."""
        if self._counted_step != step:
            per_micro = [sum(int(self.length[p]) - 1 for r in range(self.world_size) for p in self.pieces_of(step, m, r))
                         for m in range(self.grad_accum)]
            self._counted_step, self._counts = step, (sum(per_micro), per_micro)
        return self._counts

    def tokens_of(self, p):
        start = int(self.start[p])
        return np.asarray(self.bins[self.lang[p]][start:start + int(self.length[p])], dtype=np.int64)

    def train_tokens(self):
        """Input tokens of one epoch."""
        return int((self.length - 1).sum())

    def samples_per_epoch(self):
        return self.n_pieces



def document_pieces(tokens, bos_id: int, block_size: int, bos_input: bool):
    """(start, length) of every piece of every document in a bin [BOS d1 BOS d2 ...]: a document's
    tokens (with its BOS when bos_input) cut into runs of at most block_size; runs of one token
    (nothing to predict) are left out."""
    bos = np.flatnonzero(np.asarray(tokens) == bos_id)
    if len(bos) == 0 or bos[0] != 0:
        raise SystemExit(f"{getattr(tokens, 'filename', 'a token bin')}: does not start with BOS "
                         f"(tokenize_data.py writes [BOS d1 BOS d2 ...])")
    doc_start = bos if bos_input else bos + 1
    doc_end = np.append(bos[1:], len(tokens))
    doc_len = np.maximum(doc_end - doc_start, 0)
    n_pieces = -(-doc_len // block_size)                                   # ceil(doc_len / block_size)
    first_piece = np.cumsum(n_pieces) - n_pieces                           # of each document
    k = np.arange(n_pieces.sum()) - np.repeat(first_piece, n_pieces)       # each piece's number in its document
    starts = np.repeat(doc_start, n_pieces) + k * block_size
    lengths = np.minimum(np.repeat(doc_end, n_pieces) - starts, block_size)
    keep = lengths >= 2
    return starts[keep].astype(np.int64), lengths[keep].astype(np.int64)


def pack(pieces, row_len: int) -> Batch:
    """Pieces (each of <= row_len + 1 tokens) packed first-fit into rows of row_len positions:
    inputs piece[:-1], targets piece[1:], positions 0.. per piece, and a mask that lets a token see
    the earlier tokens of its own piece only. Unused positions hold token 0 with target -1 and see
    only themselves (a softmax over nothing would be 0/0)."""
    rows = []  # per row: list of pieces
    for piece in pieces:
        n = len(piece) - 1
        row = next((r for r in rows if sum(len(p) - 1 for p in r) + n <= row_len), None)
        if row is None:
            rows.append([piece])
        else:
            row.append(piece)
    x = np.zeros((len(rows), row_len), np.int64)
    y = np.full((len(rows), row_len), -1, np.int64)
    positions = np.zeros((len(rows), row_len), np.int64)
    segment = np.tile(-1 - np.arange(row_len), (len(rows), 1))   # a distinct id per unused position
    for r, row in enumerate(rows):
        at = 0
        for s, piece in enumerate(row):
            n = len(piece) - 1
            x[r, at:at + n], y[r, at:at + n] = piece[:-1], piece[1:]
            positions[r, at:at + n] = np.arange(n)
            segment[r, at:at + n] = s
            at += n
    causal = np.tril(np.ones((row_len, row_len), bool))
    mask = (segment[:, :, None] == segment[:, None, :]) & causal   # (rows, T, T)
    return Batch(torch.from_numpy(x), torch.from_numpy(y), "", 1.0, int((y >= 0).sum()),
                 torch.from_numpy(positions), torch.from_numpy(mask))


def heldout_batches(data_dir, meta, block_size, batch_size, n_windows, samples="windows", bos_input=True):
    """Per language, the held-out batches, the same at every evaluation. windows: n_windows evenly
    spaced windows of val.bin; lines: every piece of every document of val.bin (the card's
    validation loss is over its whole file)."""
    out = {}
    windows = heldout_windows(data_dir, meta, block_size, n_windows) if samples == "windows" else None
    for lang in sorted(meta["languages"]):
        if samples == "lines":
            source = LineSamples(data_dir, {**meta, "languages": {lang: meta["languages"][lang]}}, batch_size,
                                 block_size, 1, 0, bos_input=bos_input, split="val")
            order = range(source.n_pieces)
            out[lang] = [pack([source.tokens_of(p) for p in order[i:i + batch_size]], block_size)
                         for i in range(0, source.n_pieces, batch_size)]
            continue
        out[lang] = [Batch(w[:, :-1], w[:, 1:], lang, 1.0, w[:, :-1].numel())
                     for w in windows[lang].split(batch_size)]
    return out


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
