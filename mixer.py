"""
Which language does the next batch come from? Online multilingual data mixing (TAAM and friends).

    python train.py config/taam.py                       # the mixer runs inside train.py
    python mixer.py prior eng nld zho                    # the typological prior's numbers
    python mixer.py info data/eng_nld_zho --prior=bytes  # budgets, epoch caps and pi0 for a data folder
    python mixer.py plot runs/taam                       # pi and per-language loss -> runs/taam/mixer.png

The mixer keeps a sampling probability pi_l for each language l, draws every micro-batch from the
memmapped `<data_dir>/<lang>/train.bin` files according to pi, and, after each evaluation, moves pi
using the per-language held-out losses. It reimplements Typology-Aware Adaptive Mixing (TAAM):

  1. a prior pi0 from URIEL typology (lang2vec): languages that are typologically isolated from the
     others start with more mass (`typological_prior`);
  2. an EXP3-style online update of pi from held-out-loss rewards (`taam_update`, with the rewards
     `normalized_excess_loss` = v1 and `cross_lingual_deficit` = v2);
  3. byte-premium-adjusted budgets: a total budget fixes each language's unique tokens (a prefix of its
     train.bin), and no language is seen more than `max_epochs` times its unique tokens.

Three update rules (config key `mixer`), and when each is the right one:

  exp3   Textbook EXP3 (Auer et al. 2002): one arm is played and only its reward is seen, so that
         reward is importance-weighted by 1/pi. Right when the feedback really is bandit feedback
         (e.g. the reward is the loss change on the batch just trained on) and the rewards may be
         adversarial. Expected regret <= 2 sqrt(e-1) sqrt(g K ln K). With held-out losses for every
         language at every evaluation, it throws away K-1 of the K observations.
  hedge  Full-information Hedge (Freund & Schapire 1997): every language's reward is observed at
         every evaluation (our situation), so no 1/pi: log_w += eta r. Regret O(sqrt(T ln K)); it
         concentrates on the language with the largest cumulative reward (winner takes all, down to
         the floor for the others).
  taam   TAAM's published rule: full information *and* 1/pi. Not a regret minimiser but probability
         matching: E[increment_l] = eta mu_l / pi_l is equal across languages only when
         pi_l = mu_l / sum_k mu_k, so pi settles proportional to the mean reward -- a sensible
         "spend in proportion to need" heuristic with the v2 reward.
         KNOWN FLAW: a language whose mean reward is <= 0 loses log-weight at every evaluation and sits
         at the structural floor min_pi + (1 - K min_pi) gamma / K (0.0783 for K=3 and the defaults).
         With the v1 reward (loss *decrease*), a language that plateaus at a high loss earns ~0 and is
         starved although it is the one furthest behind. tests/test_mixer.py shows both behaviours.
  static pi never moves (baselines: uniform, bytes, proportional, temperature, typological, explicit).

`mix_level="batch"` draws one language per micro-batch (as TAAM); "sequence" draws one per row.
Draws are a pure function of (seed, step, rank, micro_step), pi and the exposure counters, all of
which are in `state_dict()`, so a resumed run draws exactly what an uninterrupted run would; and
two ranks draw what one process with twice the gradient accumulation draws.

References: Auer, Cesa-Bianchi, Freund & Schapire 2002, "The nonstochastic multiarmed bandit problem"
(EXP3); Freund & Schapire 1997, "A decision-theoretic generalization of on-line learning" (Hedge);
Littell et al. 2017 (URIEL and lang2vec); Conneau et al. 2020 (temperature sampling, alpha = 0.3);
Wang et al. 2020 "Balancing training for multilingual NMT" and Albalak et al. 2023 "Efficient online
data mixing" (bandit data mixing); Arnett et al. 2024 (the byte premium).
"""

import argparse
import json
import os
from dataclasses import asdict, dataclass, fields

import numpy as np

from data import open_bin, read_meta


@dataclass
class MixerConfig:
    # what moves pi: "none" (train.py's plain reader, no mixer), "static", "taam", "exp3", "hedge"
    mixer: str = "none"
    # pi0 (the static pi, or the adaptive mixers' start): "uniform", "bytes", "proportional",
    # "temperature", "typological", or explicit "eng=0.2,nld=0.3,zho=0.5"
    prior: str = "uniform"
    reward: str = "cross_lingual_deficit"  # "normalized_excess_loss" (v1) or "cross_lingual_deficit" (v2)
    eta: float = 0.1                       # learning rate of the weight update
    gamma: float = 0.1                     # uniform exploration mixed into pi
    min_pi: float = 0.05                   # floor of pi per language (0 disables)
    temperature_alpha: float = 0.3         # prior="temperature": pi_l ~ n_l^alpha
    prior_temperature: float = 0.5         # prior="typological": softmax temperature over isolation
    prior_floor: float = 0.10              # prior="typological": floor of pi0
    budget: float = 100e6                  # total unique data, split evenly in byte-premium-adjusted bytes
    budget_unit: str = "tokens"            # "tokens" or "words" (English-equivalent words)
    max_epochs: float = 10.0               # exposures of a language never exceed max_epochs x its unique tokens
    languages: str = ""                    # "eng,nld,zho"; empty = every language in meta.json
    mix_level: str = "batch"               # "batch": one language per micro-batch; "sequence": per row


