# Shared by the results scripts. finished OUT_DIR: true when OUT_DIR/ckpt.safetensors has trained to the end.
finished() {
    [ -f "$1/ckpt.safetensors" ] && [ "$(python -c "import sys; from checkpoint import read_info; i = read_info(sys.argv[1]); print(int(i['iter_num'] >= i['config']['max_iters_resolved']))" "$1/ckpt.safetensors")" = 1 ]
}
