"""
Specification of data.py: how the token bins are cut into the batches train.py draws (a few
seconds on 2 CPU cores).

    pytest tests/test_data.py
"""

import json
import os

import numpy as np
import pytest
import torch

import conftest  # noqa: F401  (puts the repository on sys.path)
from data import Shard
from model import ModelConfig, Transformer
import data
import mixer
import train

# ----------------------------------------------------------------------------- token windows

def test_token_windows_visit_every_window_once_per_epoch(tiny_data):
    meta = data.read_meta(tiny_data)
    src = data.TokenWindows(tiny_data, meta, Shard(batch_size=2, block_size=8, grad_accum=1, seed=0))
    n = src.n_windows
    seen = [src.position(i) for i in range(n)]
    assert len(set(seen)) == n                       # n distinct windows within an epoch
    assert all(off % 8 == 0 for _, off in seen)      # non-overlapping: at multiples of block_size
    second = [src.position(n + i) for i in range(n)]
    assert sorted(second) == sorted(seen) and second != seen  # the next epoch: same windows, new order


def test_aligned_windows_start_at_the_first_bos_of_their_stretch(tmp_path):
    # documents (BOS = 0) at 0, 10, 13 and 33 of 42 tokens: five windows of 8 (+1) tokens
    tokens = np.full(42, 5, dtype=np.uint16)
    tokens[[0, 10, 13, 33]] = 0
    os.makedirs(tmp_path / "eng")
    tokens.tofile(tmp_path / "eng" / "train.bin")
    meta = {"dtype": "uint16", "bos_id": 0, "vocab_size": 6, "languages": {"eng": {}}}
    plain = data.TokenWindows(str(tmp_path), meta, Shard(batch_size=1, block_size=8, grad_accum=1, seed=0))
    aligned = data.TokenWindows(str(tmp_path), meta, Shard(batch_size=1, block_size=8, grad_accum=1, seed=0),
                                 align_windows=True)
    assert plain.offsets[0].tolist() == [0, 8, 16, 24, 32]
    # stretches [0, 8) and [8, 16) hold a BOS (0, 10); [16, 24) and [24, 32) none; [32, 40) the one at 33
    assert aligned.offsets[0].tolist() == [0, 10, 16, 24, 33]
    windows = [aligned.window(i)[1] for i in range(aligned.n_windows)]
    assert all(len(w) == 9 for w in windows)                     # the last one still fits
    assert sorted(w[0] for w in windows) == [0, 0, 0, 5, 5]


def test_ddp_ranks_draw_disjoint_parts_of_the_same_global_batch(tiny_data):
    meta = data.read_meta(tiny_data)
    one = data.TokenWindows(tiny_data, meta, Shard(batch_size=2, block_size=8, grad_accum=2, seed=0))
    ranks = [data.TokenWindows(tiny_data, meta, Shard(batch_size=2, block_size=8, grad_accum=1, seed=0, rank=r, world_size=2))
             for r in range(2)]
    # step s of one process with accumulation 2 sees what step s of 2 ranks without accumulation see
    for step in range(3):
        single = torch.cat([one.get_batch(step, m)[0] for m in range(2)])
        both = torch.cat([ranks[r].get_batch(step, 0)[0] for r in range(2)])
        assert torch.equal(single, both)


# ----------------------------------------------------------------------------- line samples (the card's way)

def test_documents_are_cut_into_pieces_of_at_most_block_size_and_one_token_pieces_dropped():
    # BOS = 0; documents of 5, 1, 9 and 2 tokens after their BOS
    tokens = np.array([0, 1, 2, 3, 4, 5, 0, 6, 0, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 16, 17], np.uint16)
    starts, lengths = data.document_pieces(tokens, 0, block_size=4, bos_input=False)
    pieces = [tokens[s:s + n].tolist() for s, n in zip(starts, lengths)]
    assert pieces == [[1, 2, 3, 4], [7, 8, 9, 10], [11, 12, 13, 14], [16, 17]]   # [5], [6], [15] predict nothing
    starts, lengths = data.document_pieces(tokens, 0, block_size=4, bos_input=True)
    assert [tokens[s:s + n].tolist() for s, n in zip(starts, lengths)] == \
        [[0, 1, 2, 3], [4, 5], [0, 6], [0, 7, 8, 9], [10, 11, 12, 13], [14, 15], [0, 16, 17]]


