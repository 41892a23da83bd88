"""
Checkpoints: what train.py saves, and how it is read back.

    from checkpoint import load_checkpoint, stored_tokenizer
    model, info = load_checkpoint("out/model_a/ckpt.safetensors")
    tokenizer = stored_tokenizer("out/model_a/ckpt.safetensors", info)   # None when it holds none

To use a model, load.py's load_model(path) reads a checkpoint file or an exported folder alike.

A checkpoint is one safetensors file (Hugging Face's format: a JSON header, then raw tensor bytes).
Reading it parses that header and copies bytes; unlike a pickle (torch.save), it cannot run code,
so a checkpoint from somebody else is safe to open. It holds

    tensors   model.<name>                 the weights (output.weight left out when tied)
              optimizer.<i>.<key>          AdamW's moments and step of parameter i   } resumable
              rng.torch, rng.cuda.<d>,     the random generators' states             } checkpoints
              rng.numpy_keys                                                         } only
              average.<name>               the weight average, with ema_decay        }
    metadata  "format"                     FORMAT
              "info"                       JSON: model_config, config, tokenizer, data_meta,
                                           iter_num, tokens_seen, words_seen
              "train_state"                JSON: the optimizer's hyperparameters, the grad scaler,
                                           the batch source's state, the rest of numpy's RNG state

train.py writes out_dir/ckpt.safetensors (resumable, replaced at every evaluation) and, at BabyLM's
milestones, out_dir/checkpoints/chck_{N}M.safetensors (weights and info only); with ema_decay, also
out_dir/ema.safetensors (the weight average's weights and info, written beside each ckpt.safetensors).

Every file is written atomically (atomic.py): a crash or Ctrl-C at any moment leaves the old file
or the new one, never half of one.
"""

import json
import os

import numpy as np
import torch

from atomic import atomic_path
from model import ModelConfig, Transformer
from tokenizer import Tokenizer

FORMAT = "babylm-llama-checkpoint/1"
CHECKPOINT_FILE = "ckpt.safetensors"
EMA_FILE = "ema.safetensors"  # train.py's weight average (ema_decay), weights and info only

# BabyLM's checkpoint schedule: 1M..10M by 1M, 20M..100M by 10M, 200M..1000M by 100M
MILESTONES = [m * 10**6 for m in list(range(1, 10)) + list(range(10, 100, 10)) + list(range(100, 1001, 100))]


def milestone_name(count: int) -> str:
    """10**6 -> "chck_1M": the branch names the BabyLM evaluation pulls (revision="chck_1M")."""
    return f"chck_{count / 10**6:g}M"


# ----------------------------------------------------------------------------- random generators

def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict):
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------- writing

