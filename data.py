"""
Token bins on disk and the batches train.py draws from them.

    from data import read_meta, Shard, TokenWindows, heldout_batches
    meta = read_meta("data/model_a")                       # what tokenize_data.py wrote
    shard = Shard(batch_size=16, block_size=512, grad_accum=4, seed=1337)   # rank=0, world_size=1
    windows = TokenWindows("data/model_a", meta, shard)
    batch = windows.get_batch(step, micro_step)            # batch.x, batch.y: (B, T) int64; y is x shifted by one
    heldout = heldout_batches("data/model_a", meta, shard, n_windows=64)   # {lang: [Batch, ...]}

A data folder (tokenize_data.py writes it): meta.json, the tokenizer file, and per language
<lang>/train.bin and <lang>/val.bin, each [BOS d1 BOS d2 ...] as meta["dtype"] (uint16 or uint32),
read with np.memmap so that a corpus larger than memory costs nothing to open.

Every batch source answers the seven methods of `BatchSource` and takes its batch shape and its
rank's share from one `Shard`. Two ways to cut the bins into training samples (TrainConfig.samples):
  windows  TokenWindows: fixed windows of block_size + 1 tokens that run across documents, every
           position a target (nanoGPT's, and the usual way to pretrain).
  lines    LineSamples: one document (a line of the corpus) is one sample, cut into pieces of at
           most block_size tokens; each piece sees only itself, from position 0 (the Model A card's
           way). Short pieces are packed into rows with a block-diagonal mask, so the cost follows
           the real tokens rather than block_size. With join_lines, neighbouring lines are joined
           into one piece of up to block_size tokens, the BOS between them kept as a separator.
Both visit their samples in `EpochOrder` and are pure functions of (seed, step, micro_step, rank):
a resumed or re-sharded run draws exactly the batches an uninterrupted one would. The third source,
mixer.Mixer, draws windows by a learned language mixture; mixer.open_batch_source picks one of the
three for a config.
"""

import json
import os
from dataclasses import dataclass
from typing import NamedTuple, Optional, Protocol

import numpy as np
import torch

from model import LIMITS


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
    # every value later code uses, checked for its type and range: a vocab_size of 10**12 would be allocated
    most = min(np.iinfo(meta["dtype"]).max + 1, LIMITS["vocab_size"])
    for key, value, ok in [("vocab_size", meta["vocab_size"], lambda v: 1 <= v <= most),
                           ("bos_id", meta["bos_id"], lambda v: 0 <= v < meta["vocab_size"])]:
        if isinstance(value, bool) or not isinstance(value, int) or not ok(value):
            raise SystemExit(f"{path}: {key} {value!r} is not a token count/id the data can hold (at most {most:,})")
    if not isinstance(meta.get("bos_input", True), bool):
        raise SystemExit(f"{path}: bos_input {meta['bos_input']!r}, expected true or false")
    for lang, info in meta["languages"].items():
        train = info.get("train") if isinstance(info, dict) else None
        counts = [train.get(key) for key in ("tokens", "words")] if isinstance(train, dict) else [None]
        if not all(isinstance(c, (int, float)) and not isinstance(c, bool) and c >= 0 for c in counts):
            raise SystemExit(f"{path}: languages.{lang} lacks its training token and word counts (or they are not numbers)")
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


