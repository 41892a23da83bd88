# Static baseline: every language equally likely per micro-batch.
# A variant of config/taam.py: give both, this one last.
#   python train.py config/taam.py config/taam_uniform.py
out_dir = "runs/taam_uniform"
mixer = "static"
prior = "uniform"