MIXERS = ("none", "static", "taam", "exp3", "hedge")
REWARDS = ("normalized_excess_loss", "cross_lingual_deficit")
REF_WINDOW = 5      # v1: the reference loss is the mean of the last <= 5 losses
STD_WINDOW = 20     # v1: sigma over the last <= 20 raw rewards; v2: over the last 20*K deficits
REWARD_CLIP = 2.0   # rewards are clipped to [-2, 2] (v1) or [0, 2] (v2)
RNG_TAG_DRAW, RNG_TAG_EXP3 = 0x6D6978, 0x657870  # separate random streams for batches and EXP3's arm


# ----------------------------------------------------------------------------------------------
# The update rules. Weights live in log space; pi is derived from them by `project`.

def project(log_w: np.ndarray, gamma: float, min_pi: float) -> np.ndarray:
    """pi = min_pi + (1 - K min_pi) * m,   m = (1 - gamma) softmax(log_w) + gamma / K.

    EXP3's exploration mix (Auer et al. 2002, eq. for p_i(t)) followed by TAAM's floor. sum(pi) = 1
    and pi_l >= structural_floor(K, gamma, min_pi) for any log_w (tests/test_mixer.py, property test).
    """
    K = len(log_w)
    z = np.exp(log_w - np.max(log_w))
    m = (1.0 - gamma) * z / z.sum() + gamma / K
    return min_pi + (1.0 - K * min_pi) * m


def structural_floor(K: int, gamma: float, min_pi: float) -> float:
    """The smallest pi any language can get: min_pi + (1 - K min_pi) gamma / K (0.0783 for K=3,
    gamma=0.1, min_pi=0.05). Under `taam`, a language whose mean reward is <= 0 ends exactly here."""
    return min_pi + (1.0 - K * min_pi) * gamma / K


def taam_update(log_w: np.ndarray, pi: np.ndarray, rewards: np.ndarray, eta: float) -> np.ndarray:
    """TAAM's published update, every language at every evaluation:

        log_w_l += eta * r_l / max(pi_l, 1e-12)        for all l;   log_w -= max(log_w)

    The 1/pi importance weight belongs to bandit feedback (see `exp3_update`); applied to
    full-information rewards it makes pi settle at pi_l ~ mean(r_l) (probability matching), and a
    language with mean reward <= 0 falls to the structural floor (module docstring).
    """
    log_w = log_w + eta * rewards / np.maximum(pi, 1e-12)
    return log_w - log_w.max()


def exp3_update(log_w: np.ndarray, pi: np.ndarray, arm: int, reward: float, eta: float) -> np.ndarray:
    """Textbook EXP3 (Auer et al. 2002, Fig. 1): only the played arm's reward x in [0, 1] is seen;
    the unbiased estimate x_hat_j = x / pi_j if j = arm else 0 enters the weights:

        log_w_arm += eta * x / pi_arm;   log_w -= max(log_w)

    Auer et al. use eta = gamma / K; with gamma = min(1, sqrt(K ln K / ((e-1) g))) for a bound g on
    the best arm's total reward, the expected regret is <= 2 sqrt(e-1) sqrt(g K ln K) (Cor. 3.2).
    """
    log_w = log_w.copy()
    log_w[arm] += eta * reward / max(pi[arm], 1e-12)
    return log_w - log_w.max()


def hedge_update(log_w: np.ndarray, rewards: np.ndarray, eta: float) -> np.ndarray:
    """Hedge (Freund & Schapire 1997), full information: w_l <- w_l * exp(eta * r_l) for every l,
    i.e. log_w += eta * r;  log_w -= max(log_w). No importance weights: every reward is observed."""
    log_w = log_w + eta * rewards
    return log_w - log_w.max()


def draw_arm(pi: np.ndarray, u: float) -> int:
    """Index l with cumsum(pi)[l-1] <= u < cumsum(pi)[l]: inverse-CDF sampling; a language with
    pi_l = 0 is never drawn."""
    c = np.cumsum(pi)
    i = int(np.searchsorted(c, u * c[-1], side="right"))
    return min(i, int(np.flatnonzero(pi > 0)[-1]))


# ----------------------------------------------------------------------------------------------
# Rewards from held-out losses. Their state is plain lists so that it goes into checkpoints as is.