class BatchSource(Protocol):
    """What train.py asks of a batch source, written down once: TokenWindows and LineSamples (below)
    and mixer.Mixer answer these seven methods. The last four have a fixed mixture's answers here,
    which TokenWindows and LineSamples inherit: nothing to learn from held-out losses, nothing to
    report, no state to save, since every batch is a function of (seed, step, micro_step, rank).
    The Mixer, which learns, overrides them."""

    def get_batch(self, step: int, micro_step: int) -> Batch:
        """This rank's micro-batch micro_step (0 .. grad_accum - 1) of optimizer step `step`."""

    def train_tokens(self) -> int:
        """Input tokens in one epoch (over samples_per_epoch: the mean tokens per sample, for max_tokens)."""

    def samples_per_epoch(self) -> float:
        """Samples (windows or pieces) in one epoch (train.py's epochs count these)."""

    def update(self, step: int, val_losses: dict) -> Optional[dict]:
        """Learn from an evaluation's held-out losses {lang: loss}; a record to log, or None."""
        return None

    def summary(self) -> Optional[dict]:
        """What the model card reports of the data mixing (in every checkpoint's info), or None."""
        return None

    def state_dict(self) -> dict:
        """What decides future batches beyond (seed, step), as plain values, for the checkpoint."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Take back what state_dict() gave, on resume."""


@dataclass(frozen=True)
class Shard:
    """The shape of a step and this rank's share of it. One optimizer step takes
    batch_size x grad_accum x world_size samples (windows or pieces) of at most block_size tokens;
    the run's samples are numbered step after step, micro-step after micro-step, rank after rank,
    so each rank draws a disjoint part of the same global batch, and one process with grad_accum=2
    sees what two ranks with grad_accum=1 see."""
    batch_size: int        # B: samples per micro-batch, per rank
    block_size: int        # T: tokens per sample (at most, for pieces)
    grad_accum: int = 1    # micro-batches per optimizer step, per rank
    seed: int = 0          # decides the order of the samples (and the mixer's draws)
    rank: int = 0          # this process, 0 .. world_size - 1
    world_size: int = 1    # processes in the DDP group

    def samples(self, step: int, micro_step: int, rank: Optional[int] = None) -> range:
        """The run's sample indices in rank's (this rank's by default) micro-batch micro_step of step:

            first = ((step * grad_accum + micro_step) * world_size + rank) * batch_size
        """
        rank = self.rank if rank is None else rank
        first = ((step * self.grad_accum + micro_step) * self.world_size + rank) * self.batch_size
        return range(first, first + self.batch_size)


class EpochOrder:
    """Which of n items the run's i-th sample is: epoch i // n visits all n in a fresh random order
    (numpy's generator seeded with [seed, epoch]), so "5 epochs" means each item is seen exactly 5
    times, and item i is a pure function of (seed, i). One permutation is cached, that of the epoch
    asked for last: samples are asked for in order, so it is made once per epoch."""

    def __init__(self, n: int, seed: int, sort_first_epoch_by=None):
        self.n, self.seed = n, seed
        self.sort_first_epoch_by = sort_first_epoch_by  # a key per item: epoch 0 visits them by it, ascending
        self._epoch, self._order = None, None

    def __getitem__(self, sample_index: int) -> int:
        epoch, k = divmod(sample_index, self.n)
        if epoch != self._epoch:  # one shuffle per epoch, cached
            self._order = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            if epoch == 0 and self.sort_first_epoch_by is not None:  # a stable sort: ties stay shuffled
                self._order = self._order[np.argsort(self.sort_first_epoch_by[self._order], kind="stable")]
            self._epoch = epoch
        return int(self._order[k])


