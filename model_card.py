"""
The README.md of an exported model: a model card in the shape of the BabyLM cards.

    python export_hf.py out/ckpt.safetensors exports/model_a    # writes exports/model_a/README.md

    from model_card import model_card
    text = model_card(model, "float32", info)                   # info: see model_card's docstring

Sections: model details, uses, training data and budget, data mixing (a run with mixer.py), training
hyperparameters, checkpoints (the BabyLM branches of export_hf.py --all), evaluation, architecture
(our names next to Transformers'), usage, license. A section whose numbers the checkpoint does not
carry says so instead of being left out, so every card has the same headings.

The YAML front matter carries what the Hub reads: language, license, tags (the BabyLM track among them),
`model-index` (each evaluated suite's headline accuracy, so the Hub shows the scores), and a `babylm`
block (track, words and tokens seen, this revision, the checkpoint branches), which the Hub keeps as it is.
Strings are written as JSON strings, which YAML reads as they are.

Whether the model reads <s> before a document (info["bos_input"], the tokenizer's bos_input) decides
what the card says about the tokenizer and about scoring; lm_eval_note says what lm-eval does with it.
"""

import json


from model import Transformer

LICENSE = "apache-2.0"  # of the code and these weights; the training data keep their own licenses
ISO_639_1 = {"eng": "en", "nld": "nl", "zho": "zh", "deu": "de", "fra": "fr", "spa": "es"}  # the Hub's language tags
MAX_EVAL_ROWS = 60  # the card's evaluation table; eval_results.json holds all of it


def model_card(model: Transformer, dtype: str, info: dict) -> str:
    """README.md for an export. info (every key optional): "name" (the repository, for the usage
    snippet), "config" (the training config dict), "data_meta" (meta.json), "mixer" (Mixer.summary()),
    "words_seen", "tokens_seen", "iter_num", "eval" (a result dict), "branches" (dicts with "name",
    "words_seen", "tokens_seen"), "revision" (this one's branch), "license", "bos_id", "bos_input" (whether
    the model reads <s> first; default True), "weights" ("ema": the run's moving average). The BabyLM track is the training config's "track", if any."""
    sections = [front_matter(model, dtype, info), training_data(info), data_mixing(info.get("mixer")),
                hyperparameters(info.get("config")), checkpoints(info), evaluation(info.get("eval"), info),
                architecture(model), usage(info),
                ["## License", "", f"{info.get('license', LICENSE)} for the weights and the code. The training "
                 "data keep their own licenses (see the data's SOURCES.md).", ""]]
    return "\n".join(line for section in sections for line in section)


def trained_languages(info: dict) -> list:
    """The languages the model was trained on: the mixer's, else every language of the data."""
    if info.get("mixer"):
        return list(info["mixer"]["pi"])
    return list((info.get("data_meta") or {}).get("languages", {}))


def front_matter(model: Transformer, dtype: str, info: dict) -> list:
    """The Hub's YAML header, the title, one paragraph, and the model details."""
    langs, n_params = trained_languages(info), model.num_params()
    lines = ["---"]
    if langs:
        lines += ["language:"] + [f"- {ISO_639_1.get(lang, lang)}" for lang in langs]
    revision, track = info.get("revision", "main"), babylm_track(info)
    lines += [f"license: {info.get('license', LICENSE)}", "library_name: transformers", "pipeline_tag: text-generation",
              "tags:", "- babylm", "- llama", "- causal-lm"] + ([f"- {yaml_str('babylm-' + track)}"] if track else [])
    lines += babylm_block(info) + model_index(info) + ["---", "",
              f"# {info.get('name', 'MODEL')}" + (f" at checkpoint `{revision}`" if revision != "main" else ""), "",
              f"A {n_params / 1e6:.1f}M-parameter LLaMA-style causal language model trained from scratch with the "
              f"raw-PyTorch BabyLM trainer (`train.py`), exported with `export_hf.py`."]
    if track:
        lines += ["", f"BabyLM track: **{track}** (the training config's `track`)."]
    if seen_counts(info):
        lines += ["", f"This revision has seen {seen_counts(info)} of training data"
                      + (f" ({info['iter_num']:,} optimizer steps)." if info.get("iter_num") is not None else ".")]
    if info.get("weights") == "ema":  # train.py's ema.safetensors
        decay = (info.get("config") or {}).get("ema_decay")
        lines += ["", "The weights are the run's exponential moving average of its weights"
                      + (f" (`ema_decay` {decay})" if decay else "") + ", not its last weights."]
    lines += ["", "## Model details", "", "| | |", "|---|---|",
              "| Model type | causal (decoder-only) language model, `LlamaForCausalLM` |",
              f"| Parameters | {n_params:,} ({model.num_params(non_embedding=True):,} without the embedding) |",
              f"| Languages | {', '.join(langs) if langs else 'see training data'} |",
              f"| Weights | `model.safetensors`, {dtype} |", "",
              "## Uses", "",
              "A research model for the BabyLM challenge: zero-shot minimal-pair evaluation (BLiMP and its "
              "peers), fine-tuning, and studies of data-efficient learning. Given its size and its small "
              "training set, do not expect fluent or factual text.", ""]
    return lines


