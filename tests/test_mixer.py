"""
Specification of mixer.py and its command line, mixer_info.py (numpy and synthetic data folders; a
few seconds on 2 CPU cores).

    pytest tests/test_mixer.py

The data folders here are synthetic: token ids are lang_index * 1_000_000 + position (uint32), so
every drawn token says which language and which position of its train.bin it came from.
"""

import json
import math
import os
import sys
import warnings

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import mixer_info  # noqa: E402
from configurator import load_config  # noqa: E402
from data import Shard, read_meta  # noqa: E402
from mixer import (Mixer, MixerConfig, cross_lingual_deficit, draw_arm, exp3_update, hedge_update,  # noqa: E402
                   normalized_excess_loss, project, structural_floor, taam_update,
                   unique_token_budget)

from typology import typological_prior  # noqa: E402

LANGS = ("eng", "nld", "zho")
SIZES = {"eng": 20000, "nld": 12000, "zho": 30000}
BYTES = {"eng": 80000, "nld": 52800, "zho": 90000}
WORDS = {"eng": 16000, "nld": 9000, "zho": 20000}
PREMIUM = {"eng": 1.0, "nld": 1.05, "zho": 0.94}


def make_data(root, sizes=SIZES):
    meta = {"vocab_size": 4_000_000, "dtype": "uint32", "bos_id": 0, "eos_id": 1, "pad_id": 2,
            "languages": {}}
    for i, lang in enumerate(sizes):
        os.makedirs(os.path.join(root, lang), exist_ok=True)
        ids = (i + 1) * 1_000_000 + np.arange(sizes[lang], dtype=np.uint32)
        ids.tofile(os.path.join(root, lang, "train.bin"))
        meta["languages"][lang] = {"byte_premium": PREMIUM[lang],
                                   "train": {"tokens": sizes[lang], "bytes": BYTES[lang], "words": WORDS[lang],
                                             "documents": 10}}
    with open(os.path.join(root, "meta.json"), "w") as f:
        json.dump(meta, f)
    return str(root)


