# Monolingual baseline: Dutch only.
# A variant of config/taam.py: give both, this one last.
#   python train.py config/taam.py config/taam_mono_nld.py
out_dir = "runs/taam_mono_nld"
mixer = "static"
prior = "uniform"
languages = "nld"
