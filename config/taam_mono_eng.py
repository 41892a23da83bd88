# Monolingual baseline: English only, the whole budget to it (the held-out losses of
# the other languages are still evaluated and logged).
#   python train.py config/taam_mono_eng.py
# Full scale, as the reference run; the README's CPU study (Results II) overrides the sizes on the
# command line (a smaller model, fewer steps), e.g. --dim=128 --n_layers=4 --max_iters=600.
out_dir = "runs/taam_mono_eng"
data_dir = "data/eng_nld_zho"  # tokenize_data.py on ../shared/data/corpora/{en,nl,zh}, one shared tokenizer

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
mixer = "static"
prior = "uniform"
languages = "eng"
budget = 100e6                 # unique tokens in all, split to equal byte-premium-adjusted bytes per language
budget_unit = "tokens"
max_epochs = 10                # no language is seen more than 10x its unique tokens
mix_level = "batch"            # one language per micro-batch, as TAAM
