# The whole BabyLM path in a few minutes on a laptop's CPU, one command:
#   python train.py config/quickstart.py
# 1. makes the data if data/quickstart has none (the tokenize_data.py command below, printed as it runs);
# 2. trains a small LLaMA (1.6M parameters) on Model A's 2 MB of English, half an epoch;
# 3. scores it on BLiMP's fast set (filtered + supplement: 200 pairs a paradigm, ~14k pairs);
# 4. exports it to a Transformers folder. The real run is config/model_a.py, the same path, longer.
out_dir = "out/quickstart"
data_dir = "data/quickstart"  # Model A's data with a 4,000-token vocabulary: the output layer is 4x cheaper
make_data = "--corpus ../shared/data/corpora --model-a --vocab-size 4000"  # tokenize_data.py's arguments, not --out

# model: small, so that it trains in a minute or two on one CPU core (vocab_size comes from the data)
dim = 128
n_layers = 4
n_heads = 4
hidden_dim = 512
max_seq_len = 128
tie_embeddings = True

# 150 steps x 16 x 128 tokens = 307k token exposures: half of the ~600k training tokens
block_size = 128
batch_size = 16
grad_accum = 1
max_iters = 150
lr = 2e-3
min_lr = 2e-4
warmup_iters = 15
eval_interval = 50
eval_windows = 16
log_interval = 10

# the end of the run: BabyLM's fast BLiMP, then the export
eval_suites = "blimp_filtered,blimp_supplement"
eval_fast = True
export_to = "exports/quickstart"