def babylm_track(info: dict):
    """The training config's "track" (strict-small, strict, multilingual, ...), or None."""
    track = (info.get("config") or {}).get("track")
    return str(track) if track not in (None, "") else None


def yaml_str(s) -> str:
    """A string as YAML reads it back unchanged: a JSON string (JSON's strings are YAML's double-quoted ones)."""
    return json.dumps(str(s), ensure_ascii=False)


def yaml_number(x) -> str:
    """A number as YAML reads it back: repr keeps every digit of a float; an integral float is written as int."""
    return str(int(x)) if isinstance(x, float) and x.is_integer() else repr(x)


def babylm_block(info: dict) -> list:
    """`babylm:` in the front matter: track, words and tokens seen, this revision, the checkpoint branches."""
    rows = [("track", yaml_str(babylm_track(info)) if babylm_track(info) else None)]
    rows += [(k, yaml_number(round(info[k]))) for k in ("words_seen", "tokens_seen") if info.get(k) is not None]
    rows += [("revision", yaml_str(info.get("revision", "main")))]
    lines = ["babylm:"] + [f"  {k}: {v}" for k, v in rows if v is not None]
    branches = info.get("branches") or []
    if branches:
        lines += ["  checkpoints:"] + [f"  - {yaml_str(b['name'])}" for b in branches]
    return lines


SUITE_NAMES = {"blimp": "BLiMP", "blimp_filtered": "BLiMP (filtered)", "blimp_supplement": "BLiMP supplement",
               "blimp_nl": "BLiMP-NL", "zhoblimp": "ZhoBLiMP", "sling": "SLING"}


def suite_scores(result) -> list:
    """[(suite, headline accuracy, pairs)] of an eval_blimp.py result (its "suites"), in its order."""
    suites = (result or {}).get("suites") if isinstance(result, dict) else None
    if not isinstance(suites, dict):
        return []
    return [(name, r["headline"], (r.get("total") or {}).get("n")) for name, r in suites.items()
            if isinstance(r, dict) and isinstance(r.get("headline"), (int, float))]


def protocol_words(settings: dict) -> str:
    """"protocol `card`, micro average, no BOS" and the like, from eval_blimp.py's settings."""
    s = settings or {}
    return (f"eval_blimp.py protocol `{s.get('protocol', '?')}`, {s.get('headline', '?')} average, "
            + ("conditioned on <s>" if s.get("bos") else "no BOS, first token not scored")
            + (", leading space" if s.get("leading_space") else "") + (", fast subset" if s.get("fast") else ""))


def model_index(info: dict) -> list:
    """The Hub's `model-index` (its evaluation results format): one result per evaluated suite, the headline
    accuracy as it is in the eval JSON. BabyLM's zero-shot minimal pairs are scored by a causal LM's
    log-probabilities, so the task type is text-generation, the pipeline tag of these models."""
    result = info.get("eval")
    scores = suite_scores(result)
    if not scores:
        return []
    lines = ["model-index:", f"- name: {yaml_str(info.get('name', 'MODEL'))}", "  results:"]
    how = protocol_words(result.get("settings"))
    for name, value, _ in scores:
        lines += ["  - task:", "      type: text-generation", "      name: zero-shot minimal pairs",
                  "    dataset:", f"      type: {yaml_str(name)}", f"      name: {yaml_str(SUITE_NAMES.get(name, name))}",
                  "    metrics:", "    - type: accuracy", f"      value: {yaml_number(value)}",
                  f"      name: {yaml_str('accuracy (' + how + ')')}"]
    return lines