def test_joined_lines_are_neighbouring_pieces_up_to_block_size_with_the_bos_between_them_kept():
    # the bin of the test above, block_size 6: pieces [1..5], [7..12], [13, 14, 15], [16, 17]
    tokens = np.array([0, 1, 2, 3, 4, 5, 0, 6, 0, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 16, 17], np.uint16)
    starts, lengths = data.join_neighbours(*data.document_pieces(tokens, 0, block_size=6, bos_input=False), 6)
    # [1..5] + [7..12] would span 14 tokens; [13, 14, 15] + BOS + [16, 17] spans 6
    assert [tokens[s:s + n].tolist() for s, n in zip(starts, lengths)] == \
        [[1, 2, 3, 4, 5], [7, 8, 9, 10, 11, 12], [13, 14, 15, 0, 16, 17]]
    # a one-token document between two joined ones stays in the span: no text goes missing
    tokens = np.array([0, 1, 2, 0, 6, 0, 7, 8], np.uint16)
    starts, lengths = data.join_neighbours(*data.document_pieces(tokens, 0, block_size=8, bos_input=False), 8)
    assert [tokens[s:s + n].tolist() for s, n in zip(starts, lengths)] == [[1, 2, 0, 6, 0, 7, 8]]


def test_train_configs_join_lines_reaches_the_line_samples_and_needs_them(tiny_data):
    meta = data.read_meta(tiny_data)
    shard = Shard(batch_size=4, block_size=16, seed=0)
    cfg = train.TrainConfig(data_dir=tiny_data, samples="lines", join_lines=True)
    joined = mixer.open_batch_source(cfg, mixer.MixerConfig(), meta, shard, bos_input=False)
    one_a_line = data.LineSamples(tiny_data, meta, shard, bos_input=False)
    assert joined.n_pieces < one_a_line.n_pieces and joined.length.max() <= 16
    with pytest.raises(ValueError, match="join_lines: only for samples='lines'"):
        train.TrainConfig(samples="windows", join_lines=True)


def test_packed_rows_give_the_loss_and_gradients_of_the_pieces_one_at_a_time():
    """The step's loss is the mean over all target tokens; packing pieces side by side into rows with
    their own positions and a block-diagonal mask changes nothing (fp32, 1e-5)."""
    torch.manual_seed(0)
    model = Transformer(ModelConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=64, vocab_size=50, max_seq_len=16))
    rng = np.random.default_rng(0)
    pieces = [rng.integers(1, 50, size=n) for n in (2, 17, 5, 9, 3, 17, 12, 2)]   # <= block_size + 1 tokens
    batch = data.pack(pieces, row_len=16)
    assert batch.x.shape[0] < len(pieces)                                        # several pieces share a row
    _, loss = model(batch.x, batch.y, positions=batch.positions, mask=batch.mask)
    loss.backward()
    packed = {k: p.grad.clone() for k, p in model.named_parameters()}
    model.zero_grad()
    n_targets = sum(len(p) - 1 for p in pieces)
    reference = 0.0
    for p in pieces:
        x, y = torch.from_numpy(p[None, :-1]), torch.from_numpy(p[None, 1:])
        _, piece_loss = model(x, y)
        reference = reference + piece_loss * (len(p) - 1) / n_targets
    reference.backward()
    torch.testing.assert_close(loss, reference, rtol=0, atol=1e-5)
    for k, p in model.named_parameters():
        torch.testing.assert_close(packed[k], p.grad, rtol=0, atol=1e-5)


