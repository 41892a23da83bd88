"""
Which language does the next batch come from? Online multilingual data mixing (TAAM and friends).

    python train.py config/taam.py                          # the mixer runs inside train.py
    python mixer_info.py prior eng nld zho                  # the typological prior's numbers
    python mixer_info.py info data/eng_nld_zho --prior=bytes  # budgets, epoch caps and pi0 for a data folder
    python report.py runs/taam --mixer-png mixer.png        # pi, held-out loss and epochs over a run

The mixer keeps a sampling probability pi_l per language l, draws every micro-batch from the
memmapped `<data_dir>/<lang>/train.bin` files according to pi and, after each evaluation, moves pi
with the per-language held-out losses. It reimplements Typology-Aware Adaptive Mixing (TAAM): a
typological prior pi0 (`typological_prior`; the baselines in `static_prior`), an online update of pi
(`taam_update`, `exp3_update` or `hedge_update`, then `project`) from the rewards
`normalized_excess_loss` (v1) or `cross_lingual_deficit` (v2), and byte-premium-adjusted budgets
with an epoch cap (`unique_token_budget`). Each formula is in the docstring of the function that
computes it; which update rule is right when, and the flaw of TAAM's published rule, are in
results/taam/mixer_notes.md, with the references (Auer et al. 2002 for EXP3, Freund & Schapire 1997 for
Hedge, Littell et al. 2017 for URIEL, Conneau et al. 2020 for temperature sampling, Arnett et al.
2024 for the byte premium).
"""

import os
from dataclasses import asdict, dataclass

import numpy as np
import torch

from data import Batch, BatchSource, LineSamples, Shard, TokenWindows, open_bin
from typology import typological_prior

MIXERS = ("none", "static", "taam", "exp3", "hedge")
REWARDS = ("normalized_excess_loss", "cross_lingual_deficit")
NAMED_PRIORS = ("uniform", "bytes", "proportional", "temperature", "typological")
MIX_LEVELS = ("batch", "sequence")
BUDGET_UNITS = ("tokens", "words")


@dataclass
class MixerConfig:
    # what moves pi: "none" (no mixer: data.py's plain sources, see open_batch_source), "static", "taam", "exp3", "hedge"
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

    def __post_init__(self):
        """Every value that can be checked without the data; configurator.load_config turns the
        ValueError into one line. What needs the data (the number of languages K, their names in
        meta.json) is checked by Mixer."""
        for key, allowed in (("mixer", MIXERS), ("reward", REWARDS), ("mix_level", MIX_LEVELS),
                             ("budget_unit", BUDGET_UNITS)):
            if getattr(self, key) not in allowed:
                raise ValueError(f"mixer: {key}={getattr(self, key)!r}: expected one of {', '.join(allowed)}")
        for key, ok, need in (("eta", self.eta > 0, "> 0"), ("gamma", 0 <= self.gamma <= 1, "in [0, 1]"),
                              ("min_pi", 0 <= self.min_pi < 1, "in [0, 1)"),
                              ("temperature_alpha", 0 <= self.temperature_alpha <= 1, "in [0, 1]"),
                              ("prior_temperature", self.prior_temperature > 0, "> 0"),
                              ("prior_floor", 0 <= self.prior_floor < 1, "in [0, 1)"),
                              ("budget", self.budget > 0, "> 0"), ("max_epochs", self.max_epochs > 0, "> 0")):
            if not ok:
                raise ValueError(f"mixer: {key}={getattr(self, key)!r} must be {need}")
        names = self.language_list()
        if len(set(names)) < len(names):
            raise ValueError(f"mixer: languages={self.languages!r} names a language twice")
        if self.prior.strip() not in NAMED_PRIORS:
            given = explicit_prior(self.prior)
            if self.mixer not in ("none", "static") and min(given.values()) <= 0:
                raise ValueError(f"mixer: prior={self.prior!r}: the adaptive mixer {self.mixer!r} needs every "
                                 f"language's prior > 0 (a weight of 0 never moves)")

    def language_list(self) -> list:
        """languages as a list ("eng,nld zho" -> ["eng", "nld", "zho"]); empty = all of meta.json."""
        return self.languages.replace(",", " ").split()


