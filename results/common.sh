# Shell functions shared by the results scripts (sourced, not run).

finished() {  # finished OUT_DIR: its checkpoint is at the last step of its schedule (mmap: reads two numbers, not the weights)
    [ -f "$1/ckpt.pt" ] && [ "$(python -c "import torch,sys; c=torch.load(sys.argv[1],weights_only=False,mmap=True); print(int(c['iter_num'] >= c['config']['max_iters_resolved']))" "$1/ckpt.pt")" = 1 ]
}
