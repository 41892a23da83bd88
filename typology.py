"""
The typological prior of the TAAM mixer: languages that are typologically isolated from the others
start with more sampling probability.

    python mixer_info.py prior eng nld zho          # prints the numbers below, step by step
    from typology import typological_prior
    pi0, isolation, distance = typological_prior(["eng", "nld", "zho"])

The languages are compared by their URIEL vectors (Littell et al. 2017, the lang2vec package):
syntax, phonology and phoneme inventory, the k-NN-predicted sets, which have a value for every
feature of every language.
"""

import importlib.util
import os

import numpy as np


URIEL_FEATURE_SETS = (("syntax_knn", "S_"), ("phonology_knn", "P_"), ("inventory_knn", "INV_"))
URIEL_CODES = {"zho": "cmn"}  # URIEL stores Mandarin (cmn), not the macro-language zho


def uriel_features(languages) -> np.ndarray:
    """(K, F) URIEL vectors: syntax_knn + phonology_knn + inventory_knn, concatenated as
    lang2vec.get_features(langs, "syntax_knn+phonology_knn+inventory_knn") does. Features unknown
    (-1) for any of the languages are dropped (the k-NN sets have none for eng/nld/cmn).

    Read straight from the feature file lang2vec ships (lang2vec/data/feature_predictions.npz):
    no network, and no `import lang2vec.lang2vec`, which needs pkg_resources (setuptools < 81).
    """
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

    Returns (pi0, iso, D). For eng, nld, zho: pi0 = (0.3213, 0.3227, 0.3560); `python mixer_info.py prior`.
    """
    K = len(languages)
    if K < 2 or K * floor >= 1:
        raise SystemExit(f"mixer: the typological prior needs at least two languages and prior_floor < 1/K "
                         f"(got {K} languages, prior_floor={floor})")
    x = uriel_features(languages)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    D = np.clip(1.0 - u @ u.T, 0.0, 2.0)
    np.fill_diagonal(D, 0.0)
    iso = D.sum(axis=1) / (K - 1)
    z = np.exp((iso - iso.max()) / temperature)
    pi0 = floor + (1.0 - K * floor) * z / z.sum()
    return pi0, iso, D
