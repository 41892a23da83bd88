"""
The mixer's numbers before a run: the typological prior of some languages, step by step, and what a
data folder gives each language (budget, epoch cap, pi0).

    python mixer_info.py prior eng nld zho                       # the typological prior's numbers
    python mixer_info.py info data/eng_nld_zho --prior=bytes     # budgets, epoch caps and pi0 for a data folder
    python mixer_info.py info data/eng_nld_zho --budget=1.5e6    # any MixerConfig key, as train.py takes it

Both commands take MixerConfig's --key=value (mixer.py), so they print what a run with the same keys
would start from: `prior` the steps of typology.typological_prior and the start that mixer.project
makes of it, `info` the lines Mixer.describe prints at the start of a run (with mixer=none, the static
mixer's: pi0 held fixed).
"""

import argparse

import numpy as np

from configurator import load_config
from data import Shard, read_meta
from mixer import Mixer, MixerConfig, project, structural_floor
from typology import URIEL_CODES, URIEL_FEATURE_SETS, typological_prior, uriel_features


def print_prior(languages, cfg: MixerConfig):
    """The typological prior's numbers for some languages, step by step."""
    temperature, floor, gamma, min_pi = cfg.prior_temperature, cfg.prior_floor, cfg.gamma, cfg.min_pi
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


def main(argv=None):
    ap = argparse.ArgumentParser(description="TAAM mixer tools (see the module docstring). Both commands "
                                             "take MixerConfig's --key=value, e.g. --prior_temperature=0.3")
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("prior", help="print the typological prior for some languages")
    a.add_argument("languages", nargs="+")
    b = sub.add_parser("info", help="budgets, epoch caps and pi0 for a data folder")
    b.add_argument("data_dir")
    b.add_argument("--block_size", type=int, default=512)
    b.add_argument("--batch_size", type=int, default=16)
    args, rest = ap.parse_known_args(argv)
    (cfg,), _ = load_config(rest, MixerConfig)
    if args.cmd == "prior":
        print_prior(args.languages, cfg)
    else:
        if cfg.mixer == "none":  # info shows what a mixer would draw; without one, pi0 held fixed
            cfg.mixer = "static"
        shard = Shard(args.batch_size, args.block_size)
        print(Mixer(args.data_dir, read_meta(args.data_dir), shard, cfg).describe())


if __name__ == "__main__":
    main()
