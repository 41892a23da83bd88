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
FAST_PAIRS = 200       # --fast: the first 200 pairs of each paradigm, as BabyLM's fast set
GROUP_KEYS = ("field", "linguistics_term", "phenomenon")
JSONL_KEYS = {"good": "sentence_good", "bad": "sentence_bad", "paradigm": "UID"}
# column names a CSV/TSV header may use for each role, the first present wins (case ignored)
TABLE_COLUMNS = {
    "good": ("sentence_good", "good", "grammatical", "acceptable"),
    "bad": ("sentence_bad", "bad", "ungrammatical", "unacceptable"),
    "paradigm": ("UID", "paradigm"),
}


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


def parse_columns(spec: str) -> dict:
    """--columns "good=NAME,bad=NAME,paradigm=NAME" -> {"good": NAME, ...}."""
    columns = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        role, _, name = item.partition("=")
        if role not in TABLE_COLUMNS or not name:
            raise SystemExit(f"--columns {spec}: '{item}' is not ROLE=NAME with ROLE one of good, bad, paradigm")
        columns[role] = name
    if columns.get("good") is not None and columns.get("good", "").lower() == columns.get("bad", "").lower():
        raise SystemExit(f"--columns {spec}: names {columns['good']!r} for both the good and the bad sentence")
    return columns


def read_pairs(files, fast: bool = False, columns: dict = None) -> list:
    """Every pair of the files, in order, as dicts with good, bad, paradigm, the GROUP_KEYS found,
    file and line. columns maps the roles good, bad, paradigm to the file's own names. Any bad line
    stops with one message naming file and line: nothing is skipped silently (blank lines hold no
    pair and are passed over)."""
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
                if not (fast and seen >= FAST_PAIRS):
                    pairs.append(pair)
        except (UnicodeDecodeError, OSError, EOFError) as e:
            raise SystemExit(f"{path}: not a readable UTF-8 {'CSV/TSV' if table else 'JSONL'} file "
                             f"({type(e).__name__}: {e})")
        if n_in_file == 0:
            raise SystemExit(f"{path}: no pairs in the file")
    same = [p for p in pairs if p["good"] == p["bad"]]
    if same:  # real suites have a few (BLiMP 7, SLING 24); many mean the columns are wrong
        print(f"notice: {len(same):,} of {len(pairs):,} pairs have the same good and bad sentence (a tie; first at "
              f"{same[0]['file']}:{same[0]['line']})", file=sys.stderr)
    return pairs


def read_jsonl(path: str, columns: dict = None):
    keys = {**JSONL_KEYS, **(columns or {})}
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
                raise SystemExit(f"{where}: a line must be a JSON object with {keys['good']} and {keys['bad']}")
            yield make_pair(fields, keys, path, line_no)


def read_table(path: str, columns: dict = None):
    """The pairs of a CSV or TSV file with a header line; see the module docstring for the columns.
    A pair's line is the line its row starts on (a quoted CSV field may span lines)."""
    tsv = path.endswith((".tsv", ".tsv.gz"))
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if tsv else csv.reader(f, strict=True)
        start = 1
        try:
            header = next(reader, None)
            if header is None:
                return
            header = [name.strip() for name in header]
            keys = table_keys(header, columns or {}, path)
            while True:
                start = reader.line_num + 1
                row = next(reader, None)
                if row is None:
                    return
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise SystemExit(f"{path}:{start}: {len(row)} fields where the header has {len(header)}")
                yield make_pair(dict(zip(header, row)), keys, path, start)
        except csv.Error as e:
            raise SystemExit(f"{path}:{start}: not valid {'TSV' if tsv else 'CSV'} ({e})")


def table_keys(header: list, columns: dict, path: str) -> dict:
    """The header's name for each role (good, bad, paradigm if any) and for each group key present."""
    by_lower = {}
    for name in header:
        by_lower.setdefault(name.lower(), name)
    keys = {key: by_lower[key] for key in GROUP_KEYS if key in by_lower}
    for role, candidates in TABLE_COLUMNS.items():
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