def save_checkpoint(path: str, model: Transformer, info: dict, train_state: dict = None):
    """Write model's weights and info (JSON-able) to path; with train_state (keys optimizer,
    scaler, sampler, rng: the state_dicts of train.py's objects; average: the model train.py's
    WeightAverage keeps, or None) the checkpoint can be resumed."""
    tensors = weight_tensors(model, "model.")
    metadata = {"format": FORMAT, "info": json.dumps(info, default=_plain)}
    if train_state is not None:
        if train_state.get("average") is not None:  # train.WeightAverage's model: resumed with the run
            tensors.update(weight_tensors(train_state["average"], "average."))
        opt = train_state["optimizer"]
        scalars = {}
        for i, state in opt["state"].items():
            for key, value in state.items():
                if torch.is_tensor(value):
                    tensors[f"optimizer.{i}.{key}"] = value.detach().contiguous()
                else:
                    scalars.setdefault(str(i), {})[key] = value
        rng = train_state["rng"]
        tensors["rng.torch"] = rng["torch"]
        for d, s in enumerate(rng.get("cuda", [])):
            tensors[f"rng.cuda.{d}"] = s
        kind, keys, pos, has_gauss, cached = rng["numpy"]
        tensors["rng.numpy_keys"] = torch.from_numpy(keys.astype(np.int64))
        metadata["train_state"] = json.dumps({
            "optimizer_groups": opt["param_groups"], "optimizer_scalars": scalars,
            "scaler": train_state["scaler"], "sampler": train_state["sampler"],
            "numpy_rng": [kind, int(pos), int(has_gauss), float(cached)]}, default=_plain)
    tensors = {k: v.to("cpu") for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        write_safetensors(tensors, tmp, metadata)


def weight_tensors(model: Transformer, prefix: str) -> dict:
    """{prefix + name: tensor} of model's weights; a tied output matrix is stored once."""
    tied = model.cfg.tie_embeddings
    return {prefix + k: v.detach().contiguous() for k, v in model.state_dict().items()
            if not (tied and k == "output.weight")}


def write_safetensors(tensors: dict, path: str, metadata: dict = None):
    """safetensors' save_file, whose I/O errors (a full disk, a read-only file system) are its own
    SafetensorError: raised here as the OSError they are, so callers catch one kind of error."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file
    try:
        save_file(tensors, path, metadata=metadata)
    except SafetensorError as e:
        raise OSError(str(e).split("I/O error: ")[-1]) from e


def _plain(x):
    """JSON for the numpy scalars and tuples that state dicts hold."""
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, tuple):
        return list(x)
    raise TypeError(f"{type(x).__name__} is not JSON-serialisable")


# ----------------------------------------------------------------------------- reading

def read_info(path: str) -> dict:
    """The checkpoint's info (see the module docstring) without reading any tensor."""
    return _open(path, "cpu")[1]


def _open(path: str, device):
    """(safe_open handle, info, metadata) with one-line errors naming the file."""
    from safetensors import safe_open
    if not os.path.isfile(path):
        raise SystemExit(f"{path}: no such checkpoint file")
    try:
        f = safe_open(path, framework="pt", device=str(device))
        metadata = f.metadata() or {}
    except Exception as e:  # a truncated file, a pickle (.pt), anything that is not safetensors
        raise SystemExit(f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e)[:120]}); "
                         f"train.py writes safetensors checkpoints")
    if metadata.get("format") != FORMAT:
        raise SystemExit(f"{path}: not a checkpoint written by train.py (no format {FORMAT!r} in its metadata)")
    try:
        info = json.loads(metadata["info"])
        model_config = ModelConfig(**info["model_config"])
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise SystemExit(f"{path}: damaged checkpoint metadata ({type(e).__name__}: {str(e)[:120]})")
    for key in ("iter_num", "tokens_seen", "words_seen"):  # where the run is: present in every train.py checkpoint
        value = info.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 \
                or (key != "words_seen" and not isinstance(value, int)):
            raise SystemExit(f"{path}: damaged checkpoint metadata ({key}={value!r}, expected a count >= 0)")
    info["model_config"] = model_config
    return f, info, metadata


def load_checkpoint(path: str, device="cpu"):
    """(model, info) from a train.py checkpoint; info["model_config"] is a ModelConfig."""
    weights, info = read_weights(path, device)
    model = Transformer(info["model_config"])
    model.load_state_dict(weights)
    return model.to(device), info


def read_weights(path: str, device="cpu"):
    """({name: tensor}, info) of a train.py checkpoint, checked against its model_config (check_weights),
    without building a model: train.py's resume loads them into the model it built."""
    f, info, _ = _open(path, device)
    try:
        weights = {k[len("model."):]: f.get_tensor(k) for k in f.keys() if k.startswith("model.")}
    except Exception as e:
        raise SystemExit(f"{path}: damaged checkpoint ({type(e).__name__}: {str(e)[:120]})")
    check_weights(info["model_config"], weights, path, "the stored model_config")
    return weights, info


def stored_tokenizer(path: str, info: dict):
    """The Tokenizer stored in a checkpoint's info, or None when it holds none; one line naming the
    file when it cannot be read."""
    stored = info.get("tokenizer")
    if not stored:
        return None
    try:
        return Tokenizer.from_dict(stored)
    except Exception as e:
        raise SystemExit(f"{path}: the checkpoint's {stored.get('backend')} tokenizer is not readable "
                         f"({type(e).__name__}: {str(e)[:120]})")


