"""
Export a checkpoint to a Transformers LlamaForCausalLM folder, and read such a folder back.

    python export_hf.py out/ckpt.safetensors exports/model_a                   # one folder
    python export_hf.py out/ckpt.safetensors exports/model_a --dtype bfloat16 --eval results/blimp.json
    python export_hf.py --all out/ exports/model_a_repo               # BabyLM checkpoint branches
    python export_hf.py out/ckpt.safetensors exports/model_a --force           # replace an earlier export
    python export_hf.py --all out/ exports/model_a_repo --push YOU/model_a     # ... and upload every branch
    python export_hf.py exports/model_a_repo --push YOU/model_a               # upload an earlier export

The folder loads with no custom code:

    from transformers import AutoModelForCausalLM, AutoTokenizer
    model = AutoModelForCausalLM.from_pretrained("exports/model_a")
    tok = AutoTokenizer.from_pretrained("exports/model_a")     # puts <s> (BOS) before every text

What it holds:
  model.safetensors        weights under Transformers' LLaMA names (a pure rename, see HF_LAYER_NAMES:
                           model.py's RoPE is already in the rotate-half form), lm_head.weight left out
                           when the embeddings are tied
  config.json              LlamaForCausalLM with every field written out, read alike by
                           Transformers 4.51.3 (the BabyLM 2025 pipeline's pin) and 5.x
  generation_config.json   bos / eos / pad ids
  tokenizer.json, tokenizer_config.json, special_tokens_map.json
                           the tokenizer as a PreTrainedTokenizerFast that adds BOS (see below): our
                           ByteLevel BPE as it is; a SentencePiece or tiktoken vocabulary converted
                           (spm_tokenizer_json, tiktoken_tokenizer_json), its own file beside it
  README.md                a model card in the shape of the BabyLM cards (model_card.py)
  eval_results.json        the --eval file, when given

BOS. Training puts <s> before every document, and eval_blimp.py scores a sentence as the sum of
log p(token | <s>, earlier tokens): the first word is scored given BOS. So that the BabyLM
pipeline and lm-eval, which score what AutoTokenizer returns, see the same ids, the exported
tokenizer.json gets a TemplateProcessing post-processor "<s> $A": tokenizer(text) gives
[0] + our ids (add_special_tokens=False gives our ids alone). split_special_tokens is on, as in
our tokenizer, so a literal "<s>" in a text is text, not BOS. A tokenizer made without BOS input
(the Model A card's) gets "$A" instead: tokenizer(text) gives our ids alone, as training read them.

--all RUN_DIR OUT builds one git repository in OUT: every milestone checkpoint
RUN_DIR/checkpoints/chck_{N}M.safetensors (train.py writes them when 1M..10M, 20M..100M, 200M..1000M words
have been seen; chck_tok_{N}M with milestone_unit=tokens) becomes a commit on a branch of the same name,
and RUN_DIR/ckpt.safetensors the last commit, on main: one line of history, so `git log main` walks back
through the milestones. The BabyLM evaluation reads chck_{N}M as words seen; chck_tok_{N}M branches
keep their name, which nobody can take for words.
Author, committer and dates are fixed, so the same run gives the same commit ids. Pushing it to
the Hub (`git push --all`) gives the revisions the BabyLM 2026 evaluation scripts pull
(revision="chck_1M", ...). The Hub wants files over 10 MB in Git LFS: every commit holds a
.gitattributes naming LFS_PATTERNS (the weights, and tokenizer.json, which a tiktoken vocabulary makes
large), and `git lfs migrate import --everything --include=...` (the line --all prints) moves them into
LFS before pushing.

--push REPO uploads with huggingface_hub instead of git (pip install huggingface_hub; a token from
HF_TOKEN or `hf auth login`): an export folder goes to main; an --all repository's branches each go to
the revision of the same name (create_branch, then upload_folder; main last), and the library stores
large files in LFS itself. A branch starts from main on the Hub, so its history is not --all's one line.

Every export is written to a temporary folder next to OUT and renamed into place at the end, so an
interrupted export leaves nothing behind. An existing non-empty OUT is replaced only with --force,
and only when it is an earlier export (it holds config.json and model.safetensors) that holds
neither the input nor the current folder.

`load_hf(folder) -> (model.Transformer, tokenizer.Tokenizer)` goes the other way, from our
export or any Transformers LLaMA folder of the same design (SwiGLU, no biases, plain RoPE), e.g.
to continue training or to evaluate with eval_blimp.py. load.py's load_model(path) calls it for a
folder and checkpoint.py's reader for a file.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import tarfile

from atomic import staged_folder
from checkpoint import (CHECKPOINT_FILE, load_checkpoint, model_from_weights, read_info, stored_tokenizer,
                        write_safetensors)
from model import DTYPES, ModelConfig, Transformer
from model_card import LICENSE, model_card, seen_counts
from hf_tokenizer import load_hf_tokenizer, tokenizer_files
from tokenizer import Tokenizer

# -----------------------------------------------------------------------------
# names: ours (Meta / llama2.c) -> Transformers' LlamaForCausalLM

HF_LAYER_NAMES = {  # inside layers.{i}.
    "attention_norm": "input_layernorm",
    "attention.wq": "self_attn.q_proj",
    "attention.wk": "self_attn.k_proj",
    "attention.wv": "self_attn.v_proj",
    "attention.wo": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "feed_forward.w1": "mlp.gate_proj",
    "feed_forward.w3": "mlp.up_proj",
    "feed_forward.w2": "mlp.down_proj",
}
HF_TOP_NAMES = {"tok_embeddings": "model.embed_tokens", "norm": "model.norm", "output": "lm_head"}
OUR_LAYER_NAMES = {v: k for k, v in HF_LAYER_NAMES.items()}
OUR_TOP_NAMES = {v: k for k, v in HF_TOP_NAMES.items()}

# files the Hub wants in Git LFS: the weights, and tokenizer.json (a tiktoken vocabulary of 100k+ entries
# makes it several MB), a SentencePiece model, a tiktoken file
LFS_PATTERNS = ["*.safetensors", "tokenizer.json", "*.model", "*.tiktoken"]
GITATTRIBUTES = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in LFS_PATTERNS)

# --all: fixed identity and dates, so the same run always gives the same commit ids
GIT_IDENTITY = {"name": "export_hf.py", "email": "export_hf@babylm.invalid", "date": "2026-01-01T00:00:00+00:00"}
MILESTONE = re.compile(r"^chck_(?:tok_)?(\d+)M\.safetensors$")  # words seen; tokens (milestone_unit=tokens)


def hf_name(name: str) -> str:
    """layers.3.attention.wq.weight -> model.layers.3.self_attn.q_proj.weight, and so on."""
    module, _, param = name.rpartition(".")
    if module.startswith("layers."):
        _, i, rest = module.split(".", 2)
        return f"model.layers.{i}.{HF_LAYER_NAMES[rest]}.{param}"
    return f"{HF_TOP_NAMES[module]}.{param}"


def our_name(name: str) -> str:
    """The inverse of hf_name. KeyError for a name that is not part of a LLaMA of our design."""
    module, _, param = name.rpartition(".")
    if module.startswith("model.layers."):
        _, _, i, rest = module.split(".", 3)
        return f"layers.{i}.{OUR_LAYER_NAMES[rest]}.{param}"
    return f"{OUR_TOP_NAMES[module]}.{param}"


# -----------------------------------------------------------------------------
# the folder's files


def hf_config(cfg: ModelConfig, tokenizer: Tokenizer, dtype: str) -> dict:
    """config.json for LlamaForCausalLM. Every field is written, so nothing depends on the defaults
    of the Transformers version that reads it: 4.x reads rope_theta / rope_scaling / torch_dtype,
    5.x reads rope_parameters and takes torch_dtype as dtype."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.dim,
        "intermediate_size": cfg.hidden_dim,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads,
        "head_dim": cfg.head_dim,
        "max_position_embeddings": cfg.max_seq_len,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,
        "rope_scaling": None,
        "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta},
        "hidden_act": "silu",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "tie_word_embeddings": cfg.tie_embeddings,
        "bos_token_id": tokenizer.bos_id,
        "eos_token_id": tokenizer.eos_id,
        "pad_token_id": tokenizer.pad_id,
        "torch_dtype": dtype,
        "initializer_range": 0.02,
        "pretraining_tp": 1,
        "use_cache": True,
    }


