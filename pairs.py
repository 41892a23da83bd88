"""
Minimal-pair files: the named suites, JSONL, CSV and TSV, read with one-line errors.

    from pairs import read_pairs, suite_files
    name, files = suite_files("blimp", data_root="../shared/data")
    pairs = read_pairs(files, fast=True)       # dicts: good, bad, paradigm, (field, ...), file, line

Suites (files under --data-root, default ../shared/data; see its SOURCES.md):

    blimp             blimp/*.jsonl.gz                        67 paradigms x 1000 pairs
    blimp_filtered    blimp_filtered/*.jsonl.gz               BabyLM's filtered BLiMP, 59,875 pairs
    blimp_supplement  blimp_supplement/*.jsonl.gz             BabyLM supplement, 5 tasks, 5,218 pairs
    blimp_nl          minimal_pairs/nl/blimp_nl.pairs.jsonl.gz   Dutch, 84 paradigms, 8,400 pairs
    zhoblimp          minimal_pairs/zh/zhoblimp.pairs.jsonl.gz   Chinese, 118 paradigms, 35,400 pairs
    sling             minimal_pairs/zh/sling.pairs.jsonl.gz      Chinese, 40,560 pairs

Pair files (any of them may be gzip'd; a folder is read with all the pair files under it):
  JSONL  "sentence_good" and "sentence_bad" on every line, optionally "UID" (the paradigm; the
         file name otherwise) and "field", "linguistics_term", "phenomenon", which the tables group by.
  CSV, TSV  a header line, then one pair per line. The good sentence is the first column named
         sentence_good, good, grammatical or acceptable; the bad one sentence_bad, bad, ungrammatical
         or unacceptable; the paradigm UID or paradigm (the file name otherwise); field,
         linguistics_term and phenomenon as in JSONL; other columns (a label, an id) are ignored.
         Names are matched ignoring case. --columns good=NAME,bad=NAME,paradigm=NAME names others
         (for JSONL keys too). TSV fields are taken as they are (no quoting); CSV follows RFC 4180.
  One sentence a row (CLiMP's CSVs): --columns sentence=NAME,label=NAME[,paradigm=NAME]. Each two
         consecutive rows are a pair, one labelled 1 (good) and one 0 (bad), in either order; rows that
         do not alternate stop with file and line. A NAME that is not in the first row but is a whole
         number counts columns from 0 in a file without a header (its first row is data).
  A warning (stderr) when most "sentences" read are bare numbers or most pairs are one sentence
  twice: the columns are probably wrong (a label or an id column scored as a sentence).

--fast takes the first FAST_SIZES[suite] pairs of each paradigm (FAST_PAIRS for other files).
"""

import csv
import glob
import gzip
import json
import os
import sys

DEFAULT_DATA_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shared", "data")

# suite name -> glob under the data root
SUITES = {
    "blimp": "blimp/*.jsonl.gz",
    "blimp_filtered": "blimp_filtered/*.jsonl.gz",
    "blimp_supplement": "blimp_supplement/*.jsonl.gz",
    "blimp_nl": "minimal_pairs/nl/blimp_nl.pairs.jsonl.gz",
    "zhoblimp": "minimal_pairs/zh/zhoblimp.pairs.jsonl.gz",
    "sling": "minimal_pairs/zh/sling.pairs.jsonl.gz",
}
# BLiMP's folder also holds the published models' accuracies, which are not pairs
NOT_PAIRS = {"models_summary.jsonl.gz"}
PAIR_FILE_ENDINGS = (".jsonl", ".jsonl.gz", ".csv", ".csv.gz", ".tsv", ".tsv.gz")
# --fast: the first N pairs of each paradigm. BabyLM's sizes are the official pipeline's, read from
# babylm/evaluation-pipeline-2025, evaluation_pipeline/collate_preds.py at commit 20658672cca5:
# BLIMP_FAST_SIZE = 200 and SUPPLEMENT_FAST_SIZE = 50 predictions per UID, checked by _check_size on
# <revision>/zero_shot/<backend>/blimp/{blimp_fast,supplement_fast}/predictions.json. Its fast data
# files (evaluation_data/fast_eval/, an OSF download, not in the repository) are matched to the
# predictions by order; the first N pairs of each paradigm are our stand-in until they are at hand.
FAST_PAIRS = 200       # every suite without its own size below, and the user's own files
FAST_SIZES = {
    "blimp_filtered": 200,     # BLIMP_FAST_SIZE: 67 x 200 = 13,400 pairs ("blimp_fast")
    "blimp_supplement": 50,    # SUPPLEMENT_FAST_SIZE: 5 x 50 = 250 pairs ("supplement_fast")
    "blimp": 200,              # as blimp_filtered; full BLiMP is not in the BabyLM pipeline
    "blimp_nl": FAST_PAIRS,    # ours: no fast set is published for these
    "zhoblimp": FAST_PAIRS,
    "sling": FAST_PAIRS,
}
GROUP_KEYS = ("field", "linguistics_term", "phenomenon")
JSONL_KEYS = {"good": "sentence_good", "bad": "sentence_bad", "paradigm": "UID"}
# column names a CSV/TSV header may use for each role, the first present wins (case ignored)
TABLE_COLUMNS = {
    "good": ("sentence_good", "good", "grammatical", "acceptable"),
    "bad": ("sentence_bad", "bad", "ungrammatical", "unacceptable"),
    "paradigm": ("UID", "paradigm"),
}
ROW_ROLES = ("sentence", "label")    # --columns sentence=NAME,label=NAME: one sentence a row
LABELS = {"1": True, "0": False, "true": True, "false": False}   # a row's label (case ignored)