def model_from_weights(cfg: ModelConfig, weights: dict, path: str, config_name: str) -> Transformer:
    """Our Transformer with these weights (a tied output matrix may be left out); one line naming
    the file when they do not fit the config (check_weights)."""
    check_weights(cfg, weights, path, config_name)
    model = Transformer(cfg)
    model.load_state_dict(weights)
    return model


def check_weights(cfg: ModelConfig, weights: dict, path: str, config_name: str):
    """One line naming the file unless weights are exactly what a model of cfg holds: the names and
    shapes of a model built on the "meta" device (shapes, no memory: a config that claims more than
    the file holds is refused, not allocated), float32, finite. A tied output matrix may be left out
    (it is added as the embedding's)."""
    if cfg.tie_embeddings and "tok_embeddings.weight" in weights:
        weights["output.weight"] = weights["tok_embeddings.weight"]
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in Transformer(cfg).state_dict().items()}
    missing, extra = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
    if missing or extra:
        raise SystemExit(f"{path}: weights do not fit {config_name}: "
                         + (f"missing {', '.join(missing[:3])}" if missing else f"unexpected {', '.join(extra[:3])}"))
    for k, shape in expected.items():
        if tuple(weights[k].shape) != shape:
            raise SystemExit(f"{path}: weights do not fit {config_name}: {k} is {tuple(weights[k].shape)}, "
                             f"the config says {shape}")
        if weights[k].dtype != torch.float32:  # train.py keeps and saves float32 weights whatever it computes in
            raise SystemExit(f"{path}: {k} holds {str(weights[k].dtype).replace('torch.', '')}, not float32 weights")
        if not torch.isfinite(weights[k]).all():  # train.py never saves one: a damaged or diverged model
            raise SystemExit(f"{path}: {k} holds NaN or inf; a model with them cannot be scored, sampled or exported")


def load_train_state(path: str, device="cpu") -> dict:
    """What save_checkpoint's train_state held, rebuilt: optimizer, scaler, sampler, rng."""
    f, info, metadata = _open(path, device)
    if "train_state" not in metadata:
        raise SystemExit(f"{path}: holds weights only (a milestone checkpoint?), not a run to resume; "
                         f"start a new run from it with --init_from={path}")
    missing = [key for key in ("iter_num", "tokens_seen", "words_seen") if key not in info]
    if missing:
        raise SystemExit(f"{path}: damaged checkpoint metadata (no {', '.join(missing)}: where the run stopped)")
    try:
        meta = json.loads(metadata["train_state"])
        keys = set(f.keys())
        groups = meta["optimizer_groups"]
        for g in groups:
            g["betas"] = tuple(g["betas"])
        state = {}
        for g in groups:
            for i in g["params"]:
                entry = dict(meta["optimizer_scalars"].get(str(i), {}))
                prefix = f"optimizer.{i}."
                entry.update({k[len(prefix):]: f.get_tensor(k) for k in keys if k.startswith(prefix)})
                if entry:
                    state[i] = entry
        kind, pos, has_gauss, cached = meta["numpy_rng"]
        rng = {"torch": f.get_tensor("rng.torch").cpu(),
               "numpy": (kind, f.get_tensor("rng.numpy_keys").cpu().numpy().astype(np.uint32), pos, has_gauss, cached)}
        cuda = sorted((k for k in keys if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))
        if cuda:
            rng["cuda"] = [f.get_tensor(k).cpu() for k in cuda]
        check_train_state(path, state, groups, rng)
        average = {k[len("average."):]: f.get_tensor(k) for k in keys if k.startswith("average.")}
        if average:
            check_weights(info["model_config"], average, path, "the stored model_config (the weight average)")
        return {"optimizer": {"state": state, "param_groups": groups}, "scaler": meta["scaler"],
                "sampler": meta["sampler"], "rng": rng, "average": average or None}
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise SystemExit(f"{path}: damaged training state ({type(e).__name__}: {str(e)[:120]})")


ADAMW_STATE = {"step", "exp_avg", "exp_avg_sq"}