def hf_state_dict(model: Transformer, dtype: str) -> dict:
    """Our state dict under Transformers' names, in dtype, contiguous, on the CPU."""
    out = {}
    for name, t in model.state_dict().items():
        name = name.removeprefix("_orig_mod.")  # a torch.compile'd model
        if name == "output.weight" and model.cfg.tie_embeddings:
            continue  # tied: Transformers rebuilds lm_head from embed_tokens
        out[hf_name(name)] = t.detach().to("cpu", DTYPES[dtype]).contiguous()
    return out


def write_folder(model: Transformer, tokenizer: Tokenizer, folder: str, dtype: str = "float32",
                 card_info: dict = None):
    """Write the export's files into folder (which exists). export() and --all call this."""
    check_dtype(dtype)
    cfg = model.cfg
    files = tokenizer_files(tokenizer, cfg.max_seq_len)  # first: an unexportable tokenizer fails early
    files["config.json"] = json.dumps(hf_config(cfg, tokenizer, dtype), indent=2)
    files["generation_config.json"] = json.dumps({  # generate() stops at the next document's BOS too
        "bos_token_id": tokenizer.bos_id, "eos_token_id": list(tokenizer.end_ids),
        "pad_token_id": tokenizer.pad_id, "do_sample": False}, indent=2)
    files["README.md"] = model_card(model, dtype, card_info or {})
    if (card_info or {}).get("eval") is not None:
        files["eval_results.json"] = json.dumps(card_info["eval"], indent=2)
    write_safetensors(hf_state_dict(model, dtype), os.path.join(folder, "model.safetensors"), {"format": "pt"})
    for name, text in files.items():
        if isinstance(text, bytes):  # a tokenizer's own file, as it is
            with open(os.path.join(folder, name), "wb") as f:
                f.write(text)
            continue
        with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            f.write(text + "\n")
    for name in os.listdir(folder):  # safetensors writes 0600; an export is for sharing
        if os.path.isfile(os.path.join(folder, name)):
            os.chmod(os.path.join(folder, name), 0o644)