def suite_files(suite: str, data_root: str = DEFAULT_DATA_ROOT):
    """A suite name, a pair file or a folder of pair files -> (name, sorted list of files)."""
    if suite in SUITES:
        pattern = os.path.join(data_root, SUITES[suite])
        files = sorted(f for f in glob.glob(pattern) if os.path.basename(f) not in NOT_PAIRS)
        if not files:
            raise SystemExit(f"{pattern}: no such file (suite {suite}; set --data-root, now {data_root})")
        return suite, files
    if os.path.isdir(suite):
        files = sorted(f for ending in PAIR_FILE_ENDINGS
                       for f in glob.glob(os.path.join(suite, "**", "*" + ending), recursive=True))
        if not files:
            raise SystemExit(f"{suite}: folder holds no .jsonl, .csv or .tsv file (optionally .gz)")
        return os.path.basename(os.path.normpath(suite)), files
    if os.path.isfile(suite):
        return file_stem(suite), [suite]
    if os.path.exists(suite):
        raise SystemExit(f"{suite}: not a regular file (a FIFO or device); give a pair file or a folder of them")
    raise SystemExit(f"{suite}: no such file or folder, and not a suite ({', '.join(SUITES)})")


def file_stem(path: str) -> str:
    name = os.path.basename(path)
    for ext in (".gz", ".jsonl", ".csv", ".tsv", ".pairs"):
        name = name[:-len(ext)] if name.endswith(ext) else name
    return name


def fast_size(suite: str) -> int:
    """Pairs per paradigm that --fast keeps for a suite name (or any other file)."""
    return FAST_SIZES.get(suite, FAST_PAIRS)


def parse_columns(spec: str) -> dict:
    """--columns "good=NAME,bad=NAME,paradigm=NAME" or "sentence=NAME,label=NAME,paradigm=NAME"
    -> {"good": NAME, ...}."""
    columns = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        role, _, name = item.partition("=")
        if role not in (*TABLE_COLUMNS, *ROW_ROLES) or not name:
            raise SystemExit(f"--columns {spec}: '{item}' is not ROLE=NAME with ROLE one of good, bad, paradigm, "
                             f"sentence, label")
        columns[role] = name
    if columns.get("good") is not None and columns.get("good", "").lower() == columns.get("bad", "").lower():
        raise SystemExit(f"--columns {spec}: names {columns['good']!r} for both the good and the bad sentence")
    rows = [r for r in ROW_ROLES if r in columns]
    if rows and ("good" in columns or "bad" in columns):
        raise SystemExit(f"--columns {spec}: give good=,bad= (a pair a row) or sentence=,label= (a sentence a "
                         f"row), not both")
    if len(rows) == 1:
        raise SystemExit(f"--columns {spec}: a sentence a row needs both sentence=NAME and label=NAME")
    if rows and columns["sentence"].lower() == columns["label"].lower():
        raise SystemExit(f"--columns {spec}: names {columns['sentence']!r} for both the sentence and its label")
    return columns