def check_train_state(path: str, state: dict, groups: list, rng: dict):
    """What load_train_state read is whole: every parameter has all of AdamW's state or none has
    any (a run saved before its first step), and the random generators' states have their sizes."""
    params = [i for g in groups for i in g["params"]]
    for i in params if state else ():
        if set(state.get(i, {})) < ADAMW_STATE:
            raise SystemExit(f"{path}: damaged training state (parameter {i} lacks AdamW's "
                             f"{', '.join(sorted(ADAMW_STATE - set(state.get(i, {}))))})")
    if rng["torch"].dtype != torch.uint8 or rng["torch"].numel() != torch.get_rng_state().numel():
        raise SystemExit(f"{path}: damaged training state (rng.torch has {rng['torch'].numel()} bytes, "
                         f"expected {torch.get_rng_state().numel()})")
    if rng["numpy"][1].shape != (624,) or not 0 <= rng["numpy"][2] <= 624:  # MT19937: 624 words and a position
        raise SystemExit(f"{path}: damaged training state (numpy's generator state is not MT19937's 624 words)")


# ----------------------------------------------------------------------------- into a run (train.py)

def write_checkpoint(path: str, model, info: dict, state, ranks):
    """checkpoint.save_checkpoint, and with a weight average in state, out_dir/ema.safetensors first (so it
    is never behind the checkpoint); a full disk is one line (the temporary file is gone, the last
    checkpoint intact)."""
    try:
        if state is not None and state["average"] is not None:
            save_checkpoint(os.path.join(os.path.dirname(path), EMA_FILE), state["average"], {**info, "weights": "ema"})
        save_checkpoint(path, model, info, state)
    except OSError as e:
        raise SystemExit(f"{path}: cannot write the checkpoint ({e.strerror or e}); {ranks.last_checkpoint()}")


def check_moments(saved: dict, optimizer, path: str):
    """The saved AdamW state fits this model's optimizer: the same parameter groups, and each moment
    the shape of its parameter (load_state_dict checks neither shape, and a wrong one fails steps later)."""
    groups = saved["param_groups"]
    if [len(g["params"]) for g in groups] != [len(g["params"]) for g in optimizer.param_groups]:
        raise SystemExit(f"{path}: damaged training state (its optimizer has parameter groups of "
                         f"{[len(g['params']) for g in groups]}, this model's {[len(g['params']) for g in optimizer.param_groups]})")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for i, p in zip((i for g in groups for i in g["params"]), params):
        for key in ("exp_avg", "exp_avg_sq"):
            moment = saved["state"].get(i, {}).get(key)
            if moment is not None and moment.shape != p.shape:
                raise SystemExit(f"{path}: damaged training state (parameter {i}'s {key} is {tuple(moment.shape)}, "
                                 f"the parameter {tuple(p.shape)})")


def same_tokenizer(theirs, ours, path: str, flag: str):
    """Weights learnt with one tokenizer read other text through another's ids (a same-sized vocabulary
    hides it): stop unless the data's tokenizer is the checkpoint's (file and BOS rule)."""
    if theirs is None or (theirs.sha256, theirs.bos_input) == (ours.sha256, ours.bos_input):
        return
    hint = " (or --init_from_other_tokenizer to start from them anyway)" if flag == "--init_from" else ""
    raise SystemExit(f"{path}: trained with another tokenizer than data_dir's (sha256 {theirs.sha256[:12]}, bos_input "
                     f"{theirs.bos_input}; the data's: {ours.sha256[:12]}, {ours.bos_input}): {flag} needs the same "
                     f"tokenizer{hint}")


def load_weights(model, weights: dict, their_cfg: ModelConfig, path: str):
    """Copy weights into model, once we know they compute the function that model's config describes
    (ModelConfig.architecture: dropout, init and flash may differ)."""
    mine, theirs = model.cfg.architecture(), their_cfg.architecture()
    if mine != theirs:
        diff = ", ".join(f"{k}: config {v}, checkpoint {theirs[k]}" for k, v in mine.items() if theirs[k] != v)
        raise SystemExit(f"{path}: checkpoint has another architecture than the config ({diff})")
    if model.cfg.tie_embeddings:
        weights.setdefault("output.weight", weights["tok_embeddings.weight"])
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise SystemExit(f"{path}: weights do not fit the stored model_config: {str(e).splitlines()[0]}")