def training_data(info: dict) -> list:
    """Per language: words, tokens, bytes, documents, byte premium, sources; the budget; the tokenizer."""
    data = info.get("data_meta")
    if not data:
        return ["## Training data", "", "The checkpoint carries no description of its data (`data_meta`).", ""]
    lines = ["## Training data", "",
             "| language | train words | train tokens | train bytes | documents | byte premium | sources |",
             "|---|---:|---:|---:|---:|---:|---|"]
    total_words, validation_only = 0, []
    for lang, d in data["languages"].items():
        train = d.get("train", {})
        total_words += train.get("words", 0) or 0
        sources = d.get("sources", {})
        # tokenize_data.py --val-file: a source that is the validation split, never trained on
        held_out = [n for n, e in sources.items() if isinstance(e, dict) and e.get("validation_file")]
        validation_only += [(lang, n, sources[n]) for n in held_out]
        lines.append(f"| {lang} | {count(train.get('words'))} | {count(train.get('tokens'))} | "
                     f"{count(train.get('bytes'))} | {count(train.get('documents'))} | {d.get('byte_premium', '')} | "
                     f"{', '.join(n for n in sources if n not in held_out)} |")
    for lang, name, e in validation_only:
        lines += ["", f"Validation only, not trained on ({lang}): `{name}` (`{e.get('file', name)}`, "
                      f"{count(e.get('val_documents', e.get('documents')))} documents), the held-out loss's text."]
    if info.get("mixer"):  # the mixer trains on a budgeted prefix of each language: its own epochs
        epochs = " (the mixer's budget and epochs per language: see Data mixing)"
    elif info.get("words_seen") and total_words:
        epochs = f" (this revision: {info['words_seen'] / total_words:.2f} epochs)"
    else:
        epochs = ""
    tk = data.get("tokenizer", {})
    lines += ["", f"Budget: {total_words:,} training words in total{epochs}. Tokenizer: {tk.get('backend', '?')}, "
                  f"{data.get('vocab_size', '?')} entries (sha256 `{str(tk.get('sha256', '?'))[:16]}…`)."]
    if data.get("command"):
        lines += ["", f"Made with `{data['command']}`."]
    return lines + [""]


def data_mixing(mixer: dict) -> list:
    """A mixer run (info["mixer"] = Mixer.summary()): the update rule and reward, the final pi, and
    per language its unique tokens under the budget, its token exposures and its epochs."""
    if not mixer:
        return []
    langs = list(mixer["pi"])
    if mixer["mixer"] == "static":
        rule = f"`static`: each micro-batch's language is drawn from a fixed π, the prior `{mixer.get('prior')}`."
    else:
        rule = (f"`{mixer['mixer']}` with the reward `{mixer['reward']}` (prior `{mixer.get('prior')}`): each "
                f"micro-batch's language is drawn from π, and π moves after every evaluation with the "
                f"languages' held-out losses (the trainer's `mixer.py`).")
    lines = ["## Data mixing", "", f"The languages were mixed online by {rule}", "",
             "Final π: " + " ".join(f"{lang}={mixer['pi'][lang]:.3f}" for lang in langs), "",
             "| language | final π | unique tokens | token exposures | epochs |", "|---|---:|---:|---:|---:|"]
    unique = mixer.get("unique", {})
    for lang in langs:
        lines.append(f"| {lang} | {mixer['pi'][lang]:.3f} | {count(unique.get(lang))} | "
                     f"{count(mixer['exposures'][lang])} | {mixer['epochs'][lang]:.2f} |")
    return lines + ["", "Epochs are token exposures over the language's unique tokens under the budget.", ""]


def hyperparameters(config: dict) -> list:
    if not config:
        return ["## Training hyperparameters", "", "The checkpoint carries no training config.", ""]
    return (["## Training hyperparameters", "", "| key | value |", "|---|---|"]
            + [f"| {k} | `{v!r}` |" for k, v in sorted(config.items())] + [""])


