# Static baseline: languages in proportion to their (budgeted) tokens.
# A variant of config/taam.py: give both, this one last.
#   python train.py config/taam.py config/taam_proportional.py
out_dir = "runs/taam_proportional"
mixer = "static"
prior = "proportional"