def check_dtype(dtype: str):
    if dtype not in DTYPES:
        raise SystemExit(f"--dtype {dtype!r}: expected one of {', '.join(DTYPES)}")


def export(model: Transformer, tokenizer: Tokenizer, out_dir: str, dtype: str = "float32",
           card_info: dict = None, force: bool = False):
    """Write model and tokenizer to out_dir as a Transformers LlamaForCausalLM folder.

    card_info: what model_card.model_card reads (all optional); "eval" also goes to eval_results.json.
    """
    card_info = {"name": os.path.basename(os.path.abspath(out_dir)), "bos_id": tokenizer.bos_id,
                 "bos_input": tokenizer.bos_input, **(card_info or {})}
    with staging(out_dir, force) as tmp:
        write_folder(model, tokenizer, tmp, dtype, card_info)


def staging(out_dir: str, force: bool, keep=()):
    """A staged_folder for out_dir, after checking that out_dir may be replaced (check_out_dir)."""
    check_out_dir(os.path.abspath(out_dir), force, keep)
    return staged_folder(out_dir)


def check_out_dir(out: str, force: bool, keep=()):
    """Refuse a non-empty out without force; with force, replace only an earlier export (config.json
    and model.safetensors), never the folder we run in nor one holding the input (paths in keep)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise SystemExit(f"{out}: exists and is not a folder")
    if not (os.path.isdir(out) and os.listdir(out)):
        return
    if not force:
        raise SystemExit(f"{out}: exists and is not empty (use --force to replace it)")
    inside = [p for p in (os.getcwd(), *keep) if os.path.commonpath([out, os.path.abspath(p)]) == out]
    if inside:
        raise SystemExit(f"{out}: will not replace a folder that holds {inside[0]}")
    if not all(os.path.isfile(os.path.join(out, f)) for f in ("config.json", "model.safetensors")):
        raise SystemExit(f"{out}: --force replaces only an earlier export, and this folder holds no "
                         f"config.json + model.safetensors; remove it yourself if it should go")
    others = sorted(set(os.listdir(out)) - EXPORT_FILES)
    if others:  # the swap would delete them with the old export
        raise SystemExit(f"{out}: --force replaces only what an export writes, and this folder also holds "
                         f"{', '.join(others[:3])}{' ...' if len(others) > 3 else ''}; move them out first")


# what write_folder and --all write: the only names --force may delete
EXPORT_FILES = {"config.json", "generation_config.json", "model.safetensors", "README.md", "eval_results.json",
                "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                "tokenizer.tiktoken", ".git", ".gitattributes"}


# -----------------------------------------------------------------------------
# from a checkpoint file, and --all


def load_for_export(path: str):
    """(model, tokenizer, card_info) from a train.py checkpoint; one-line errors naming the file."""
    model, ckpt = load_checkpoint(path, "cpu")  # checkpoint.py's reader: one line for a bad file
    tokenizer = stored_tokenizer(path, ckpt)
    if tokenizer is None:
        raise SystemExit(f"{path}: the checkpoint holds no tokenizer, so there is nothing to export it with")
    info = {k: ckpt.get(k) for k in ("config", "data_meta", "mixer", "tokens_seen", "words_seen", "iter_num", "weights")}
    info["bos_id"], info["bos_input"] = tokenizer.bos_id, tokenizer.bos_input
    return model, tokenizer, info


def read_eval(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"{path}: not a readable JSON result ({type(e).__name__}: {str(e)[:120]})")


def export_checkpoint(ckpt_path: str, out_dir: str, dtype: str = "float32", eval_path: str = None,
                      force: bool = False, license: str = LICENSE):
    check_dtype(dtype)
    check_out_dir(os.path.abspath(out_dir), force, keep=[ckpt_path])  # before the (slow) checkpoint load
    evals = read_eval(eval_path) if eval_path else None
    model, tokenizer, info = load_for_export(ckpt_path)
    info.update(eval=evals, name=os.path.basename(os.path.abspath(out_dir)), license=license)
    with staging(out_dir, force, keep=[ckpt_path]) as tmp:
        write_folder(model, tokenizer, tmp, dtype, info)
    print(f"{out_dir}: exported {ckpt_path} ({model.num_params():,} parameters, {dtype})")


def checkpoint_counters(path: str) -> dict:
    """words_seen / tokens_seen of a checkpoint, read without loading its tensors."""
    info = read_info(path)
    return {"words_seen": info.get("words_seen"), "tokens_seen": info.get("tokens_seen")}


def run_git(repo: str, *args):
    """git in repo only (explicit --git-dir / --work-tree), with a fixed identity and no user config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull,
               GIT_AUTHOR_NAME=GIT_IDENTITY["name"], GIT_AUTHOR_EMAIL=GIT_IDENTITY["email"],
               GIT_AUTHOR_DATE=GIT_IDENTITY["date"], GIT_COMMITTER_NAME=GIT_IDENTITY["name"],
               GIT_COMMITTER_EMAIL=GIT_IDENTITY["email"], GIT_COMMITTER_DATE=GIT_IDENTITY["date"])
    cmd = ["git", f"--git-dir={os.path.join(repo, '.git')}", f"--work-tree={repo}", *args]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{repo}: `git {' '.join(args)}` failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
    return r.stdout.strip()