def test_line_samples_visit_every_piece_once_per_epoch_and_weigh_the_step_by_its_tokens(tiny_data):
    meta = data.read_meta(tiny_data)
    one = data.LineSamples(tiny_data, meta, Shard(batch_size=4, block_size=8, grad_accum=2, seed=0))
    ranks = [data.LineSamples(tiny_data, meta, Shard(batch_size=4, block_size=8, grad_accum=1, seed=0, rank=r, world_size=2))
             for r in range(2)]
    per_epoch = one.n_pieces // 8
    seen = [p for step in range(per_epoch) for m in range(2) for p in one.pieces_of(step, m, 0)]
    assert len(set(seen)) == len(seen) == per_epoch * 8
    for step in range(3):
        assert [p for m in range(2) for p in one.pieces_of(step, m, 0)] == \
            [p for r in range(2) for p in ranks[r].pieces_of(step, 0, r)]           # two ranks: the same global step
        weights = [one.get_batch(step, m).weight for m in range(2)]
        assert abs(sum(weights) - 1) < 1e-12
        shares = [ranks[r].get_batch(step, 0).weight / 2 for r in range(2)]          # DDP averages over ranks
        assert abs(sum(shares) - 1) < 1e-12


# ----------------------------------------------------------------------------- the sample index and the epoch order

def test_a_steps_samples_are_numbered_step_micro_step_rank_and_each_epoch_visits_every_item_once():
    shard = Shard(batch_size=3, block_size=8, grad_accum=2, seed=7, rank=1, world_size=2)
    assert shard.samples(0, 0) == range(3, 6)                   # rank 0 has 0..2
    assert shard.samples(1, 1, rank=0) == range(18, 21)         # ((1 * 2 + 1) * 2 + 0) * 3
    order = data.EpochOrder(10, seed=7)
    first, second = [order[i] for i in range(10)], [order[i] for i in range(10, 20)]
    assert sorted(first) == sorted(second) == list(range(10)) and first != second
    assert [data.EpochOrder(10, seed=7)[i] for i in range(10)] == first    # a function of (seed, i)


def test_short_first_visits_the_first_epoch_from_shortest_to_longest_then_shuffles(tiny_data):
    meta = data.read_meta(tiny_data)
    plain = data.LineSamples(tiny_data, meta, Shard(batch_size=4, block_size=8, seed=3))
    curriculum = data.LineSamples(tiny_data, meta, Shard(batch_size=4, block_size=8, seed=3), short_first=True)
    n = curriculum.n_pieces
    first = [curriculum.order[i] for i in range(n)]
    assert sorted(first) == list(range(n))                                    # every piece once
    lengths = curriculum.length[first]
    assert all(a <= b for a, b in zip(lengths, lengths[1:])) and lengths[0] < lengths[-1]
    # ties keep the plain run's shuffled order, and the later epochs are the plain run's
    shuffled = [plain.order[i] for i in range(n)]
    for length in set(lengths.tolist()):
        assert [p for p in first if curriculum.length[p] == length] == [p for p in shuffled if plain.length[p] == length]
    assert [curriculum.order[i] for i in range(n, 3 * n)] == [plain.order[i] for i in range(n, 3 * n)]


# ----------------------------------------------------------------------------- windows need BOS as input

def test_windows_and_the_mixer_refuse_a_tokenizer_without_bos_input_and_lines_take_it(tiny_data, tmp_path):
    """Windows run across documents: the BOS they hold is the separator the model reads. A tokenizer
    made with bos_input=False (the Model A card's) never feeds BOS as input, so samples='windows'
    and the mixer stop with one line naming the key; samples='lines' trains."""
    path = os.path.join(tiny_data, "meta.json")
    with open(path) as f:
        meta = json.load(f)
    with open(path, "w") as f:
        json.dump({**meta, "bos_input": False}, f)
    tiny = [f"--data_dir={tiny_data}", "--dim=32", "--n_layers=2", "--n_heads=4", "--hidden_dim=64",
            "--max_seq_len=16", "--block_size=16", "--batch_size=4", "--eval_windows=2", "--milestone_unit=none",
            "--max_iters=1"]
    for flags, key in ((["--samples=windows"], "samples='windows'"), (["--mixer=static"], "mixer='static'")):
        with pytest.raises(SystemExit) as e:
            train.main([*tiny, f"--out_dir={tmp_path}/refused", *flags])
        message = str(e.value)
        assert key in message and "bos_input=False" in message and "\n" not in message, message
    assert train.main([*tiny, f"--out_dir={tmp_path}/lines", "--samples=lines"]) == 0