def read_pairs(files, fast=False, columns: dict = None, warn: bool = True) -> list:
    """Every pair of the files, in order, as dicts with good, bad, paradigm, the GROUP_KEYS found,
    file and line. fast: False, True (the first FAST_PAIRS of each paradigm) or that number of
    pairs. columns maps the roles (good, bad, paradigm; or sentence, label, paradigm) to the file's
    own names. Any bad line stops with one message naming file and line: nothing is skipped
    silently (blank lines hold no pair and are passed over). warn: say where the columns look wrong
    (warn_if_not_sentences); off where the sentences are only counted, not scored."""
    limit = FAST_PAIRS if fast is True else (fast or None)
    pairs, per_paradigm = [], {}
    for path in files:
        if not os.path.exists(path):
            raise SystemExit(f"{path}: no such file")
        if not os.path.isfile(path):
            raise SystemExit(f"{path}: not a regular file (a folder, FIFO or device); give a pair file")
        n_in_file = 0
        table = path.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz"))
        try:
            for pair in (read_table(path, columns) if table else read_jsonl(path, columns)):
                n_in_file += 1
                seen = per_paradigm.get(pair["paradigm"], 0)
                per_paradigm[pair["paradigm"]] = seen + 1
                if limit is None or seen < limit:
                    pairs.append(pair)
        except (UnicodeDecodeError, OSError, EOFError) as e:
            raise SystemExit(f"{path}: not a readable UTF-8 {'CSV/TSV' if table else 'JSONL'} file "
                             f"({type(e).__name__}: {e})")
        if n_in_file == 0:
            raise SystemExit(f"{path}: no pairs in the file")
    if warn:
        warn_if_not_sentences(pairs)
    return pairs


def warn_if_not_sentences(pairs):
    """One line on stderr where the pairs look like the wrong columns: most pairs with a bare number
    for a sentence (a label or an id scored as text), or most pairs one sentence twice. Real suites have a few
    identical pairs (BLiMP 7, SLING 24): those get a notice."""
    number = [p for p in pairs if is_number(p["good"]) or is_number(p["bad"])]
    same = [p for p in pairs if p["good"] == p["bad"]]
    for what, hits in (("have a bare number for a sentence", number), ("have the same good and bad sentence", same)):
        if 2 * len(hits) > len(pairs):
            print(f"warning: {len(hits):,} of {len(pairs):,} pairs {what} (first at {hits[0]['file']}:"
                  f"{hits[0]['line']}): are the columns right? (--columns)", file=sys.stderr)
        elif hits and hits is same:
            print(f"notice: {len(same):,} of {len(pairs):,} pairs have the same good and bad sentence (a tie; first "
                  f"at {same[0]['file']}:{same[0]['line']})", file=sys.stderr)


def is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def read_jsonl(path: str, columns: dict = None) -> list:
    keys = {**JSONL_KEYS, **(columns or {})}
    need = (keys["sentence"], keys["label"]) if "sentence" in keys else (keys["good"], keys["bad"])
    rows = []
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                fields = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"{where}: not valid JSON ({e.msg})")
            if not isinstance(fields, dict):
                raise SystemExit(f"{where}: a line must be a JSON object with {need[0]} and {need[1]}")
            rows.append((line_no, fields))
    return to_pairs(rows, keys, path)


