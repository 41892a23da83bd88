# TAAM with the v1 reward (normalized excess loss, delta-based): a language whose held-out
# loss plateaus gets ~0 reward and sinks to the structural floor (0.0783) under the taam update.
# A variant of config/taam.py: give both, this one last.
#   python train.py config/taam.py config/taam_v1.py
out_dir = "runs/taam_v1"
reward = "normalized_excess_loss"
