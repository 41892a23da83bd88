# Monolingual baseline: English only.
# A variant of config/taam.py: give both, this one last.
#   python train.py config/taam.py config/taam_mono_eng.py
out_dir = "runs/taam_mono_eng"
mixer = "static"
prior = "uniform"
languages = "eng"