def read_table(path: str, columns: dict = None) -> list:
    """The pairs of a CSV or TSV file; see the module docstring for the columns. The first row is
    the header, unless --columns names only whole numbers and the first row holds not all of them:
    then the columns are numbered from 0 and the first row is data. A pair's line is the line its
    (first) row starts on (a quoted CSV field may span lines)."""
    tsv = path.endswith((".tsv", ".tsv.gz"))
    columns = columns or {}
    opener = gzip.open if path.endswith(".gz") else open
    rows = []
    with opener(path, "rt", encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if tsv else csv.reader(f, strict=True)
        start = 1
        try:
            header = next(reader, None)
            if header is None:
                return []
            header = [name.strip() for name in header]
            named = {name.lower() for name in header}
            if columns and all(n.isdigit() for n in columns.values()) \
                    and not all(n.lower() in named for n in columns.values()):
                rows.append((1, dict(zip(map(str, range(len(header))), header))))   # no header: row 1 is data
                header = [str(i) for i in range(len(header))]
            keys = table_keys(header, columns, path)
            while True:
                start = reader.line_num + 1
                row = next(reader, None)
                if row is None:
                    break
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise SystemExit(f"{path}:{start}: {len(row)} fields where the header has {len(header)}")
                rows.append((start, dict(zip(header, row))))
        except csv.Error as e:
            raise SystemExit(f"{path}:{start}: not valid {'TSV' if tsv else 'CSV'} ({e})")
    return to_pairs(rows, keys, path)


def table_keys(header: list, columns: dict, path: str) -> dict:
    """The header's name for each role (good, bad, paradigm if any; or sentence, label, paradigm)
    and for each group key present."""
    by_lower = {}
    for name in header:
        by_lower.setdefault(name.lower(), name)
    keys = {key: by_lower[key] for key in GROUP_KEYS if key in by_lower}
    roles = TABLE_COLUMNS if "sentence" not in columns else {"sentence": (), "label": (),
                                                              "paradigm": TABLE_COLUMNS["paradigm"]}
    for role, candidates in roles.items():
        if role in columns:
            if columns[role].lower() not in by_lower:
                raise SystemExit(f"{path}:1: no column '{columns[role]}' (--columns {role}={columns[role]}); "
                                 f"the header has {', '.join(header)}")
            candidates = (columns[role],)
        found = [by_lower[c.lower()] for c in candidates if c.lower() in by_lower]
        if found:
            keys[role] = found[0]
        elif role != "paradigm":
            raise SystemExit(f"{path}:1: no column for the {role} sentence in the header ({', '.join(header)}); "
                             f"recognised: {', '.join(candidates)}, or name it with --columns {role}=NAME")
    return keys


def to_pairs(rows, keys: dict, path: str) -> list:
    """Pairs from (line, fields) rows: a pair a row, or with keys["sentence"] a sentence a row."""
    if "sentence" in keys:
        return pair_rows(rows, keys, path)
    return [make_pair(fields, keys, path, line_no) for line_no, fields in rows]


def pair_rows(rows, keys: dict, path: str) -> list:
    """Each two consecutive rows (a sentence and its label, 1 good or 0 bad) -> one pair: one row
    good and one bad, in either order, and of the same paradigm. The pair's line is its first row's."""
    pairs, waiting = [], None
    sentence, label, paradigm = keys["sentence"], keys["label"], keys.get("paradigm")
    for line_no, fields in rows:
        where = f"{path}:{line_no}"
        for key in (sentence, label):
            if key not in fields:
                raise SystemExit(f"{where}: no '{key}' (a sentence row needs {sentence} and {label})")
        if not isinstance(fields[sentence], str) or not fields[sentence].strip():
            raise SystemExit(f"{where}: {sentence} is empty or not a string")
        good = LABELS.get(str(fields[label]).strip().lower())
        if good is None:
            raise SystemExit(f"{where}: {label} is {fields[label]!r}, not 1 (good) or 0 (bad)")
        if waiting is None:
            waiting = (line_no, fields, good)
            continue
        (first_line, first, first_good), waiting = waiting, None
        if first_good == good:
            raise SystemExit(f"{where}: rows {first_line} and {line_no} are both {'good (1)' if good else 'bad (0)'}; "
                             f"a sentence a row needs good and bad rows to alternate, a pair every two rows")
        if paradigm and first.get(paradigm) != fields.get(paradigm):
            raise SystemExit(f"{where}: {paradigm} {fields.get(paradigm)!r} here and {first.get(paradigm)!r} at line "
                             f"{first_line}: the two rows of a pair must be of one paradigm")
        g, b = (first, fields) if first_good else (fields, first)
        pair_keys = {**keys, "good": "\0good", "bad": "\0bad"}
        pairs.append(make_pair({**g, "\0good": g[sentence], "\0bad": b[sentence]}, pair_keys, path, first_line))
    if waiting is not None:
        raise SystemExit(f"{path}:{waiting[0]}: the last sentence row has no partner (an odd number of rows)")
    return pairs


def make_pair(fields: dict, keys: dict, path: str, line_no: int) -> dict:
    """One pair from a line's fields; keys gives the field names of good, bad, paradigm (optional)
    and the group keys (each its own name unless keys says otherwise)."""
    where = f"{path}:{line_no}"
    good, bad = keys["good"], keys["bad"]
    for key in (good, bad):
        if key not in fields:
            raise SystemExit(f"{where}: no '{key}' (a pair needs {good} and {bad})")
        if not isinstance(fields[key], str):
            raise SystemExit(f"{where}: {key} is a {type(fields[key]).__name__}, not a string")
        if not fields[key].strip():
            raise SystemExit(f"{where}: {key} is empty")
    paradigm = fields.get(keys.get("paradigm"))
    pair = {"good": fields[good], "bad": fields[bad], "paradigm": str(paradigm or file_stem(path)),
            "file": path, "line": line_no}
    for key in GROUP_KEYS:
        value = fields.get(keys.get(key, key))
        if value not in (None, ""):
            # BLiMP spells one field two ways; "syntax/semantics" is "syntax_semantics"
            pair[key] = str(value).replace("/", "_") if key == "field" else str(value)
    return pair
