# Static baseline: temperature sampling, pi_l proportional to n_l^0.3 (n_l = budgeted tokens).
# A variant of config/taam.py: give both, this one last.
#   python train.py config/taam.py config/taam_temperature.py
out_dir = "runs/taam_temperature"
mixer = "static"
prior = "temperature"
temperature_alpha = 0.3
