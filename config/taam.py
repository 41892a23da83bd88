# TAAM on English + Dutch + Chinese, the reference "Pstar" setup: EXP3 in TAAM's published form
# (`taam` update) with the v2 reward (cross-lingual deficit), from the typological prior.
# The released Pstar run ended at pi = eng 0.159, nld 0.258, zho 0.583.
#   python train.py config/taam.py
# Variants and static baselines are small files given after this one (later files win):
#   python train.py config/taam.py config/taam_uniform.py
# Full scale, as the reference run; the README's CPU study (Results II) adds config/taam_cpu.py,
# which shrinks the model and the run.
out_dir = "runs/taam"
data_dir = "data/eng_nld_zho"
make_data = "--corpus ../shared/data/corpora"  # made when missing: python tokenize_data.py ... --out data/eng_nld_zho

# model: Model A's LLaMA (vocab_size comes from the data folder)
dim = 384
n_layers = 6
n_heads = 6
hidden_dim = 1536
max_seq_len = 512

# 20,000 steps x 32,768 tokens (micro-batch 16 x 512 tokens x accumulation 4) = 655M exposures
batch_size = 16
block_size = 512
grad_accum = 4
max_iters = 20000
lr = 3e-4
min_lr = 3e-5
warmup_iters = 200
decay = "cosine"
eval_interval = 200            # every evaluation is one mixer update (100 in all)
milestone_unit = "tokens"      # BabyLM checkpoints by tokens: words are ill-defined for Chinese

# mixer
mixer = "taam"
reward = "cross_lingual_deficit"
prior = "typological"          # pi0 from URIEL (python mixer_info.py prior eng nld zho)
eta = 0.1
gamma = 0.1
min_pi = 0.05
languages = "eng,nld,zho"
budget = 100e6                 # unique tokens in all, split to equal byte-premium-adjusted bytes per language
budget_unit = "tokens"
max_epochs = 10                # no language is seen more than 10x its unique tokens
mix_level = "batch"            # one language per micro-batch, as TAAM