def explicit_prior(text: str) -> dict:
    """"eng=0.2,nld=0.3,zho=0.5" -> {"eng": 0.2, ...}, each >= 0, summing to 1 (to 1e-3)."""
    given = {}
    for part in text.replace(" ", "").split(","):
        lang, _, value = part.partition("=")
        try:
            probability = float(value)
        except ValueError:
            probability = None
        if not lang or probability is None:
            raise ValueError(f"mixer: prior={text!r}: {part!r} is not lang=probability (and the prior is not "
                             f"one of {', '.join(NAMED_PRIORS)})")
        given[lang] = probability
    total = sum(given.values())
    if min(given.values()) < 0 or not abs(total - 1.0) <= 1e-3:  # (not <=: a nan fails too)
        raise ValueError(f"mixer: prior={text!r}: probabilities must be >= 0 and sum to 1 (sum {total:.4f})")
    return given


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
    language with mean reward <= 0 falls to the structural floor (results/taam/mixer_notes.md).
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

def normalized_excess_loss(losses: np.ndarray, recent_losses: list, recent_raw_rewards: list) -> np.ndarray:
    """TAAM's v1 reward: has the language's loss gone down lately?

        ref_l   = mean of the last <= 5 losses of l   (L_l itself at the first evaluation)
        raw_l   = ref_l - L_l
        sigma_l = sample std of the last <= 20 raws of l, taken *before* appending raw_l
                  (1.0 when there are fewer than 2 raws or sigma < 1e-8)
        r_l     = clip(raw_l / sigma_l, -2, 2)

    recent_losses[l] and recent_raw_rewards[l] (lists, one per language) are updated in place.
    """
    rewards = np.zeros(len(losses))
    for i, loss in enumerate(map(float, losses)):
        past_losses, past_raw_rewards = recent_losses[i], recent_raw_rewards[i]
        raw = (float(np.mean(past_losses)) if past_losses else loss) - loss
        past_losses.append(loss)
        del past_losses[:-REF_WINDOW]
        sigma = spread(past_raw_rewards)
        past_raw_rewards.append(raw)
        del past_raw_rewards[:-STD_WINDOW]
        rewards[i] = np.clip(raw / sigma, -REWARD_CLIP, REWARD_CLIP)
    return rewards


def cross_lingual_deficit(losses: np.ndarray, recent_deficits: list) -> np.ndarray:
    """TAAM's v2 reward: how far is the language behind the best one?

        d_l   = max(L_l - min_k L_k, 0)
        pool  = the last 20 K deficits of all languages, *after* appending this evaluation's d
        sigma = sample std of pool (1.0 when it has fewer than 2 values or sigma < 1e-8)
        r_l   = clip(d_l / sigma, 0, 2)

    recent_deficits (the pool) is updated in place.
    """
    deficits = np.maximum(losses - losses.min(), 0.0)
    recent_deficits.extend(float(d) for d in deficits)
    del recent_deficits[:-STD_WINDOW * len(losses)]
    return np.clip(deficits / spread(recent_deficits), 0.0, REWARD_CLIP)


def spread(values: list) -> float:
    """The rewards' scale sigma: the sample std of values, or 1.0 while there are fewer than two
    values or they are all equal (sigma < 1e-8), so that a reward is never divided by ~0."""
    sigma = float(np.std(values, ddof=1)) if len(values) >= 2 else 1.0
    return sigma if sigma >= 1e-8 else 1.0


# ----------------------------------------------------------------------------------------------
# Priors

def static_prior(cfg: MixerConfig, languages, stats: dict) -> np.ndarray:
    """pi0 from cfg.prior; stats[l] holds "tokens" (of l's whole train.bin), "bytes", "byte_premium".

        uniform       pi_l = 1 / K
        bytes         pi_l ~ byte_premium_l * tokens_l / bytes_l   (equal byte-premium-adjusted bytes)
        proportional  pi_l ~ n_l                                   (n_l = tokens_l)
        temperature   pi_l ~ n_l ^ alpha                           (alpha = 0.3, Conneau et al. 2020)
        typological   `typological_prior`
        "eng=0.2,..." as written

    n_l is the data a language *has*, not the budget's balanced share of it (on which `proportional`
    would equal `bytes`): as in XLM-R, the languages with more text get more exposures, up to the cap.
    """
    K = len(languages)
    prior = cfg.prior.strip()
    n = np.array([stats[l]["tokens"] for l in languages], dtype=np.float64)
    if prior == "uniform":
        return np.full(K, 1.0 / K)
    if prior == "typological":
        return typological_prior(languages, cfg.prior_temperature, cfg.prior_floor)[0]
    if prior == "bytes":
        weights = np.array([stats[l]["byte_premium"] * stats[l]["tokens"] / stats[l]["bytes"] for l in languages])
    elif prior == "proportional":
        weights = n
    elif prior == "temperature":
        weights = n ** cfg.temperature_alpha
    else:  # explicit; MixerConfig has checked its syntax and sum
        given = explicit_prior(prior)
        if set(given) != set(languages):
            raise SystemExit(f"mixer: prior={cfg.prior!r}: give exactly the languages {','.join(languages)}")
        weights = np.array([given[l] for l in languages])
    return weights / weights.sum()


