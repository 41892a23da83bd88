# Static baseline: languages in proportion to their byte-premium-adjusted bytes.
# A variant of config/taam.py: give both, this one last.
#   python train.py config/taam.py config/taam_bytes.py
out_dir = "runs/taam_bytes"
mixer = "static"
prior = "bytes"
