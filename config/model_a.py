# Model A, the BabyLM 2 MB English reference (see the README's "Model A" table).
# python train.py config/model_a.py: makes the data if data/model_a has none, trains, and prints its BLiMP score
out_dir = "out/model_a"
data_dir = "data/model_a"
make_data = "--corpus ../shared/data/corpora --model-a"   # tokenize_data.py's arguments (--out is data_dir)

# model: LLaMA, 26.4M parameters with untied embeddings
dim = 384
n_layers = 6
n_heads = 6
hidden_dim = 1536
vocab_size = 16000
max_seq_len = 512
tie_embeddings = False
grad_checkpoint = True   # the reference card trained with gradient checkpointing

# optimization: AdamW, warmup 200, cosine, 5 epochs, micro-batch 16 x accumulation 4
lr = 3e-4
min_lr = 3e-5
warmup_iters = 200
decay = "cosine"
epochs = 5.0
batch_size = 16
grad_accum = 4
block_size = 512
eval_interval = 10     # 8 evaluations in the 77-iteration run: enough points for the loss plot
log_interval = 1

# the end of the run: BabyLM's fast BLiMP (filtered + supplement, 200 pairs a paradigm, ~14k pairs)
eval_suites = "blimp_filtered,blimp_supplement"
eval_fast = True