def checkpoints(info: dict) -> list:
    branches = info.get("branches") or []
    if not branches:
        return ["## Checkpoints", "", "This export holds one checkpoint (`export_hf.py --all RUN_DIR OUT` makes a "
                "repository with one branch per BabyLM milestone).", ""]
    lines = ["## Checkpoints", "",
             "Intermediate checkpoints are branches of this repository (the BabyLM checkpoint schedule); "
             "the final model is on `main`.", "",
             "| revision | words seen | tokens seen |", "|---|---:|---:|"]
    lines += [f"| `{b['name']}` | {count(b.get('words_seen'))} | {count(b.get('tokens_seen'))} |" for b in branches]
    return lines + ["", "```python", f'model = AutoModelForCausalLM.from_pretrained("{info.get("name", "MODEL")}", '
                    f'revision="{branches[0]["name"]}")', "```", ""]


def evaluation(result: dict, info: dict = None) -> list:
    """The scores (prose and a table), how they were scored, and what lm-eval does with this model."""
    info = info or {}
    rows = flat_numbers(result) if result is not None else []
    lines = ["## Evaluation", ""]
    scores = suite_scores(result)
    if scores:
        how = protocol_words(result.get("settings"))
        lines += ["Headline accuracies (" + how + "): "
                  + "; ".join(f"{SUITE_NAMES.get(n, n)} {100 * v:.1f}%" + (f" ({count(k)} pairs)" if k else "")
                              for n, v, k in scores) + ".", ""]
    if rows:
        lines += ["| metric | value |", "|---|---:|"] + [f"| {k} | {number(v)} |" for k, v in rows[:MAX_EVAL_ROWS]]
        more = len(rows) - MAX_EVAL_ROWS
        lines += ["", "The full result is in `eval_results.json`."
                      + (f" ({more} more numbers there.)" if more > 0 else "")]
    else:
        lines += ["No evaluation results were given (`export_hf.py ... --eval result.json` adds them)."]
    if info.get("bos_input", True):
        rule = ("Sentences are scored as by `eval_blimp.py`: the sum of the log-probabilities of all tokens of the "
                "sentence, conditioned on the BOS token `<s>` that training puts before every document; the exported "
                "tokenizer adds that `<s>` itself.")
    else:
        rule = ("This model was trained without a BOS token: a document's first token entered the model with no "
                "context, and the exported tokenizer adds nothing (`add_bos_token: false`). A sentence is scored as "
                "by `eval_blimp.py` for such a model (under either protocol): the sum of the log-probabilities of its tokens from the second "
                "on, each given the tokens before it; the first token is context only.")
    return lines + ["", rule, ""] + lm_eval_note(info) + [""]


# Model A card model, as reported in the issue "The BabyLM participant's path": lm-eval's scoring (with <s> as
# the prefix) and eval_blimp.py's card protocol agree on 494 of 500 BLiMP pairs. Not re-measured here.
LM_EVAL_AGREEMENT = (494, 500)


def lm_eval_note(info: dict) -> list:
    """What lm-eval (0.4.x, the `hf` model, lm_eval/models/huggingface.py and lm_eval/api/model.py) does with
    a minimal pair: a request with an empty context gets [prefix_token_id] as its context, prefix_token_id =
    the model arg prefix_token_id, else tokenizer.bos_token_id, else eos_token_id; the sentence is encoded
    with add_special_tokens = the model arg add_bos_token (default False), and every one of its tokens is
    scored. No tokenizer file can make it leave the first token unscored."""
    if info.get("bos_input", True):
        return ["lm-eval (0.4.x, `--model hf`) scores a minimal pair as two requests with an empty context: it puts "
                "`prefix_token_id` before the sentence (the tokenizer's `bos_token`, `<s>` here) and sums the "
                "log-probabilities of all its tokens, which is this rule; its BLiMP task also puts a space before "
                "the sentence (`eval_blimp.py --leading-space` scores that way)."]
    agree, n = LM_EVAL_AGREEMENT
    return ["**lm-eval scores this model otherwise than it was trained.** lm-eval (0.4.x, `--model hf`) scores a "
            "minimal pair as two requests with an empty context, and for those it always puts `prefix_token_id` "
            "before the sentence: the model argument `prefix_token_id` if given, else the tokenizer's "
            "`bos_token_id` (`<s>`), else its `eos_token_id`; then it scores every token of the sentence. So the "
            "first token is scored given an `<s>` this model never read, and every later token sees that extra "
            "token. No export can turn this off (`add_bos_token` changes nothing here: the tokenizer adds no "
            "special token either way; `prefix_token_id=` only picks another token the model never read before "
            f"a document). On the Model A card model lm-eval and the card protocol agree on {agree} of {n} "
            "pairs. The BabyLM 2025 pipeline (`evaluation_pipeline/sentence_zero_shot`) scores the ids the "
            "tokenizer returns, each from the ones before it, so it leaves the first token unscored, as training "
            "and `eval_blimp.py --protocol card` do."]


