# Textbook EXP3 (Auer et al. 2002) with the v2 reward: at each evaluation one language is
# played and only its reward, importance-weighted by 1/pi, moves the weights.
# A variant of config/taam.py: give both, this one last.
#   python train.py config/taam.py config/taam_exp3.py
out_dir = "runs/taam_exp3"
mixer = "exp3"
