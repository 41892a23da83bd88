# Model A the way its card really trained it (../shared/MODEL_A_CARD.md), on the card's own 2 MB:
#   python tokenize_data.py --model-a-card --out data/model_a_card
#   python train.py config/model_a_card.py --seed=1
#   python eval_blimp.py out/model_a_card/ckpt.safetensors --protocol card --fast     # the card's 57.2
# One line of text is one sample (no BOS, no packing across lines), cut into pieces of at most 64
# tokens; 64 samples per step (16 x accumulation 4); 5 epochs; the optimizer as transformers'
# Trainer builds it by default (AdamW, betas 0.9/0.999, no weight decay, gradient clipping 1.0), and
# transformers' initialisation (results/README.md: with GPT-2's the held-out loss stays 0.12 above the card's).
out_dir = "out/model_a_card"
data_dir = "data/model_a_card"

# model: LLaMA, hidden 384, 6 layers, 6 heads, SwiGLU 1536, untied; transformers' LlamaConfig defaults
dim = 384
n_layers = 6
n_heads = 6
hidden_dim = 1536
max_seq_len = 512        # the card's context; its samples never go past 64 tokens
norm_eps = 1e-6
scaled_residual_init = False   # every matrix N(0, 0.02), as transformers initialises a LlamaForCausalLM
tie_embeddings = False

# samples and batches
samples = "lines"
block_size = 64
batch_size = 16
grad_accum = 4
epochs = 5.0

# optimization: warmup 200, cosine to 0
lr = 3e-4
min_lr = 0.0
warmup_iters = 200
decay = "cosine"
beta1 = 0.9
beta2 = 0.999
weight_decay = 0.0
grad_clip = 1.0

# system: the precision native on the machine (machine.py: bf16 on a GPU or a CPU with native bf16, else
# fp32). The published seeds ran in bf16 autocast on an AVX-512 BF16 CPU (the card used fp16 on a GPU), which
# auto picks there too; an AVX2-only CPU computes fp32 instead (its numbers differ slightly; bf16 is emulated there).
dtype = "auto"
eval_interval = 250
log_interval = 10