def export_all(run_dir: str, out_dir: str, dtype: str = "float32", eval_path: str = None,
               force: bool = False, license: str = LICENSE):
    """One git repository in out_dir: a branch per milestone checkpoint, the final model on main."""
    check_dtype(dtype)
    if shutil.which("git") is None:
        raise SystemExit("git: not found; --all needs the git command line tool")
    final = os.path.join(run_dir, CHECKPOINT_FILE)
    if not os.path.isfile(final):
        raise SystemExit(f"{run_dir}: no {CHECKPOINT_FILE} (the final model, for main); is this a train.py run folder?")
    ck_dir = os.path.join(run_dir, "checkpoints")
    names = os.listdir(ck_dir) if os.path.isdir(ck_dir) else []
    milestones = sorted((int(m.group(1)), n) for n in names if (m := MILESTONE.match(n)))
    check_out_dir(os.path.abspath(out_dir), force, keep=[run_dir])
    evals = read_eval(eval_path) if eval_path else None
    repo_name = os.path.basename(os.path.abspath(out_dir))

    # every branch's card lists all branches, so read the counters of every checkpoint first
    steps = [(n[:-len(".safetensors")], os.path.join(ck_dir, n)) for _, n in milestones] + [("main", final)]
    branches = [{"name": b, **checkpoint_counters(path)} for b, path in steps[:-1]]

    with staging(out_dir, force, keep=[run_dir]) as repo:
        run_git(repo, "init", "-q", "--template=", "--initial-branch=main")
        final_model, final_tok, final_info = load_for_export(final)
        for branch, path in steps:
            if branch == "main":
                model, tokenizer, info = final_model, final_tok, final_info
                info["eval"] = evals
            else:  # milestone checkpoints may leave out data_meta: the run's data are the final model's
                model, tokenizer, info = load_for_export(path)
                info["data_meta"] = info.get("data_meta") or final_info.get("data_meta")
            info.update(name=repo_name, branches=branches, license=license, revision=branch)
            for f in os.listdir(repo):  # the previous commit's files
                if f != ".git":
                    os.remove(os.path.join(repo, f))
            write_folder(model, tokenizer, repo, dtype, info)
            with open(os.path.join(repo, ".gitattributes"), "w") as f:
                f.write(GITATTRIBUTES)
            run_git(repo, "add", "-A")
            seen = seen_counts(info)
            run_git(repo, "commit", "-q", "--no-verify", "--no-gpg-sign", "-m",
                    f"{branch}: {os.path.relpath(path, run_dir)}" + (f" ({seen} seen)" if seen else ""))
            if branch != "main":
                run_git(repo, "branch", branch)
            print(f"{out_dir}: {branch:>10} <- {path} ({run_git(repo, 'rev-parse', '--short', 'HEAD')})")
    print(f"{out_dir}: git repository with {len(branches)} checkpoint branches and main; before "
          f"`git push --all` to the Hub: git lfs migrate import --everything --include=\"{','.join(LFS_PATTERNS)}\" "
          f"(or upload with --push REPO)")