# ----------------------------------------------------------------------------------------------
# The languages' data and their budgets

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
    else:  # "words" (MixerConfig allows no other unit)
        A = budget / len(languages) * eng_bytes_per_word
    return {l: min(stats[l]["tokens"], int(A * rate[l])) for l in languages}


def open_languages(data_dir: str, meta: dict, languages: list):
    """(languages, bins, stats): the languages asked for (all of meta.json's when none are), each
    one's train.bin memmapped, and its {"tokens" (of the train.bin), "bytes", "words", "byte_premium"}."""
    meta_path = os.path.join(data_dir, "meta.json")
    in_meta = meta.get("languages") or {}
    languages = languages or list(in_meta)
    unknown = [l for l in languages if l not in in_meta]
    if not languages or unknown:
        raise SystemExit(f"{meta_path}: no language {', '.join(unknown) or '(none given)'}; "
                         f"it has {', '.join(in_meta) or 'none'}")
    bins, stats = {}, {}
    for l in languages:
        bins[l] = open_bin(data_dir, meta, l, "train")
        try:
            train = in_meta[l]["train"]
            stats[l] = {"tokens": len(bins[l]), "bytes": float(train["bytes"]), "words": float(train.get("words", 0)),
                        "byte_premium": float(in_meta[l]["byte_premium"])}
        except (KeyError, TypeError, ValueError):
            raise SystemExit(f"{meta_path}: languages.{l} needs byte_premium and train.bytes")
        if stats[l]["bytes"] <= 0 or stats[l]["byte_premium"] <= 0:
            raise SystemExit(f"{meta_path}: languages.{l}: train.bytes and byte_premium must be > 0")
    return tuple(languages), bins, stats


# ----------------------------------------------------------------------------------------------
# The batch source