class TokenWindows(BatchSource):
    """The plain batch source: every language's train.bin cut into windows of block_size + 1
    tokens, visited in EpochOrder. Sample i of the run is a pure function of (seed, i), and i is
    fixed by (step, micro_step, rank) (Shard.samples), so a resumed or re-sharded run draws exactly
    the same windows. Windows run across documents: the BOS in them is the separator the model
    reads (mixer.open_batch_source refuses a tokenizer with bos_input=False for them).

    align_windows: window k starts at the first BOS in its stretch [k T, (k+1) T) instead of at k T,
    so that every window opens as an evaluated sentence does: BOS at position 0, nothing before it.
    Each window still holds T + 1 tokens; the tokens a shift skips at one window's start are the end
    of the window before, so the data seen per epoch changes by about one document per window."""

    def __init__(self, data_dir, meta, shard: Shard, align_windows=False):
        self.shard, T = shard, shard.block_size
        self.langs = sorted(meta["languages"])
        self.bins = [open_bin(data_dir, meta, lang, "train") for lang in self.langs]
        counts = [(len(b) - 1) // T for b in self.bins]  # full windows per language
        if sum(counts) == 0:
            raise SystemExit(f"{data_dir}: fewer than block_size={T} training tokens")
        self.window_start = np.cumsum([0] + counts)  # window k belongs to the language whose range holds k
        self.offsets = [np.arange(n, dtype=np.int64) * T for n in counts]  # per language, window k's start
        if align_windows:  # move each window's start to the first BOS in its stretch, if it has one
            for li, b in enumerate(self.bins):
                bos = np.flatnonzero(np.asarray(b) == meta["bos_id"])
                start = self.offsets[li]
                first = np.append(bos, len(b))[np.searchsorted(bos, start)]  # first BOS at or after start
                moved = np.where(first < start + T, first, start)
                self.offsets[li] = np.minimum(moved, len(b) - T - 1)  # the last window must fit
        self.n_windows = int(self.window_start[-1])
        self.order = EpochOrder(self.n_windows, shard.seed)

    def position(self, sample_index):
        """(language index, token offset) of the run's sample_index-th window."""
        w = self.order[sample_index]
        li = int(np.searchsorted(self.window_start, w, side="right") - 1)
        return li, int(self.offsets[li][w - int(self.window_start[li])])

    def window(self, sample_index):
        li, offset = self.position(sample_index)
        return li, np.asarray(self.bins[li][offset:offset + self.shard.block_size + 1], dtype=np.int64)

    def get_batch(self, step, micro_step) -> Batch:
        s = self.shard
        rows = [self.window(i) for i in s.samples(step, micro_step)]
        data = torch.from_numpy(np.stack([r for _, r in rows]))  # (B, T+1)
        langs = {self.langs[li] for li, _ in rows}
        # every micro-batch holds B x T targets, so the step's loss is the mean of the micro-batches'
        return Batch(data[:, :-1], data[:, 1:], langs.pop() if len(langs) == 1 else "mixed",
                     weight=1.0 / s.grad_accum, tokens=s.batch_size * s.block_size * s.world_size)

    def train_tokens(self):
        return self.n_windows * self.shard.block_size

    def samples_per_epoch(self):
        return self.n_windows


class LineSamples(BatchSource):
    """The Model A card's batches: one document is one sample. Each document of train.bin (the
    tokens after a BOS, up to the next; with the BOS itself when bos_input) is cut into pieces of
    at most block_size tokens, the overflow of a long document becoming further pieces; a piece of
    n tokens gives n - 1 inputs and targets, attends only to itself, and has positions 0 .. n - 2.
    Pieces of one token predict nothing and are left out. Each epoch visits every piece once, in
    EpochOrder (with short_first, the first epoch goes from the shortest piece to the longest); a step takes batch_size x grad_accum x world_size pieces, and its loss is the mean
    over all their target tokens (not the mean of per-piece means), so a long piece weighs as much
    as its tokens.

    A micro-batch of B pieces is packed into rows of block_size positions (first fit): a row holds
    several pieces side by side, each with its own positions from 0 and a block-diagonal causal
    mask, so the forward pass gives every token exactly the hidden state it has alone
    (tests/test_data.py checks losses and gradients against one piece at a time).

    join_lines: neighbouring pieces (in the bin's order) are joined into pieces of up to block_size
    tokens (join_neighbours), so that a line is read after the lines before it; the first line of a
    piece still starts at position 0."""

    def __init__(self, data_dir, meta, shard: Shard, bos_input=True, split="train", short_first=False,
                 join_lines=False):
        self.shard = shard
        self.langs = sorted(meta["languages"])
        self.bins, starts, lengths, langs = [], [], [], []
        for li, lang in enumerate(self.langs):
            tokens = open_bin(data_dir, meta, lang, split)
            self.bins.append(tokens)
            s, n = document_pieces(tokens, meta["bos_id"], shard.block_size, bos_input)
            if join_lines:
                s, n = join_neighbours(s, n, shard.block_size)
            starts.append(s)
            lengths.append(n)
            langs.append(np.full(len(s), li))
        self.start, self.length, self.lang = (np.concatenate(a) for a in (starts, lengths, langs))
        if len(self.start) == 0:
            raise SystemExit(f"{data_dir}: no document of two or more tokens in the {split} data")
        self.n_pieces = len(self.start)
        # short_first: a curriculum, the first epoch from the shortest piece to the longest
        self.order = EpochOrder(self.n_pieces, shard.seed, sort_first_epoch_by=self.length if short_first else None)
        self._counted_step, self._counts = None, None

    def pieces_of(self, step, micro_step, rank):
        """Indices (into start, length, lang) of rank's pieces in micro_step of step."""
        return [self.order[i] for i in self.shard.samples(step, micro_step, rank)]

    def get_batch(self, step, micro_step) -> Batch:
        s = self.shard
        mine = self.pieces_of(step, micro_step, s.rank)
        step_targets, micro_inputs = self.targets_in(step)
        micro_inputs = micro_inputs[micro_step]
        batch = pack([self.tokens_of(p) for p in mine], s.block_size)
        langs = {self.langs[self.lang[p]] for p in mine}
        # DDP averages the ranks' gradients, hence x world_size: the shares add up to the step's
        # sum of target losses over its number of targets
        mine_targets = sum(int(self.length[p]) - 1 for p in mine)
        return batch._replace(lang=langs.pop() if len(langs) == 1 else "mixed",
                              weight=mine_targets * s.world_size / step_targets, tokens=micro_inputs)

    def targets_in(self, step):
        """(target tokens of the whole step, per micro-step the target tokens of all ranks), counted once
        a step: every rank can count the others' pieces, since they are a function of the step."""
        if self._counted_step != step:
            s = self.shard
            per_micro = [sum(int(self.length[p]) - 1 for r in range(s.world_size) for p in self.pieces_of(step, m, r))
                         for m in range(s.grad_accum)]
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


def join_neighbours(starts, lengths, block_size: int):
    """Pieces (start, length, in the bin's order) joined with the ones after them while the span from the
    first's start to the last's end holds at most block_size tokens. The span keeps what lies between
    two pieces: the next document's BOS (so the model reads BOS as the separator between lines, even
    where bos_input is False) and a one-token document that document_pieces left out."""
    joined_starts, joined_ends = [], []
    for start, end in zip(starts.tolist(), (starts + lengths).tolist()):
        if joined_starts and end - joined_starts[-1] <= block_size:
            joined_ends[-1] = end
        else:
            joined_starts.append(start)
            joined_ends.append(end)
    joined_starts = np.array(joined_starts, np.int64)
    return joined_starts, np.array(joined_ends, np.int64) - joined_starts


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


def heldout_batches(data_dir, meta, shard: Shard, n_windows, samples="windows", bos_input=True):
    """Per language, the held-out batches of shard.batch_size samples of shard.block_size tokens, the
    same at every evaluation. windows: n_windows evenly spaced windows of val.bin; lines: every
    piece of every document of val.bin (the card's validation loss is over its whole file)."""
    B, T = shard.batch_size, shard.block_size
    out = {}
    windows = heldout_windows(data_dir, meta, T, n_windows) if samples == "windows" else None
    for lang in sorted(meta["languages"]):
        if samples == "lines":
            source = LineSamples(data_dir, {**meta, "languages": {lang: meta["languages"][lang]}}, shard,
                                 bos_input=bos_input, split="val")
            order = range(source.n_pieces)
            out[lang] = [pack([source.tokens_of(p) for p in order[i:i + B]], T) for i in range(0, source.n_pieces, B)]
            continue
        out[lang] = [Batch(w[:, :-1], w[:, 1:], lang, 1.0, w[:, :-1].numel()) for w in windows[lang].split(B)]
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