# -----------------------------------------------------------------------------
# --push: the Hub through huggingface_hub


def hub_api():
    """huggingface_hub's HfApi with the user's token (HF_TOKEN, or the one `hf auth login` stored)."""
    try:
        from huggingface_hub import HfApi, get_token
    except ImportError:
        raise SystemExit("--push needs huggingface_hub: pip install huggingface_hub (or push with git: --all)")
    token = get_token()
    if not token:
        raise SystemExit("--push: no Hugging Face token; set HF_TOKEN or run `hf auth login`")
    return HfApi(token=token)


def revisions(folder: str) -> list:
    """[(revision, message)] to upload from folder: an --all repository's milestone branches in order and
    then main; a plain export folder is main alone."""
    if not os.path.isdir(os.path.join(folder, ".git")):
        return [("main", f"{os.path.basename(os.path.abspath(folder))}: export_hf.py")]
    names = run_git(folder, "for-each-ref", "--format=%(refname:short)", "refs/heads").split()
    order = sorted((int(m.group(1)), n) for n in names if (m := MILESTONE.match(n + ".safetensors")))
    return [(n, run_git(folder, "log", "-1", "--format=%s", n)) for _, n in order] + \
        [("main", run_git(folder, "log", "-1", "--format=%s", "main"))]


def push(folder: str, repo_id: str, api=None):
    """Upload an export folder to main of repo_id, or an --all repository branch by branch (each milestone
    to the revision of its name, created if missing, then main). Every revision ends up holding exactly the
    branch's files: delete_patterns="*" removes what an earlier upload left (upload_folder keeps the files
    it uploads, and never deletes .gitattributes)."""
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise SystemExit(f"{folder}: not an export (no config.json) to push")
    import tempfile
    api = api or hub_api()
    api.create_repo(repo_id, repo_type="model", exist_ok=True)
    steps = revisions(folder)
    for branch, message in steps:
        if len(steps) == 1:  # a plain folder, as it is
            api.upload_folder(repo_id=repo_id, folder_path=folder, revision=branch, commit_message=message,
                              delete_patterns="*")
        else:  # the branch's files, out of git
            with tempfile.TemporaryDirectory(prefix="export_hf_push_") as tmp:
                tar = os.path.join(tmp, "branch.tar")
                run_git(folder, "archive", "--format=tar", f"--output={tar}", branch)
                files = os.path.join(tmp, "files")
                with tarfile.open(tar) as t:
                    t.extractall(files, filter="data")
                if branch != "main":
                    api.create_branch(repo_id, branch=branch, exist_ok=True)
                api.upload_folder(repo_id=repo_id, folder_path=files, revision=branch, commit_message=message,
                                  delete_patterns="*")
        print(f"https://huggingface.co/{repo_id}: {branch} <- {folder}")


