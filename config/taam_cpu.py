# The CPU-sized TAAM study of the README (Results II): give it after the base config and the variant,
#   python train.py config/taam.py config/taam_uniform.py config/taam_cpu.py --out_dir=runs/taam_cpu/uniform
# Every variant gets the same model, the same token exposures and the same seed.
dim = 128
n_layers = 4
n_heads = 4
hidden_dim = 512
max_seq_len = 128
block_size = 128
batch_size = 8
grad_accum = 4                 # 4 micro-batches, each from one language (batch-level mixing)
max_iters = 400                # 400 x 4,096 tokens = 1.6M token exposures
warmup_iters = 40
lr = 1e-3
min_lr = 1e-4
eval_interval = 20             # 20 mixer updates
eval_windows = 48
log_interval = 10
budget = 1.5e6                 # unique tokens in all: ~0.5M per language (equal byte-premium-adjusted bytes)
milestone_unit = "none"
dtype = "auto"                 # native precision (machine.py); Results II ran bf16 on an AVX-512 BF16 CPU