def architecture(model: Transformer) -> list:
    cfg = model.cfg
    return ["## Architecture", "",
            "| | ours (`model.py`) | Transformers (`config.json`) | value |", "|---|---|---|---:|",
            f"| width | dim | hidden_size | {cfg.dim} |",
            f"| layers | n_layers | num_hidden_layers | {cfg.n_layers} |",
            f"| query heads | n_heads | num_attention_heads | {cfg.n_heads} |",
            f"| key/value heads | n_kv_heads | num_key_value_heads | {cfg.n_kv_heads} |",
            f"| head size | dim / n_heads | head_dim | {cfg.head_dim} |",
            f"| MLP width (SwiGLU) | hidden_dim | intermediate_size | {cfg.hidden_dim} |",
            f"| vocabulary | vocab_size | vocab_size | {cfg.vocab_size} |",
            f"| context | max_seq_len | max_position_embeddings | {cfg.max_seq_len} |",
            f"| RMSNorm eps | norm_eps | rms_norm_eps | {cfg.norm_eps} |",
            f"| RoPE base | rope_theta | rope_theta | {cfg.rope_theta} |",
            f"| tied embeddings | tie_embeddings | tie_word_embeddings | {cfg.tie_embeddings} |", "",
            "Pre-norm decoder: RMSNorm, grouped-query attention with rotary position embeddings, SwiGLU MLP, "
            "no biases (Touvron et al. 2023).", ""]


def usage(info: dict) -> list:
    name, bos = info.get("name", "MODEL"), info.get("bos_input", True)
    ids_comment = (f"# starts with <s> (id {info.get('bos_id', 0)})" if bos
                   else "# the text's ids alone: no <s>, as in training")
    says = ("The tokenizer puts `<s>` before every text, as training did before every document; "
            "`add_special_tokens=False` leaves it out." if bos else
            "The tokenizer adds no special token, as training read a document without `<s>`.")
    return ["## Usage", "", "```python",
            "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
            f'tok = AutoTokenizer.from_pretrained("{name}")',
            f'model = AutoModelForCausalLM.from_pretrained("{name}")',
            f'ids = tok("The child saw a", return_tensors="pt").input_ids   {ids_comment}',
            "out = model.generate(ids, max_new_tokens=20, do_sample=False)",
            "print(tok.decode(out[0], skip_special_tokens=True))", "```", "",
            says + " Back into the trainer: `from export_hf import load_hf; model, tokenizer = load_hf(folder)`.", ""]


# -----------------------------------------------------------------------------
# numbers as the card writes them


def seen_counts(info: dict) -> str:
    """"1,000,123 words and 1,234,567 tokens" (what of the two the checkpoint counted), or ""."""
    return " and ".join(f"{count(info[k])} {k.split('_')[0]}" for k in ("words_seen", "tokens_seen")
                        if info.get(k) is not None)


def count(x) -> str:
    """1234567 -> "1,234,567"; train.py counts words_seen as a float (words per token are averages)."""
    return f"{round(x):,}" if isinstance(x, (int, float)) and not isinstance(x, bool) else ("" if x is None else str(x))


def number(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else f"{v:,}"


def flat_numbers(d, prefix="", depth=0) -> list:
    """[(dotted key, number)] for the numbers up to 3 levels deep in a result dict."""
    rows = []
    for k, v in d.items() if isinstance(d, dict) else []:
        key = f"{prefix}{k}"
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            rows.append((key, v))
        elif isinstance(v, dict) and depth < 2:
            rows += flat_numbers(v, key + ".", depth + 1)
    return rows