def normalized_excess_loss(losses: np.ndarray, refs: list, raws: list) -> np.ndarray:
    """TAAM's v1 reward: has the language's loss gone down lately?

        ref_l   = mean of the last <= 5 losses of l   (L_l itself at the first evaluation)
        raw_l   = ref_l - L_l
        sigma_l = sample std of the last <= 20 raws of l, taken *before* appending raw_l
                  (1.0 when there are fewer than 2 raws or sigma < 1e-8)
        r_l     = clip(raw_l / sigma_l, -2, 2)

    refs[l] and raws[l] (lists, one per language) are updated in place.
    """
    r = np.zeros(len(losses))
    for l, L in enumerate(losses):
        ref = float(np.mean(refs[l])) if refs[l] else float(L)
        raw = ref - float(L)
        refs[l].append(float(L))
        del refs[l][:-REF_WINDOW]
        sigma = float(np.std(raws[l], ddof=1)) if len(raws[l]) >= 2 else 1.0
        if sigma < 1e-8:
            sigma = 1.0
        raws[l].append(raw)
        del raws[l][:-STD_WINDOW]
        r[l] = np.clip(raw / sigma, -REWARD_CLIP, REWARD_CLIP)
    return r


def cross_lingual_deficit(losses: np.ndarray, pool: list) -> np.ndarray:
    """TAAM's v2 reward: how far is the language behind the best one?

        d_l   = max(L_l - min_k L_k, 0)
        pool  = the last 20 K deficits of all languages, *after* appending this evaluation's d
        sigma = sample std of pool (1.0 when it has fewer than 2 values or sigma < 1e-8)
        r_l   = clip(d_l / sigma, 0, 2)

    `pool` is updated in place.
    """
    d = np.maximum(losses - losses.min(), 0.0)
    pool.extend(float(x) for x in d)
    del pool[:-STD_WINDOW * len(losses)]
    sigma = float(np.std(pool, ddof=1)) if len(pool) >= 2 else 1.0
    if sigma < 1e-8:
        sigma = 1.0
    return np.clip(d / sigma, 0.0, REWARD_CLIP)


# ----------------------------------------------------------------------------------------------
# Priors

URIEL_FEATURE_SETS = (("syntax_knn", "S_"), ("phonology_knn", "P_"), ("inventory_knn", "INV_"))
URIEL_CODES = {"zho": "cmn"}  # URIEL stores Mandarin (cmn), not the macro-language zho


def uriel_features(languages) -> np.ndarray:
    """(K, F) URIEL vectors: syntax_knn + phonology_knn + inventory_knn, concatenated as
    lang2vec.get_features(langs, "syntax_knn+phonology_knn+inventory_knn") does. Features unknown
    (-1) for any of the languages are dropped (the k-NN sets have none for eng/nld/cmn).

    Read straight from the feature file lang2vec ships (lang2vec/data/feature_predictions.npz):
    no network, and no `import lang2vec.lang2vec`, which needs pkg_resources (setuptools < 81).
    """
    import importlib.util
    spec = importlib.util.find_spec("lang2vec")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("lang2vec is not installed (pip install lang2vec): the typological prior reads its URIEL data")
    path = os.path.join(list(spec.submodule_search_locations)[0], "data", "feature_predictions.npz")
    if not os.path.isfile(path):
        raise SystemExit(f"{path}: lang2vec's URIEL feature file is missing")
    db = np.load(path)
    langs, feats = list(db["langs"]), db["feats"]
    src = int(np.flatnonzero(db["sources"] == "predicted")[0])
    rows = []
    for lang in languages:
        code = URIEL_CODES.get(lang, lang)
        if code not in langs:
            raise SystemExit(f"{path}: language {lang!r} (URIEL code {code!r}) is not in URIEL")
        rows.append(langs.index(code))
    cols = np.concatenate([np.flatnonzero(np.char.startswith(feats, p)) for _, p in URIEL_FEATURE_SETS])
    x = db["data"][rows][:, cols, src].astype(np.float64)  # (K, F)
    return x[:, np.all(x != -1.0, axis=0)]


def typological_prior(languages, temperature: float = 0.5, floor: float = 0.10):
    """TAAM's prior: isolated languages start with more mass.

        D_ij   = 1 - cos(u_i, u_j)                   u = URIEL vector (`uriel_features`)
        iso_i  = mean_{j != i} D_ij                  (isolation)
        pi0    = softmax(iso / T)                    T = temperature (0.5)
        pi0    = floor + (1 - K floor) * pi0         (floor 0.10; sum stays 1)

    Returns (pi0, iso, D). For eng, nld, zho: pi0 = (0.3213, 0.3227, 0.3560); `python mixer.py prior`.
    """
    K = len(languages)
    if K < 2:
        raise SystemExit("the typological prior needs at least two languages")
    x = uriel_features(languages)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    D = np.clip(1.0 - u @ u.T, 0.0, 2.0)
    np.fill_diagonal(D, 0.0)
    iso = D.sum(axis=1) / (K - 1)
    z = np.exp((iso - iso.max()) / temperature)
    pi0 = floor + (1.0 - K * floor) * z / z.sum()
    return pi0, iso, D


