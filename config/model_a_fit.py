# Model A with a schedule that fits the run: the same model, data and 5 epochs as config/model_a.py,
# given after it (later files win):
#   python train.py config/model_a.py config/model_a_fit.py
# Why: 2 MB of English is ~500k tokens, so the card's batch of 16 x 512 x 4 = 32,768 tokens gives only
# 77 optimizer steps in 5 epochs, fewer than its 200 warmup steps: the learning rate never gets past
# 77/200 of 3e-4 and the cosine never starts. Here a step is one micro-batch (8,192 tokens, 305 steps),
# warmup is 10% of them and the peak is 1e-3. Gradient checkpointing only trades time for memory
# (the same gradients, tests/test_model.py); on a CPU memory is plentiful, so it is off.
out_dir = "out/model_a_fit"
grad_accum = 1
warmup_iters = 30
lr = 1e-3
min_lr = 1e-4
grad_checkpoint = False
eval_interval = 30