def decode(x):
    """(B, T) ids -> (language per row, position per row of the first token)."""
    x = x.numpy()
    return [LANGS[v // 1_000_000 - 1] for v in x[:, 0]], x[:, 0] % 1_000_000


@pytest.fixture
def data(tmp_path):
    return make_data(tmp_path / "data")


# ---------------------------------------------------------------------------------------------
# the update rules

def test_pi_sums_to_one_and_stays_above_the_floor_after_any_reward_sequence():
    rng = np.random.default_rng(0)
    for case in range(300):
        K = int(rng.integers(2, 6))
        gamma, eta = float(rng.choice([0.0, 0.1, rng.random()])), float(rng.choice([0.1, 1.0, 10 * rng.random() + 1e-3]))
        min_pi = float(rng.choice([0.0, 0.05, rng.random() / K * 0.99]))
        floor = structural_floor(K, gamma, min_pi)
        log_w = np.log(rng.dirichlet(np.ones(K)))
        pi = project(log_w, gamma, min_pi)
        for t in range(30):
            r = rng.choice([rng.normal(0, 1, K), rng.uniform(-1e3, 1e3, K), np.zeros(K), np.full(K, 2.0)])
            rule = case % 3
            if rule == 0:
                log_w = taam_update(log_w, pi, r, eta)
            elif rule == 1:
                log_w = hedge_update(log_w, r, eta)
            else:
                arm = draw_arm(pi, rng.random())
                log_w = exp3_update(log_w, pi, arm, float(np.clip(r[arm], 0, 1)), eta)
            pi = project(log_w, gamma, min_pi)
            assert abs(pi.sum() - 1.0) < 1e-12
            assert pi.min() >= floor - 1e-12


def test_structural_floor_for_the_defaults_is_0_0783():
    assert structural_floor(3, 0.1, 0.05) == pytest.approx(0.05 + 0.85 * 0.1 / 3, abs=1e-15)
    assert round(structural_floor(3, 0.1, 0.05), 4) == 0.0783


MU = np.array([0.2, 0.5, 0.8])  # a 3-armed Bernoulli bandit


@pytest.mark.slow
def test_textbook_exp3_has_mean_regret_within_the_auer_bound():
    """Auer et al. 2002, Cor. 3.2: with gamma = min(1, sqrt(K ln K / ((e-1) g))) and eta = gamma/K,
    G_max - E[G_exp3] <= 2 sqrt(e-1) sqrt(g K ln K), here g = T (rewards in [0, 1])."""
    K, T, seeds = 3, 2000, 16
    gamma = min(1.0, math.sqrt(K * math.log(K) / ((math.e - 1) * T)))
    bound = 2 * math.sqrt(math.e - 1) * math.sqrt(T * K * math.log(K))  # 212.9
    regrets = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        X = (rng.random((T, K)) < MU).astype(float)  # the whole reward table, fixed in advance
        log_w, gain = np.zeros(K), 0.0
        for t in range(T):
            pi = project(log_w, gamma, 0.0)
            arm = draw_arm(pi, rng.random())
            gain += X[t, arm]
            log_w = exp3_update(log_w, pi, arm, X[t, arm], gamma / K)
        regrets.append(X.sum(axis=0).max() - gain)
    uniform_regret = T * (MU.max() - MU.mean())  # 600: what a non-learner loses
    assert np.mean(regrets) <= bound
    assert np.mean(regrets) < 0.4 * uniform_regret


def test_taam_update_ends_at_probability_matching_and_hedge_at_the_best_arm():
    """Every arm's reward observed at every round: `taam` settles at pi = mu / sum(mu) (mean over
    the second half of the rounds), Hedge puts all but the floor on the best arm."""
    rng = np.random.default_rng(1)
    log_w_t = log_w_h = np.zeros(3)
    pi_t = pi_h = project(log_w_t, 0.1, 0.05)
    hist_t, hist_h = [], []
    for t in range(20000):
        r = (rng.random(3) < MU).astype(float)
        log_w_t = taam_update(log_w_t, pi_t, r, 0.1)
        pi_t = project(log_w_t, 0.1, 0.05)
        log_w_h = hedge_update(log_w_h, r, 0.1)
        pi_h = project(log_w_h, 0.1, 0.05)
        if t >= 10000:
            hist_t.append(pi_t)
            hist_h.append(pi_h)
    np.testing.assert_allclose(np.mean(hist_t, axis=0), MU / MU.sum(), atol=0.015)  # (0.133, 0.333, 0.533)
    floor = structural_floor(3, 0.1, 0.05)
    np.testing.assert_allclose(np.mean(hist_h, axis=0), [floor, floor, 1 - 2 * floor], atol=1e-6)


def test_rewards_follow_their_definitions():
    refs, raws = [[], []], [[], []]
    assert normalized_excess_loss(np.array([5.0, 4.0]), refs, raws).tolist() == [0.0, 0.0]  # ref = L at first
    r = normalized_excess_loss(np.array([4.0, 4.0]), refs, raws)  # raw = (5 - 4, 0); sigma = 1 (one raw so far)
    assert r.tolist() == [1.0, 0.0]
    r = normalized_excess_loss(np.array([3.0, 4.0]), refs, raws)  # raw_eng = 4.5 - 3 = 1.5, sigma = std([0, 1]) = 0.7071
    assert r[0] == pytest.approx(np.clip(1.5 / np.std([0.0, 1.0], ddof=1), -2, 2)) and r[0] == 2.0
    pool = []
    r = cross_lingual_deficit(np.array([3.0, 4.0, 3.5]), pool)  # d = (0, 1, .5); sigma = std(d) = 0.5
    assert r.tolist() == pytest.approx([0.0, 2.0, 1.0])
    assert pool == [0.0, 1.0, 0.5]


# ---------------------------------------------------------------------------------------------
# the mixer on data

def losses_plateau(t):
    """eng and nld keep improving; zho plateaus at a high loss."""
    noise = np.random.default_rng(t).normal(0, 0.002, 3)
    return {"eng": 4.0 - 0.005 * t + noise[0], "nld": 4.3 - 0.005 * t + noise[1], "zho": 6.0 + noise[2]}


def test_v1_starves_the_plateaued_language_at_the_floor_while_v2_gives_it_the_most(data):
    finals = {}
    for reward in ("normalized_excess_loss", "cross_lingual_deficit"):
        cfg = MixerConfig(mixer="taam", reward=reward, prior="typological")
        m = Mixer(data, read_meta(data), Shard(2, 8, seed=0), cfg)
        for t in range(300):
            rec = m.update(t, losses_plateau(t))
        finals[reward] = rec["pi"]
    assert finals["normalized_excess_loss"]["zho"] == pytest.approx(structural_floor(3, 0.1, 0.05), abs=1e-4)  # 0.0783
    v2 = finals["cross_lingual_deficit"]
    assert max(v2, key=v2.get) == "zho" and v2["zho"] > 0.5


@pytest.mark.slow
def test_the_typological_prior_gives_the_documented_numbers():
    pi0, iso, D = typological_prior(LANGS, temperature=0.5, floor=0.10)
    np.testing.assert_allclose(pi0, [0.3213, 0.3227, 0.3560], atol=5e-5)   # README, `mixer_info.py prior`
    np.testing.assert_allclose(iso, [0.2619, 0.2651, 0.3348], atol=5e-5)
    # independently, through lang2vec's own API (needs pkg_resources, i.e. setuptools < 81)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import lang2vec.lang2vec as l2v
    except ImportError:
        return
    feats = l2v.get_features(["eng", "nld", "cmn"], "syntax_knn+phonology_knn+inventory_knn")
    X = np.array([feats[c] for c in ("eng", "nld", "cmn")], dtype=float)
    cos = lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    iso_ref = [np.mean([1 - cos(X[i], X[j]) for j in range(3) if j != i]) for i in range(3)]
    np.testing.assert_allclose(iso, iso_ref, atol=1e-12)
    e = np.exp(np.array(iso_ref) / 0.5)
    np.testing.assert_allclose(pi0, 0.1 + 0.7 * e / e.sum(), atol=1e-12)


def test_static_priors_follow_their_formulas(data):
    def pi0(prior):
        return Mixer(data, read_meta(data), Shard(2, 8, seed=0), MixerConfig(mixer="static", prior=prior)).pi
    n = np.array([20000, 12000, 30000.0])
    rate = np.array([1.0 * 20000 / 80000, 1.05 * 12000 / 52800, 0.94 * 30000 / 90000])  # tokens per adjusted byte
    np.testing.assert_allclose(pi0("uniform"), [1 / 3] * 3)
    np.testing.assert_allclose(pi0("bytes"), rate / rate.sum())                  # (0.3117, 0.2976, 0.3907)
    np.testing.assert_allclose(pi0("proportional"), n / n.sum())
    np.testing.assert_allclose(pi0("temperature"), n ** 0.3 / (n ** 0.3).sum())  # (0.3348, 0.2872, 0.3781)
    np.testing.assert_allclose(pi0("typological"), [0.3213, 0.3227, 0.3560], atol=5e-5)
    np.testing.assert_allclose(pi0("eng=0.2,nld=0.3,zho=0.5"), [0.2, 0.3, 0.5])
    # proportional and temperature follow the data each language has, not the budget's balanced share
    small = Mixer(data, read_meta(data), Shard(2, 8, seed=0),
                  MixerConfig(mixer="static", prior="proportional", budget=6000))
    assert max(small.unique.values()) < min(n)
    np.testing.assert_allclose(small.pi, n / n.sum())


def test_budgets_give_every_language_the_same_byte_premium_adjusted_bytes(data):
    stats = {l: {"tokens": SIZES[l], "bytes": BYTES[l], "byte_premium": PREMIUM[l]} for l in LANGS}
    u = unique_token_budget(stats, LANGS, 30000, "tokens")
    assert u == {"eng": 9351, "nld": 8926, "zho": 11721}   # by hand: 30000 * rate_l / sum(rate)
    assert 30000 - 3 <= sum(u.values()) <= 30000
    u = unique_token_budget(stats, LANGS, 6000, "words", eng_bytes_per_word=80000 / 16000)
    assert u == {"eng": 2500, "nld": 2386, "zho": 3133}    # 2000 English-equivalent words = 10000 adjusted bytes each
    assert unique_token_budget(stats, LANGS, 100e6, "tokens") == SIZES  # a budget larger than the data: all of it
    m = Mixer(data, read_meta(data), Shard(2, 8, seed=0), MixerConfig(mixer="static", budget=6000, budget_unit="words"))
    assert m.unique == {"eng": 2500, "nld": 2386, "zho": 3133}


def test_windows_come_from_the_budgeted_prefix_and_y_is_x_shifted(tmp_path):
    data = make_data(tmp_path / "d")
    m = Mixer(data, read_meta(data), Shard(8, 16, seed=3),
              MixerConfig(mixer="static", budget=30000, mix_level="sequence"))
    seen = set()
    for step in range(300):
        x, y, lang = m.get_batch(step, 0)[:3]
        assert x.shape == y.shape == (8, 16) and x.dtype == y.dtype == torch.int64 and lang == "mixed"
        assert torch.equal(x[:, 1:], y[:, :-1]) and torch.equal(y - x, torch.ones_like(x))  # contiguous windows
        langs, pos = decode(x)
        for l, p in zip(langs, pos):
            assert p + 16 + 1 <= m.unique[l]  # the last target is inside the prefix
            seen.add(l)
    assert seen == set(LANGS)


def test_batch_languages_follow_pi(data):
    m = Mixer(data, read_meta(data), Shard(2, 8, seed=0),
              MixerConfig(mixer="static", prior="eng=0.2,nld=0.3,zho=0.5"))
    counts = {l: 0 for l in LANGS}
    for step in range(4000):
        x, y, lang = m.get_batch(step, 0)[:3]
        assert decode(x)[0] == [lang, lang]  # one language per micro-batch
        counts[lang] += 1
    np.testing.assert_allclose([counts[l] / 4000 for l in LANGS], [0.2, 0.3, 0.5], atol=0.03)


def test_draws_are_a_pure_function_of_seed_step_rank_micro_step(data):
    a = Mixer(data, read_meta(data), Shard(4, 8, seed=5), MixerConfig(mixer="static"))
    b = Mixer(data, read_meta(data), Shard(4, 8, seed=5), MixerConfig(mixer="static"))
    c = Mixer(data, read_meta(data), Shard(4, 8, seed=5, rank=1, world_size=2), MixerConfig(mixer="static"))
    for step in range(5):
        for micro in range(2):
            xa, xb, xc = a.get_batch(step, micro)[0], b.get_batch(step, micro)[0], c.get_batch(step, micro)[0]
            assert torch.equal(xa, xb) and not torch.equal(xa, xc)
    assert sum(a.exposures.values()) == 10 * 4 * 8
    # each (step, micro_step) is drawn once, in order: drawing one again would count its tokens twice
    for step, micro in [(4, 1), (3, 0)]:
        with pytest.raises(ValueError, match="once, in order"):
            a.get_batch(step, micro)
    assert sum(a.exposures.values()) == 10 * 4 * 8


def test_two_ranks_draw_what_one_process_with_twice_the_accumulation_draws(data):
    one = Mixer(data, read_meta(data), Shard(4, 8, seed=2), MixerConfig(mixer="static", mix_level="sequence"))
    two = [Mixer(data, read_meta(data), Shard(4, 8, seed=2, rank=r, world_size=2),
                 MixerConfig(mixer="static", mix_level="sequence"))
           for r in range(2)]
    for step in range(20):
        for r in range(2):
            assert torch.equal(one.get_batch(step, r)[0], two[r].get_batch(step, 0)[0])
        assert one.exposures == two[0].exposures == two[1].exposures


@pytest.mark.parametrize("mixer,reward,level", [("taam", "normalized_excess_loss", "batch"),
                                                ("exp3", "cross_lingual_deficit", "sequence"),
                                                ("hedge", "cross_lingual_deficit", "batch"),
                                                ("static", "cross_lingual_deficit", "batch")])
def test_a_resumed_mixer_gives_the_same_future_pi_and_draws(data, mixer, reward, level):
    cfg = MixerConfig(mixer=mixer, reward=reward, mix_level=level, prior="typological", max_epochs=0.5)

    def run(m, steps):
        out = []
        for step in steps:
            for micro in range(2):
                x, y, lang = m.get_batch(step, micro)[:3]
                out.append((x.tolist(), lang))
            if step % 4 == 3:
                out.append(m.update(step, {l: 5.0 - 0.01 * step * (i + 1) + 0.3 * math.sin(step * (i + 2))
                                           for i, l in enumerate(LANGS)}))
        return out

    straight = Mixer(data, read_meta(data), Shard(4, 16, seed=11), cfg)
    first = run(straight, range(0, 40))
    state = json.loads(json.dumps(straight.state_dict()))  # a checkpoint, through JSON even
    rest = run(straight, range(40, 120))
    resumed = Mixer(data, read_meta(data), Shard(4, 16, seed=11), cfg)
    resumed.load_state_dict(state)
    assert run(resumed, range(40, 120)) == rest
    assert first != rest and any(isinstance(r, dict) for r in rest)


def test_the_epoch_cap_is_never_exceeded_and_identical_on_every_rank(data):
    """Two ranks in lock step; English is favoured until its 2 epochs are used up."""
    cfg = MixerConfig(mixer="static", prior="eng=0.8,nld=0.1,zho=0.1", max_epochs=2)
    ranks = [Mixer(data, read_meta(data), Shard(4, 16, seed=7, rank=r, world_size=2), cfg) for r in range(2)]
    drawn = {l: 0 for l in LANGS}
    with pytest.raises(SystemExit, match="every language has used max_epochs"):
        for step in range(10_000):
            for micro in range(2):
                for m in ranks:
                    x, y, lang = m.get_batch(step, micro)[:3]
                    assert decode(x)[0] == [lang] * 4
                    drawn[lang] += x.numel()
                    assert lang not in m.capped  # a capped language is drawn no more
                assert ranks[0].exposures == ranks[1].exposures == drawn
                for l in LANGS:
                    assert drawn[l] <= 2 * SIZES[l]
    assert ranks[0].update(step, {"eng": 1.0, "nld": 1.0, "zho": 1.0})["pi_sample"] == {l: 0.0 for l in LANGS}
    assert set(ranks[0].capped) == set(LANGS)  # rank 0 stopped first; rank 1 agrees on what it saw
    assert all(ranks[1].capped[l] == ranks[0].capped[l] for l in ranks[1].capped)
    assert min(ranks[0].capped.values()) > 0
    assert all(2 * SIZES[l] - drawn[l] < 2 * 4 * 16 for l in LANGS)  # each used up to within one micro-step


def test_the_cap_moves_the_mass_to_the_others_and_the_record_says_so(data):
    m = Mixer(data, read_meta(data), Shard(4, 16, seed=1),
              MixerConfig(mixer="taam", prior="uniform", max_epochs=0.5))
    step = 0
    while "nld" not in m.capped:
        m.get_batch(step, 0)
        step += 1
    rec = m.update(step, {"eng": 3.0, "nld": 4.0, "zho": 5.0})
    assert rec["capped"] == {"nld": m.capped["nld"]} and rec["pi_sample"]["nld"] == 0.0
    assert rec["pi_sample"]["eng"] / rec["pi_sample"]["zho"] == pytest.approx(rec["pi"]["eng"] / rec["pi"]["zho"])
    assert rec["epochs"]["nld"] <= 0.5 and set(rec) >= {"pi", "rewards", "val_loss", "exposures", "epochs"}
    for s in range(step, step + 50):
        assert m.get_batch(s, 0)[2] != "nld"


# ---------------------------------------------------------------------------------------------
# what the model card reports

def test_summary_reports_the_final_pi_and_each_languages_exposures_and_epochs(data):
    """Exposures counted from the drawn tokens themselves (each says its language), epochs against
    the budget's unique tokens, pi as the last update left it."""
    m = Mixer(data, read_meta(data), Shard(4, 16, seed=4),
              MixerConfig(mixer="taam", prior="typological", budget=30000, max_epochs=5))
    drawn = {l: 0 for l in LANGS}
    for step in range(60):
        for micro in range(2):
            x, y, lang = m.get_batch(step, micro)[:3]
            for l in decode(x)[0]:
                drawn[l] += x.shape[1]
        if step % 10 == 9:
            record = m.update(step, losses_plateau(step))
    s = json.loads(json.dumps(m.summary()))  # as the checkpoint's info stores it
    assert s == {"mixer": "taam", "reward": "cross_lingual_deficit", "prior": "typological",
                 "pi": record["pi"], "unique": {"eng": 9351, "nld": 8926, "zho": 11721},
                 "exposures": drawn, "epochs": {l: drawn[l] / s["unique"][l] for l in LANGS}}
    assert sum(drawn.values()) == 60 * 2 * 4 * 16 and abs(sum(s["pi"].values()) - 1) < 1e-12
    static = Mixer(data, read_meta(data), Shard(2, 8, seed=0),
                   MixerConfig(mixer="static", prior="eng=0.2,nld=0.3,zho=0.5")).summary()
    assert static["reward"] is None and static["pi"] == {"eng": 0.2, "nld": 0.3, "zho": 0.5}


# ---------------------------------------------------------------------------------------------
# bad input

@pytest.mark.parametrize("change,message", [
    (dict(reward="v3"), "reward='v3': expected one of normalized_excess_loss, cross_lingual_deficit"),
    (dict(mixer="exp4"), "mixer='exp4'"),
    (dict(mix_level="row"), "mix_level='row'"),
    (dict(budget_unit="bytes"), "budget_unit='bytes'"),
    (dict(eta=0.0), "eta=0.0 must be > 0"),
    (dict(gamma=1.5), "gamma=1.5 must be in"),
    (dict(min_pi=-0.1), "min_pi=-0.1"),
    (dict(max_epochs=0.0), "max_epochs=0.0 must be > 0"),
    (dict(budget=-1.0), "budget=-1.0 must be > 0"),
    (dict(prior_temperature=0.0), "prior_temperature"),
    (dict(languages="eng,nld,eng"), "names a language twice"),
    (dict(prior="eng=0.5,nld=0.1,zho=0.1"), "sum to 1"),
    (dict(prior="eng=0.5,nld=half"), "'nld=half' is not lang=probability"),
    (dict(prior="bites"), "'bites' is not lang=probability"),
    (dict(mixer="taam", prior="eng=1,nld=0,zho=0"), "needs every language's prior > 0"),
])
def test_a_config_value_that_cannot_work_stops_at_the_config(change, message):
    """Checked where the field is declared, before any data is read; through load_config, one line."""
    with pytest.raises(ValueError, match=message):
        MixerConfig(**change)
    args = [f"--{key}={value}" for key, value in change.items()]
    with pytest.raises(SystemExit, match="^config: mixer: ") as e:
        load_config(args, MixerConfig)
    assert "\n" not in str(e.value)


def test_static_and_none_accept_an_explicit_prior_with_zeros():
    assert MixerConfig(mixer="static", prior="eng=1,nld=0,zho=0").prior == "eng=1,nld=0,zho=0"
    assert MixerConfig(prior="eng=1,nld=0,zho=0").mixer == "none"


@pytest.mark.parametrize("change,message", [
    (dict(mixer="none"), "mixer='none'"),
    (dict(mixer="static", languages="eng,fra"), "no language fra"),
    (dict(mixer="static", prior="eng=0.5,nld=0.5"), "give exactly the languages eng,nld,zho"),
    (dict(mixer="static", budget=20), "fewer than one window"),
    (dict(mixer="taam", min_pi=0.4), "min_pi"),
    (dict(mixer="taam", prior="typological", prior_floor=0.4), "prior_floor < 1/K"),
])
def test_a_config_that_does_not_fit_the_data_fails_with_one_clear_line(data, change, message):
    with pytest.raises(SystemExit, match=message) as e:
        Mixer(data, read_meta(data), Shard(2, 8, seed=0), MixerConfig(**change))
    assert "\n" not in str(e.value)


def test_bad_data_and_losses_fail_with_one_clear_line(data, tmp_path):
    with pytest.raises(SystemExit, match="meta.json"):
        read_meta(str(tmp_path / "nowhere"))  # what a Mixer is opened with: no meta.json, one line
    m = Mixer(data, read_meta(data), Shard(2, 8, seed=0), MixerConfig(mixer="taam"))
    with pytest.raises(SystemExit, match="no held-out loss for zho"):
        m.update(0, {"eng": 1.0, "nld": 1.0})
    with pytest.raises(SystemExit, match="non-finite"):
        m.update(0, {"eng": 1.0, "nld": float("nan"), "zho": 1.0})
    other = Mixer(data, read_meta(data), Shard(2, 8, seed=0), MixerConfig(mixer="taam", budget=30000))
    with pytest.raises(SystemExit, match="differ from this run"):
        other.load_state_dict(m.state_dict())
    with pytest.raises(SystemExit, match="mixer state is version 1, this mixer.py reads version 2"):
        m.load_state_dict({**m.state_dict(), "version": 1})


# ---------------------------------------------------------------------------------------------
# the command line

def test_info_takes_mixer_config_keys_and_prints_the_budget_split(data, capsys):
    mixer_info.main(["info", data, "--budget=30000", "--prior=bytes", "--block_size=16"])
    out = capsys.readouterr().out
    assert out.startswith("mixer: static, prior bytes, mix_level batch; budget 30,000 tokens, max_epochs 10")
    assert "  eng:        9,351 unique tokens of 20,000" in out and "pi0 0.3117" in out
    with pytest.raises(SystemExit, match="unknown config key 'budjet'; did you mean 'budget'"):
        mixer_info.main(["info", data, "--budjet=30000"])
    with pytest.raises(SystemExit, match="^config: mixer: gamma=2.0 must be in"):
        mixer_info.main(["info", data, "--gamma=2"])
