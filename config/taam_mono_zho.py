# Monolingual baseline: Mandarin only.
# A variant of config/taam.py: give both, this one last.
#   python train.py config/taam.py config/taam_mono_zho.py
out_dir = "runs/taam_mono_zho"
mixer = "static"
prior = "uniform"
languages = "zho"