def static_prior(cfg: MixerConfig, languages, stats: dict) -> np.ndarray:
    """pi0 from cfg.prior. stats[l] holds "unique" (tokens the budget gives l), "tokens", "bytes",
    "byte_premium" of l's training data.

        uniform       pi_l = 1 / K
        bytes         pi_l ~ byte_premium_l * tokens_l / bytes_l, the tokens of l per English-equivalent byte:
                      every language gets the same byte-premium-adjusted bytes
        proportional  pi_l ~ n_l                        (n_l = tokens of l's whole train.bin)
        temperature   pi_l ~ n_l ^ alpha                (alpha = 0.3, Conneau et al. 2020)

    n_l is the data a language *has*, not what the budget keeps of it: the budget balances the
    languages' unique content, so on the budgeted counts `proportional` would equal `bytes` and
    `temperature` would be nearly uniform. On the available data they are what XLM-R's sampling
    is: more exposures for the languages with more text (up to the max_epochs cap).
        typological   `typological_prior`
        "eng=0.2,..." as written (must sum to 1)
    """
    K = len(languages)
    p = cfg.prior.strip()
    n = np.array([stats[l]["tokens"] for l in languages], dtype=np.float64)
    if p == "uniform":
        return np.full(K, 1.0 / K)
    if p == "bytes":
        w = np.array([stats[l]["byte_premium"] * stats[l]["tokens"] / stats[l]["bytes"] for l in languages])
    elif p == "proportional":
        w = n
    elif p == "temperature":
        w = n ** cfg.temperature_alpha
    elif p == "typological":
        return typological_prior(languages, cfg.prior_temperature, cfg.prior_floor)[0]
    elif "=" in p:
        given = {}
        for part in p.replace(" ", "").split(","):
            lang, _, val = part.partition("=")
            try:
                given[lang] = float(val)
            except ValueError:
                raise SystemExit(f"prior={cfg.prior!r}: {part!r} is not lang=probability")
        if set(given) != set(languages):
            raise SystemExit(f"prior={cfg.prior!r}: give exactly the languages {','.join(languages)}")
        w = np.array([given[l] for l in languages])
        if np.any(w < 0) or abs(w.sum() - 1.0) > 1e-3:
            raise SystemExit(f"prior={cfg.prior!r}: probabilities must be >= 0 and sum to 1 (sum {w.sum():.4f})")
    else:
        raise SystemExit(f"prior={cfg.prior!r}: expected uniform, bytes, proportional, temperature, "
                         f"typological or lang=p,lang=p,...")
    return w / w.sum()


# ----------------------------------------------------------------------------------------------
# Budgets

def unique_token_budget(stats: dict, languages, budget: float, unit: str, eng_bytes_per_word=None) -> dict:
    """Unique tokens per language: every language gets the same byte-premium-adjusted bytes A
    (adjusted bytes = bytes / byte_premium: bytes of English that carry the same content), so

        tokens_l = A * byte_premium_l * tokens_l/bytes_l        (tokens of l in A adjusted bytes)
        unit "tokens":  sum_l tokens_l = budget  ->  A = budget / sum_l (byte_premium_l tokens_l / bytes_l)
        unit "words":   each language gets budget / K English-equivalent words,
                        A = budget / K * (English bytes per word)

    and no language gets more than it has (min with its train.bin); a language with less data
    keeps its share unused (the languages stay balanced in content).
    """
    rate = {l: stats[l]["byte_premium"] * stats[l]["tokens"] / stats[l]["bytes"] for l in languages}
    if unit == "tokens":
        A = budget / sum(rate.values())
    elif unit == "words":
        A = budget / len(languages) * eng_bytes_per_word
    else:
        raise SystemExit(f"budget_unit={unit!r}: expected 'tokens' or 'words'")
    return {l: min(stats[l]["tokens"], int(A * rate[l])) for l in languages}


# ----------------------------------------------------------------------------------------------
# The batch source

