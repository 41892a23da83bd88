# Static baseline: the typological prior pi0 held fixed (python mixer_info.py prior eng nld zho).
# A variant of config/taam.py: give both, this one last.
#   python train.py config/taam.py config/taam_prior.py
out_dir = "runs/taam_prior"
mixer = "static"
prior = "typological"