# -----------------------------------------------------------------------------
# the way back


def load_hf(folder: str, device="cpu"):
    """Build our Transformer and Tokenizer from a Transformers LLaMA folder (our export, or any
    LlamaForCausalLM of the same design saved by save_pretrained). Returns (model, tokenizer)."""
    path = os.path.join(folder, "config.json")
    if not os.path.isfile(path):
        raise SystemExit(f"{folder}: no config.json (not a Transformers model folder)")
    try:
        with open(path, encoding="utf-8") as f:
            c = json.load(f)
        return hf_model(folder, path, c, device), load_hf_tokenizer(folder)
    except (KeyError, TypeError, ValueError, AttributeError) as e:  # a missing key, a string where a number goes
        raise SystemExit(f"{path}: not a usable LLaMA config.json ({type(e).__name__}: {str(e)[:120]})")


def hf_model(folder: str, path: str, c: dict, device):
    """Our Transformer from a Transformers LLaMA folder whose config.json (at path) reads as c."""
    from safetensors.torch import load_file
    if c.get("model_type") != "llama":
        raise SystemExit(f"{path}: model_type {c.get('model_type')!r}, expected 'llama'")
    rope = c.get("rope_parameters") or c.get("rope_scaling") or {}
    n_heads = c["num_attention_heads"]
    problems = [p for p, bad in [
        (f"hidden_act {c.get('hidden_act')!r} (ours is silu)", c.get("hidden_act", "silu") != "silu"),
        ("attention_bias", c.get("attention_bias", False)), ("mlp_bias", c.get("mlp_bias", False)),
        (f"rope type {rope.get('rope_type', rope.get('type'))!r} (ours is plain RoPE)",
         rope.get("rope_type", rope.get("type", "default")) != "default"),
        (f"head_dim {c.get('head_dim')} != hidden_size / num_attention_heads",
         c.get("head_dim") not in (None, c["hidden_size"] // n_heads)),
    ] if bad]
    if problems:
        raise SystemExit(f"{path}: not a LLaMA our model.py can hold: {'; '.join(problems)}")
    cfg = ModelConfig(dim=c["hidden_size"], n_layers=c["num_hidden_layers"], n_heads=n_heads,
                      n_kv_heads=c.get("num_key_value_heads") or n_heads, hidden_dim=c["intermediate_size"],
                      vocab_size=c["vocab_size"], max_seq_len=c["max_position_embeddings"],
                      norm_eps=c.get("rms_norm_eps", 1e-6),
                      rope_theta=float(rope.get("rope_theta", c.get("rope_theta", 10000.0))),
                      tie_embeddings=bool(c.get("tie_word_embeddings", True)))

    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.isfile(os.path.join(folder, "model.safetensors")):
        files = ["model.safetensors"]
    elif os.path.isfile(index):  # sharded
        with open(index, encoding="utf-8") as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        for name in files:  # weight files lie inside the folder: no "../../x" and no absolute path
            if not isinstance(name, str) or os.path.basename(name) != name or name in ("", ".", ".."):
                raise SystemExit(f"{index}: names {name!r}; the weight files must be plain names inside {folder}")
    else:
        raise SystemExit(f"{folder}: no model.safetensors (export with safetensors; .bin is not read)")
    sd = {}
    for name in files:
        try:
            tensors = load_file(os.path.join(folder, name))
        except Exception as e:  # truncated, or not safetensors at all: a pickle is never unpickled
            raise SystemExit(f"{folder}/{name}: not a readable safetensors file ({type(e).__name__}: {str(e)[:120]})")
        for k, t in tensors.items():
            if k.endswith("rotary_emb.inv_freq"):
                continue  # older Transformers saved RoPE frequencies; ours are derived from the config
            try:
                sd[our_name(k)] = t.float()
            except KeyError:
                raise SystemExit(f"{folder}/{name}: unexpected tensor {k!r} for a LLaMA of our design")
    return model_from_weights(cfg, sd, folder, "config.json").to(device)


# -----------------------------------------------------------------------------


def main(argv=None):
    p = argparse.ArgumentParser(description="Export a checkpoint to a Transformers LlamaForCausalLM folder.")
    p.add_argument("ckpt", help="checkpoint file (or, with --all, the run folder; with --push alone, an earlier export)")
    p.add_argument("out", nargs="?", help="output folder (with --all: the git repository to create)")
    p.add_argument("--all", action="store_true", help="RUN_DIR: milestone checkpoints as branches, ckpt.safetensors on main")
    p.add_argument("--dtype", default="float32", choices=list(DTYPES))
    p.add_argument("--eval", default=None, help="result JSON (eval_blimp.py --out) for the model card")
    p.add_argument("--force", action="store_true", help="replace an earlier export in out")
    p.add_argument("--license", default=LICENSE, help=f"license named in the model card (default {LICENSE})")
    p.add_argument("--push", metavar="REPO", help="upload to the Hub repository REPO (user/name) with huggingface_hub")
    a = p.parse_args(argv)
    if a.out is None:  # export_hf.py FOLDER --push REPO: upload an earlier export
        if not a.push:
            p.error("the output folder is missing (or give --push REPO to upload the folder CKPT)")
        return push(a.ckpt, a.push)
    api = hub_api() if a.push else None  # no token: fail before the (slow) export
    try:
        if a.all:
            export_all(a.ckpt, a.out, a.dtype, a.eval, a.force, a.license)
        else:
            export_checkpoint(a.ckpt, a.out, a.dtype, a.eval, a.force, a.license)
    except OSError as e:  # a full disk: the staged folder is gone, an earlier export untouched
        raise SystemExit(f"{a.out}: cannot write the export ({e.strerror or e})")
    if a.push:
        push(a.out, a.push, api)


if __name__ == "__main__":
    main()