class Mixer:
    """The batch source train.py draws from; train.TokenWindows is the other one, with the same methods.

        mixer = Mixer(cfg, data_dir, batch_size, block_size, seed, rank, world_size)
        x, y, lang = mixer.get_batch(step, micro_step)   # x, y: (B, T) int64; lang: str or "mixed"
        record = mixer.update(step, val_losses)          # after each evaluation; log it
        ckpt["mixer"] = mixer.state_dict(); mixer.load_state_dict(ckpt["mixer"])

    Exposure accounting: every rank counts the tokens drawn by *all* ranks (it can recompute their
    language draws from the seed), so counters, caps and pi are identical on every rank. Call
    get_batch once per (step, micro_step), in increasing order (a repeated call returns the same
    batch and does not count twice), and save the state between steps.
    """

    def __init__(self, cfg: MixerConfig, data_dir: str, batch_size: int, block_size: int, seed: int,
                 rank: int = 0, world_size: int = 1):
        if cfg.mixer not in MIXERS or cfg.mixer == "none":
            raise SystemExit(f"mixer={cfg.mixer!r}: expected one of static, taam, exp3, hedge")
        if cfg.reward not in REWARDS:
            raise SystemExit(f"reward={cfg.reward!r}: expected one of {', '.join(REWARDS)}")
        if cfg.mix_level not in ("batch", "sequence"):
            raise SystemExit(f"mix_level={cfg.mix_level!r}: expected 'batch' or 'sequence'")
        self.cfg, self.B, self.T = cfg, int(batch_size), int(block_size)
        self.seed, self.rank, self.world_size = int(seed) % 2**63, int(rank), int(world_size)

        meta_path = os.path.join(data_dir, "meta.json")
        meta = read_meta(data_dir)
        langs_meta = meta.get("languages") or {}
        if cfg.languages:
            langs = cfg.languages if isinstance(cfg.languages, (list, tuple)) else cfg.languages.replace(",", " ").split()
        else:
            langs = list(langs_meta)
        unknown = [l for l in langs if l not in langs_meta]
        if not langs or unknown:
            raise SystemExit(f"{meta_path}: no language {', '.join(unknown) or '(none given)'}; "
                             f"it has {', '.join(langs_meta) or 'none'}")
        self.languages = tuple(langs)
        K = self.K = len(langs)

        # memmap each language's train.bin and read its sizes
        self.data, stats = {}, {}
        for l in langs:
            self.data[l] = open_bin(data_dir, meta, l, "train")
            info = langs_meta[l]
            try:
                stats[l] = {"tokens": len(self.data[l]), "bytes": float(info["train"]["bytes"]),
                            "words": float(info["train"].get("words", 0)), "byte_premium": float(info["byte_premium"])}
            except (KeyError, TypeError):
                raise SystemExit(f"{meta_path}: languages.{l} needs byte_premium and train.bytes")
            if stats[l]["bytes"] <= 0 or stats[l]["byte_premium"] <= 0:
                raise SystemExit(f"{meta_path}: languages.{l}: train.bytes and byte_premium must be > 0")
        eng_bpw = None
        if cfg.budget_unit == "words":
            e = langs_meta.get("eng", {}).get("train", {})
            if not e.get("words"):
                raise SystemExit(f"{meta_path}: budget_unit='words' needs English word and byte counts "
                                 f"(an English-equivalent word is defined by them); use budget_unit='tokens'")
            eng_bpw = e["bytes"] / e["words"]
        self.unique = unique_token_budget(stats, langs, cfg.budget, cfg.budget_unit, eng_bpw)
        for l in langs:
            stats[l]["unique"] = self.unique[l]
            if self.unique[l] < self.T + 1:
                raise SystemExit(f"{os.path.join(data_dir, l, 'train.bin')}: {self.unique[l]} tokens under the "
                                 f"budget, fewer than one window of block_size+1 = {self.T + 1}")
        self.allowance = {l: int(cfg.max_epochs * self.unique[l]) for l in langs}
        self.stats = stats

        # pi0 and the update rule's state
        if not (cfg.eta > 0 and 0 <= cfg.gamma <= 1 and 0 <= cfg.min_pi and K * cfg.min_pi < 1):
            raise SystemExit(f"mixer: need eta > 0, 0 <= gamma <= 1, 0 <= min_pi < 1/K "
                             f"(eta={cfg.eta}, gamma={cfg.gamma}, min_pi={cfg.min_pi}, K={K})")
        self.pi0 = static_prior(cfg, langs, stats)
        if cfg.mixer == "static":
            self.log_w, self.pi = np.log(np.maximum(self.pi0, 1e-300)), self.pi0.copy()
        else:
            if np.any(self.pi0 <= 0):
                raise SystemExit(f"prior={cfg.prior!r}: an adaptive mixer needs every language's prior > 0")
            # TAAM's start: softmax(log_w) = pi0, then the same projection as every update
            self.log_w = np.log(self.pi0)
            self.pi = project(self.log_w, cfg.gamma, cfg.min_pi)
        self.refs = [[] for _ in langs]   # v1: recent losses per language
        self.raws = [[] for _ in langs]   # v1: recent raw rewards per language
        self.pool = []                    # v2: recent deficits of all languages
        self.n_updates = 0
        self.exposures = {l: 0 for l in langs}  # tokens drawn from l so far, all ranks together
        self.capped = {}                          # language -> step at which it hit max_epochs
        self._last_key = None                     # (step, micro_step) of the last get_batch
        self._exposures_before_last = dict(self.exposures)

    # -- sampling ------------------------------------------------------------------------------

    def over_cap(self) -> list:
        """Languages that one more micro-step of all ranks (world_size * B * T tokens) could take
        past max_epochs x their unique tokens: they are drawn no more."""
        return [l for l in self.languages
                if self.exposures[l] + self.world_size * self.B * self.T > self.allowance[l]]

    def sampling_pi(self) -> np.ndarray:
        """The pi actually used for drawing: pi with every capped language (`over_cap`) set to 0 and
        the mass renormalised over the others."""
        p = self._uncapped_pi()
        if p.sum() <= 0:
            raise SystemExit(f"mixer: every language has used max_epochs={self.cfg.max_epochs:g} x its unique tokens "
                             f"({self.exposures}); train for fewer steps, or raise max_epochs or budget")
        return p / p.sum()

    def _uncapped_pi(self) -> np.ndarray:
        over = self.over_cap()
        return np.array([0.0 if l in over else x for l, x in zip(self.languages, self.pi)])

    def _draw_languages(self, rng, p: np.ndarray) -> np.ndarray:
        n = 1 if self.cfg.mix_level == "batch" else self.B
        return np.array([draw_arm(p, u) for u in rng.random(n)])

    def get_batch(self, step: int, micro_step: int):
        """(x, y, lang) for this rank at (step, micro_step): x, y (B, T) int64, y = x shifted by one.

        Random windows from the budgeted prefix of each language's train.bin, the random numbers from
        a generator seeded with (seed, step, micro_step * world_size + rank) (numpy SeedSequence),
        the language from sampling_pi(); every rank adds all ranks' draws to the exposure counters.
        """
        key = (int(step), int(micro_step))
        if self._last_key is not None and key < self._last_key:
            raise ValueError(f"mixer.get_batch{key} after {self._last_key}: batches must be drawn in order")
        if key == self._last_key:  # the same batch again: undo its accounting first
            self.exposures = dict(self._exposures_before_last)
        else:
            self._exposures_before_last = dict(self.exposures)
        self._last_key = key
        for l in self.over_cap():
            if l not in self.capped:
                self.capped[l] = key[0]
                if self.rank == 0:
                    print(f"mixer: {l} reached max_epochs={self.cfg.max_epochs:g} ({self.exposures[l]:,} of "
                          f"{self.allowance[l]:,} tokens) at step {key[0]}; its share goes to the others", flush=True)
        p = self.sampling_pi()
        mine = None
        for r in range(self.world_size):
            # keyed by the micro-batch's index within the step, micro_step * world_size + rank: two
            # ranks draw what one process with twice the accumulation draws
            rng = np.random.default_rng([self.seed, RNG_TAG_DRAW, key[0], key[1] * self.world_size + r])
            idx = self._draw_languages(rng, p)
            for i in idx:
                self.exposures[self.languages[i]] += self.T * (self.B // len(idx))
            if r == self.rank:
                mine = (rng, idx)
        rng, idx = mine
        rows = np.repeat(idx, self.B // len(idx))  # (B,) language index of each row
        highs = np.array([self.unique[self.languages[i]] - self.T for i in rows])
        offsets = rng.integers(0, highs)           # window [o, o + T + 1) stays inside the prefix
        buf = np.stack([self.data[self.languages[i]][o:o + self.T + 1] for i, o in zip(rows, offsets)])
        import torch  # here, not at the top: `mixer.py prior` and `mixer.py plot` run without it
        buf = torch.from_numpy(buf.astype(np.int64))  # (B, T+1)
        lang = self.languages[idx[0]] if len(idx) == 1 else "mixed"
        return buf[:, :-1].contiguous(), buf[:, 1:].contiguous(), lang

    def train_tokens(self) -> int:
        """Unique training tokens under the budget, all languages (train.py's `epochs` counts these)."""
        return sum(self.unique.values())

    # -- learning ------------------------------------------------------------------------------

    def update(self, step: int, val_losses: dict) -> dict:
        """Move pi with this evaluation's held-out losses (identical on every rank: all-reduce them
        first, see `all_reduce_mean`) and return the record to log:
        {"kind": "mixer", "step", "mixer", "reward_kind", "pi", "pi_sample", "rewards", "val_loss",
         "exposures", "epochs", "capped", "update", "floor", ("arm" for exp3)}."""
        missing = [l for l in self.languages if l not in val_losses]
        if missing:
            raise SystemExit(f"mixer.update: no held-out loss for {', '.join(missing)}")
        L = np.array([float(val_losses[l]) for l in self.languages])
        if not np.all(np.isfinite(L)):
            raise SystemExit(f"mixer.update: non-finite held-out loss {dict(zip(self.languages, L.tolist()))}")
        cfg, rewards, arm = self.cfg, None, None
        if cfg.mixer != "static":
            if cfg.reward == "normalized_excess_loss":
                rewards, lo = normalized_excess_loss(L, self.refs, self.raws), -REWARD_CLIP
            else:
                rewards, lo = cross_lingual_deficit(L, self.pool), 0.0
            if cfg.mixer == "taam":
                self.log_w = taam_update(self.log_w, self.pi, rewards, cfg.eta)
            elif cfg.mixer == "hedge":
                self.log_w = hedge_update(self.log_w, rewards, cfg.eta)
            else:  # exp3: play one arm, see only its reward, rescaled to [0, 1]
                u = np.random.default_rng([self.seed, RNG_TAG_EXP3, int(step)]).random()
                arm = draw_arm(self.pi, u)
                x = (rewards[arm] - lo) / (REWARD_CLIP - lo)
                self.log_w = exp3_update(self.log_w, self.pi, arm, x, cfg.eta)
            self.pi = project(self.log_w, cfg.gamma, cfg.min_pi)
        self.n_updates += 1
        p = self._uncapped_pi()  # (all zeros once every language is capped; the run is then over)
        rec = {"kind": "mixer", "step": int(step), "mixer": cfg.mixer, "reward_kind": cfg.reward,
               "pi": self._by_lang(self.pi), "pi_sample": self._by_lang(p / max(p.sum(), 1e-300)),
               "rewards": None if rewards is None else self._by_lang(rewards),
               "val_loss": self._by_lang(L), "exposures": dict(self.exposures),
               "epochs": {l: self.exposures[l] / self.unique[l] for l in self.languages},
               "capped": dict(self.capped), "update": self.n_updates,
               "floor": None if cfg.mixer == "static" else structural_floor(self.K, cfg.gamma, cfg.min_pi)}
        if arm is not None:
            rec["arm"] = self.languages[arm]
        return rec

    def _by_lang(self, v) -> dict:
        return {l: float(x) for l, x in zip(self.languages, v)}

    # -- checkpointing -------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything that decides future draws and updates, as plain Python values (JSON-able)."""
        return {"version": 1, "languages": list(self.languages), "unique": dict(self.unique),
                "config": asdict(self.cfg), "log_w": self.log_w.tolist(), "pi": self.pi.tolist(),
                "refs": [list(x) for x in self.refs], "raws": [list(x) for x in self.raws],
                "pool": list(self.pool), "n_updates": self.n_updates, "exposures": dict(self.exposures),
                "capped": dict(self.capped), "last_key": None if self._last_key is None else list(self._last_key),
                "exposures_before_last": dict(self._exposures_before_last)}

    def load_state_dict(self, d: dict):
        if list(d.get("languages", [])) != list(self.languages) or d.get("unique") != self.unique:
            raise SystemExit(f"mixer: the checkpoint's languages/budgets {d.get('languages')} {d.get('unique')} "
                             f"differ from this run's {list(self.languages)} {self.unique} (other data or budget?)")
        self.log_w, self.pi = np.array(d["log_w"], dtype=np.float64), np.array(d["pi"], dtype=np.float64)
        self.refs, self.raws = [list(x) for x in d["refs"]], [list(x) for x in d["raws"]]
        self.pool, self.n_updates = list(d["pool"]), int(d["n_updates"])
        self.exposures, self.capped = dict(d["exposures"]), dict(d["capped"])
        self._last_key = None if d["last_key"] is None else tuple(d["last_key"])
        self._exposures_before_last = dict(d["exposures_before_last"])

    def describe(self) -> str:
        """Lines for the start of a run: per language its budget, epoch cap and pi."""
        c = self.cfg
        rule = c.mixer if c.mixer == "static" else f"{c.mixer} with reward {c.reward}"
        out = [f"mixer: {rule}, prior {c.prior}, mix_level {c.mix_level}; budget {c.budget:,.0f} "
               f"{c.budget_unit}, max_epochs {c.max_epochs:g}"]
        for i, l in enumerate(self.languages):
            s = self.stats[l]
            note = "" if self.unique[l] < s["tokens"] else "  (all its data: the budget is larger)"
            out.append(f"  {l}: {self.unique[l]:>12,} unique tokens of {s['tokens']:,}, byte premium "
                       f"{s['byte_premium']:.3f}, at most {self.allowance[l]:,} exposures; pi0 {self.pi0[i]:.4f}, "
                       f"pi {self.pi[i]:.4f}{note}")
        out.append(f"  at most {sum(self.allowance.values()):,} tokens can be drawn in all")
        return "\n".join(out)


def all_reduce_mean(values: dict) -> dict:
    """Per-language held-out losses averaged over DDP ranks, bit-identical on every rank (an
    all-reduce, then rank 0's result broadcast). Without an initialised process group: unchanged.
    Every rank must pass the same keys."""
    import torch
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    t /= dist.get_world_size()
    dist.broadcast(t, src=0)
    return {k: float(v) for k, v in zip(keys, t.cpu().tolist())}


# ----------------------------------------------------------------------------------------------
# Command line: prior, info, plot

def print_prior(languages, temperature: float, floor: float, gamma: float, min_pi: float):
    pi0, iso, D = typological_prior(languages, temperature, floor)
    n = uriel_features(languages).shape[1]
    aliases = ", ".join(f"{l} read as {URIEL_CODES[l]}" for l in languages if l in URIEL_CODES)
    print(f"URIEL {' + '.join(s for s, _ in URIEL_FEATURE_SETS)}: {n} features per language"
          + (f" ({aliases})" if aliases else ""))
    print("cosine distance " + "".join(f"{l:>8}" for l in languages))
    for i, l in enumerate(languages):
        print(f"  {l:<13} " + "".join(f"{x:8.4f}" for x in D[i]))
    show = lambda v: "  ".join(f"{l} {x:.4f}" for l, x in zip(languages, v))
    print(f"isolation (mean distance to the others):  {show(iso)}")
    print(f"pi0 = softmax(isolation / {temperature:g}), floor {floor:g}:  {show(pi0)}")
    start = project(np.log(pi0), gamma, min_pi)
    print(f"adaptive start, projected (gamma {gamma:g}, min_pi {min_pi:g}):  {show(start)}")
    print(f"structural floor min_pi + (1 - K min_pi) gamma / K = {structural_floor(len(languages), gamma, min_pi):.4f}")


def plot(run_dir: str, out: str = None) -> str:
    """pi (solid) and the pi actually sampled (dotted), held-out loss and epochs per language over
    training, from RUN_DIR/log.jsonl ("kind": "mixer" and "kind": "eval" records)."""
    path = os.path.join(run_dir, "log.jsonl")
    if not os.path.isfile(path):
        raise SystemExit(f"{path}: no log (is {run_dir} a run folder written by train.py?)")
    mix, evals = [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                raise SystemExit(f"{path}:{n}: not a JSON record")
            step = r.get("step", r.get("iter", r.get("iter_num")))
            if r.get("kind") == "mixer" and step is not None:
                mix.append((step, r))
            elif r.get("kind") == "eval" and step is not None and isinstance(r.get("val_loss"), dict):
                evals.append((step, r["val_loss"]))
    if not mix:
        raise SystemExit(f"{path}: no mixer records (\"kind\": \"mixer\"); was the run trained with a mixer?")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("mixer.py plot needs matplotlib: pip install matplotlib")
    if not evals:
        evals = [(s, r["val_loss"]) for s, r in mix]
    langs = list(mix[0][1]["pi"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for j, l in enumerate(langs):
        color = f"C{j}"
        axes[0].plot([s for s, _ in mix], [r["pi"][l] for _, r in mix], color=color, label=l)
        axes[0].plot([s for s, _ in mix], [r.get("pi_sample", r["pi"])[l] for _, r in mix], ":", color=color)
        pts = [(s, v[l]) for s, v in evals if l in v]
        axes[1].plot([s for s, _ in pts], [v for _, v in pts], color=color, label=l)
        axes[2].plot([s for s, _ in mix], [r["epochs"][l] for _, r in mix], color=color, label=l)
    first = mix[0][1]
    if first.get("floor"):
        axes[0].axhline(first["floor"], color="grey", ls="--", lw=1, label="floor")
    axes[0].set_title(f"pi ({first['mixer']}, {first['reward_kind']}); dotted: pi sampled")
    axes[1].set_title("held-out loss")
    axes[2].set_title("epochs of unique tokens")
    for ax in axes:
        ax.set_xlabel("step")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out = out or os.path.join(run_dir, "mixer.png")
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def parse_overrides(items) -> MixerConfig:
    """--key=value pairs onto MixerConfig (for `mixer.py info`), with the field's type."""
    cfg, types = MixerConfig(), {f.name: f.type for f in fields(MixerConfig)}
    for item in items:
        key, eq, val = item.lstrip("-").partition("=")
        if key not in types or not eq:
            raise SystemExit(f"{item!r}: expected --key=value with key one of {', '.join(types)}")
        kind = types[key]
        try:
            setattr(cfg, key, kind(val))
        except ValueError:
            raise SystemExit(f"{item!r}: {val!r} is not a {kind.__name__}")
    return cfg


def main(argv=None):
    ap = argparse.ArgumentParser(description="TAAM mixer tools (see the module docstring)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("prior", help="print the typological prior for some languages")
    a.add_argument("languages", nargs="+")
    a.add_argument("--temperature", type=float, default=MixerConfig.prior_temperature)
    a.add_argument("--floor", type=float, default=MixerConfig.prior_floor)
    a.add_argument("--gamma", type=float, default=MixerConfig.gamma)
    a.add_argument("--min_pi", type=float, default=MixerConfig.min_pi)
    b = sub.add_parser("info", help="budgets, epoch caps and pi0 for a data folder")
    b.add_argument("data_dir")
    b.add_argument("--block_size", type=int, default=512)
    b.add_argument("--batch_size", type=int, default=16)
    c = sub.add_parser("plot", help="draw pi and per-language loss of a run to RUN_DIR/mixer.png")
    c.add_argument("run_dir")
    c.add_argument("--out", default=None)
    args, rest = ap.parse_known_args(argv)
    if args.cmd == "prior":
        if rest:
            ap.error(f"unknown arguments {rest}")
        print_prior(args.languages, args.temperature, args.floor, args.gamma, args.min_pi)
    elif args.cmd == "info":
        cfg = parse_overrides(rest)
        if cfg.mixer == "none":
            cfg.mixer = "static"
        print(Mixer(cfg, args.data_dir, args.batch_size, args.block_size, seed=0).describe())
    else:
        if rest:
            ap.error(f"unknown arguments {rest}")
        print(f"wrote {plot(args.run_dir, args.out)}")


if __name__ == "__main__":
    main()