class Mixer(BatchSource):
    """The batch source that learns which language to draw (data.BatchSource lists its methods;
    data.TokenWindows and data.LineSamples are the fixed ones).

        shard = Shard(batch_size, block_size, grad_accum, seed, rank, world_size)   # see data.Shard
        mixer = Mixer(data_dir, read_meta(data_dir), shard, cfg)
        batch = mixer.get_batch(step, micro_step)        # a data.Batch: x, y (B, T) int64, lang, ...; see data.py
        record = mixer.update(step, val_losses)          # after each evaluation; log it
        state = mixer.state_dict(); mixer.load_state_dict(state)   # in the checkpoint's train state
        mixer.summary()                                   # mixer, reward, final pi, exposures, epochs

    Exposure accounting: every rank counts the tokens drawn by *all* ranks (it can recompute their
    language draws from the seed), so counters, caps and pi are identical on every rank. Call
    get_batch once per (step, micro_step), in increasing order, and save the state between steps.
    """

    def __init__(self, data_dir: str, meta: dict, shard: Shard, cfg: MixerConfig):
        if cfg.mixer == "none":  # a valid config: it means the plain batch sources, not a Mixer
            raise SystemExit("mixer='none': the Mixer needs one of static, taam, exp3, hedge")
        self.cfg, self.shard = cfg, shard
        self.seed = int(shard.seed) % 2**63  # numpy's SeedSequence takes no negative seed

        self.languages, self.data, self.stats = open_languages(data_dir, meta, cfg.language_list())
        K = self.K = len(self.languages)
        if K * cfg.min_pi >= 1:
            raise SystemExit(f"mixer: min_pi={cfg.min_pi} leaves nothing to adapt for {K} languages "
                             f"(need min_pi < 1/K = {1 / K:.4f})")

        # budgets: unique tokens (a prefix of each train.bin) and the most tokens drawn from each
        eng_bytes_per_word = None
        if cfg.budget_unit == "words":
            eng = meta["languages"].get("eng", {}).get("train", {})
            if not eng.get("words"):
                raise SystemExit(f"{os.path.join(data_dir, 'meta.json')}: budget_unit='words' needs English word "
                                 f"and byte counts (they define an English-equivalent word); use budget_unit='tokens'")
            eng_bytes_per_word = eng["bytes"] / eng["words"]
        self.unique = unique_token_budget(self.stats, self.languages, cfg.budget, cfg.budget_unit, eng_bytes_per_word)
        for l in self.languages:
            self.stats[l]["unique"] = self.unique[l]
            if self.unique[l] < shard.block_size + 1:
                raise SystemExit(f"{os.path.join(data_dir, l, 'train.bin')}: {self.unique[l]} tokens under the "
                                 f"budget, fewer than one window of block_size+1 = {shard.block_size + 1}")
        self.allowance = {l: int(cfg.max_epochs * self.unique[l]) for l in self.languages}

        # pi0 and the update rule's state
        self.pi0 = static_prior(cfg, self.languages, self.stats)
        if cfg.mixer == "static":
            self.log_w, self.pi = np.log(np.maximum(self.pi0, 1e-300)), self.pi0.copy()
        else:  # TAAM's start: softmax(log_w) = pi0, then the same projection as every update
            self.log_w = np.log(self.pi0)
            self.pi = project(self.log_w, cfg.gamma, cfg.min_pi)
        self.recent_losses = [[] for _ in range(K)]       # v1: the last losses per language
        self.recent_raw_rewards = [[] for _ in range(K)]  # v1: the last raw rewards per language
        self.recent_deficits = []                         # v2: the last deficits of all languages
        self.n_updates = 0
        self.exposures = {l: 0 for l in self.languages}   # tokens drawn from l so far, all ranks together
        self.capped = {}                                  # language -> step at which it hit max_epochs
        self._last_key = None                             # (step, micro_step) of the last get_batch

    # -- sampling ------------------------------------------------------------------------------

    def over_cap(self) -> list:
        """Languages that one more micro-step of all ranks (world_size * B * T tokens) could take
        past max_epochs x their unique tokens: they are drawn no more."""
        s = self.shard
        return [l for l in self.languages
                if self.exposures[l] + s.world_size * s.batch_size * s.block_size > self.allowance[l]]

    def sampling_pi(self) -> np.ndarray:
        """The pi actually used for drawing: pi with every capped language (`over_cap`) set to 0 and
        the mass renormalised over the others."""
        p = self._pi_capped_zeroed()
        if p.sum() <= 0:
            raise SystemExit(f"mixer: every language has used max_epochs={self.cfg.max_epochs:g} x its unique tokens "
                             f"({self.exposures}); train for fewer steps, or raise max_epochs or budget")
        return p / p.sum()

    def _pi_capped_zeroed(self) -> np.ndarray:
        """pi with the capped languages set to 0, not renormalised (all zeros once every language is capped)."""
        over = self.over_cap()
        return np.array([0.0 if l in over else p for l, p in zip(self.languages, self.pi)])

    def _draw_languages(self, rng, p: np.ndarray) -> np.ndarray:
        n = 1 if self.cfg.mix_level == "batch" else self.shard.batch_size
        return np.array([draw_arm(p, u) for u in rng.random(n)])

    def get_batch(self, step: int, micro_step: int):
        """This rank's Batch at (step, micro_step): x, y (B, T) int64, y = x shifted by one.

        Random windows from the budgeted prefix of each language's train.bin, the random numbers from
        a generator seeded with (seed, step, micro_step * world_size + rank) (numpy SeedSequence),
        the language from sampling_pi(); every rank adds all ranks' draws to the exposure counters.
        """
        key = (int(step), int(micro_step))
        if self._last_key is not None and key <= self._last_key:  # drawing twice would count twice
            raise ValueError(f"mixer.get_batch{key} after {self._last_key}: "
                             f"draw each (step, micro_step) once, in order")
        self._last_key = key
        for l in self.over_cap():
            if l not in self.capped:
                self.capped[l] = key[0]
                if self.shard.rank == 0:
                    print(f"mixer: {l} reached max_epochs={self.cfg.max_epochs:g} ({self.exposures[l]:,} of "
                          f"{self.allowance[l]:,} tokens) at step {key[0]}; its share goes to the others", flush=True)
        p = self.sampling_pi()
        s, B, T = self.shard, self.shard.batch_size, self.shard.block_size
        mine = None
        for r in range(s.world_size):
            # keyed by the micro-batch's index within the step, micro_step * world_size + rank: two
            # ranks draw what one process with twice the accumulation draws
            rng = np.random.default_rng([self.seed, RNG_TAG_DRAW, key[0], key[1] * s.world_size + r])
            idx = self._draw_languages(rng, p)
            for i in idx:
                self.exposures[self.languages[i]] += T * (B // len(idx))
            if r == s.rank:
                mine = (rng, idx)
        rng, idx = mine
        rows = np.repeat(idx, B // len(idx))       # (B,) language index of each row
        highs = np.array([self.unique[self.languages[i]] - T for i in rows])
        offsets = rng.integers(0, highs)           # window [o, o + T + 1) stays inside the prefix
        buf = np.stack([self.data[self.languages[i]][o:o + T + 1] for i, o in zip(rows, offsets)])
        buf = torch.from_numpy(buf.astype(np.int64))  # (B, T+1)
        lang = self.languages[idx[0]] if len(idx) == 1 else "mixed"
        # every micro-batch holds B x T targets: each is 1/grad_accum of the step's loss
        return Batch(buf[:, :-1].contiguous(), buf[:, 1:].contiguous(), lang, weight=1.0 / s.grad_accum,
                     tokens=s.world_size * B * T)

    def train_tokens(self) -> int:
        """Unique training tokens under the budget, all languages (train.py's `epochs` counts these)."""
        return sum(self.unique.values())

    def samples_per_epoch(self) -> float:
        """Windows in one pass over the unique tokens (train.py's `epochs` counts these passes)."""
        return self.train_tokens() / self.shard.block_size

    # -- learning ------------------------------------------------------------------------------

    def update(self, step: int, val_losses: dict) -> dict:
        """Move pi with this evaluation's held-out losses (identical on every rank: train.py
        all-reduces them) and return the record to log:
        {"kind": "mixer", "step", "mixer", "reward_kind", "pi", "pi_sample", "rewards", "val_loss",
         "exposures", "epochs", "capped", "update", "floor", ("arm" for exp3)}."""
        missing = [l for l in self.languages if l not in val_losses]
        if missing:
            raise SystemExit(f"mixer.update: no held-out loss for {', '.join(missing)}")
        losses = np.array([float(val_losses[l]) for l in self.languages])
        if not np.all(np.isfinite(losses)):
            raise SystemExit(f"mixer.update: non-finite held-out loss {self._by_lang(losses)}")
        cfg, rewards, arm = self.cfg, None, None
        if cfg.mixer != "static":
            if cfg.reward == "normalized_excess_loss":
                rewards = normalized_excess_loss(losses, self.recent_losses, self.recent_raw_rewards)
                lowest = -REWARD_CLIP
            else:
                rewards, lowest = cross_lingual_deficit(losses, self.recent_deficits), 0.0
            if cfg.mixer == "taam":
                self.log_w = taam_update(self.log_w, self.pi, rewards, cfg.eta)
            elif cfg.mixer == "hedge":
                self.log_w = hedge_update(self.log_w, rewards, cfg.eta)
            else:  # exp3: play one arm, see only its reward, rescaled to [0, 1]
                u = np.random.default_rng([self.seed, RNG_TAG_EXP3, int(step)]).random()
                arm = draw_arm(self.pi, u)
                x = (rewards[arm] - lowest) / (REWARD_CLIP - lowest)
                self.log_w = exp3_update(self.log_w, self.pi, arm, x, cfg.eta)
            self.pi = project(self.log_w, cfg.gamma, cfg.min_pi)
        self.n_updates += 1
        p = self._pi_capped_zeroed()  # all zeros once every language is capped; the run is then over
        record = {"kind": "mixer", "step": int(step), "mixer": cfg.mixer, "reward_kind": cfg.reward,
                  "pi": self._by_lang(self.pi), "pi_sample": self._by_lang(p / max(p.sum(), 1e-300)),
                  "rewards": None if rewards is None else self._by_lang(rewards),
                  "val_loss": self._by_lang(losses), "exposures": dict(self.exposures), "epochs": self.epochs(),
                  "capped": dict(self.capped), "update": self.n_updates,
                  "floor": None if cfg.mixer == "static" else structural_floor(self.K, cfg.gamma, cfg.min_pi)}
        if arm is not None:
            record["arm"] = self.languages[arm]
        return record

    def epochs(self) -> dict:
        """{language: tokens drawn / unique tokens under the budget}."""
        return {l: self.exposures[l] / self.unique[l] for l in self.languages}

    def summary(self) -> dict:
        """What the model card reports of the mixing (train.py stores it in each checkpoint's info):
        {"mixer", "reward" (None for static), "prior", "pi": {lang: p}, "unique": {lang: tokens},
         "exposures": {lang: tokens}, "epochs": {lang: exposures / unique}}."""
        return {"mixer": self.cfg.mixer, "reward": None if self.cfg.mixer == "static" else self.cfg.reward,
                "prior": self.cfg.prior, "pi": self._by_lang(self.pi), "unique": dict(self.unique),
                "exposures": dict(self.exposures), "epochs": self.epochs()}

    def _by_lang(self, values) -> dict:
        return {l: float(v) for l, v in zip(self.languages, values)}

    # -- checkpointing -------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything that decides future draws and updates, as plain Python values (JSON-able)."""
        return {"version": 2, "languages": list(self.languages), "unique": dict(self.unique),
                "config": asdict(self.cfg), "log_w": self.log_w.tolist(), "pi": self.pi.tolist(),
                "recent_losses": [list(x) for x in self.recent_losses],
                "recent_raw_rewards": [list(x) for x in self.recent_raw_rewards],
                "recent_deficits": list(self.recent_deficits), "n_updates": self.n_updates,
                "exposures": dict(self.exposures), "capped": dict(self.capped),
                "last_key": None if self._last_key is None else list(self._last_key)}

    def load_state_dict(self, state: dict):
        if state.get("version") != 2:
            raise SystemExit(f"mixer: the checkpoint's mixer state is version {state.get('version')}, this "
                             f"mixer.py reads version 2; start the run again")
        if list(state["languages"]) != list(self.languages) or state["unique"] != self.unique:
            raise SystemExit(f"mixer: the checkpoint's languages/budgets {state['languages']} {state['unique']} "
                             f"differ from this run's {list(self.languages)} {self.unique} (other data or budget?)")
        self.log_w, self.pi = np.array(state["log_w"], dtype=np.float64), np.array(state["pi"], dtype=np.float64)
        self.recent_losses = [list(x) for x in state["recent_losses"]]
        self.recent_raw_rewards = [list(x) for x in state["recent_raw_rewards"]]
        self.recent_deficits, self.n_updates = list(state["recent_deficits"]), int(state["n_updates"])
        self.exposures, self.capped = dict(state["exposures"]), dict(state["capped"])
        self._last_key = None if state["last_key"] is None else tuple(state["last_key"])

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


def open_batch_source(cfg, mix_cfg: MixerConfig, meta: dict, shard: Shard, bos_input: bool) -> BatchSource:
    """The batch source a config gets, decided here and nowhere else (cfg is train.TrainConfig:
    data_dir, samples, align_windows, short_first, join_lines; bos_input is the tokenizer's):

        mixer != "none"     Mixer: windows drawn by the learned language mixture
        samples = "lines"   data.LineSamples: one document a sample (the Model A card's way)
        samples = "windows" data.TokenWindows: windows across documents (align_windows: from a BOS)

    Windows run across documents, and the BOS fed as input is the only separator the model reads
    between them; a tokenizer with bos_input=False (the card's: BOS never an input) would have the
    model read one document into the next, so windows and the mixer refuse it.

    It lives in mixer.py because this is the one file that knows all three sources: the mixer is
    built on data.py, so data.py cannot import it back (that would be an import cycle)."""
    if not bos_input and (mix_cfg.mixer != "none" or cfg.samples == "windows"):
        key, fix = ((f"mixer={mix_cfg.mixer!r}", "mixer='none' and samples='lines'") if mix_cfg.mixer != "none"
                    else ("samples='windows'", "samples='lines'"))
        raise SystemExit(f"{cfg.data_dir}: {key} draws windows, which run across documents with BOS as the separator "
                         f"the model reads, but the tokenizer has bos_input=False (BOS never an input); use {fix}")
    if mix_cfg.mixer != "none":
        mixer = Mixer(cfg.data_dir, meta, shard, mix_cfg)
        if shard.rank == 0:
            print(mixer.describe())
        return mixer
    if cfg.samples == "lines":
        return LineSamples(cfg.data_dir, meta, shard, bos_input=bos_input, short_first=cfg.short_first,
                           join_lines=cfg.join_lines)
    return TokenWindows(cfg.data_dir, meta, shard, align_windows=cfg.align_windows)
