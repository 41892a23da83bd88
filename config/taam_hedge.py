# Full-information Hedge (Freund & Schapire 1997) with the v2 reward: every language's reward
# is observed, so none is divided by pi. The right rule when all held-out losses are measured.
# A variant of config/taam.py: give both, this one last.
#   python train.py config/taam.py config/taam_hedge.py
out_dir = "runs/taam_hedge"
mixer = "hedge"
