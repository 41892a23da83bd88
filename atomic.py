"""
Files and folders written atomically: a crash, a full disk or Ctrl-C at any moment leaves the old
version or the new one, never half of one.

    with atomic_path("out/ckpt.safetensors") as tmp:   # write tmp; it becomes the target on success
        save_file(tensors, tmp)
    with staged_folder("data/model_a") as tmp:         # fill a folder; it becomes the target on success
        ...

The trick is the same for both: write next to the target (same file system), flush to disk, then
rename, which POSIX guarantees to be all or nothing. A process killed with SIGKILL runs no cleanup,
so its temporary files stay behind; `remove_stale_temporaries` removes them at the next start.
"""

import json
import os
import shutil
import tempfile
from contextlib import contextmanager


@contextmanager
def atomic_path(path: str):
    """`with atomic_path(p) as tmp:` write the file tmp; on success it becomes p (flushed to disk
    first), on any error or Ctrl-C tmp is removed and p is untouched."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path: str, obj, **dump_args):
    """A JSON file, written atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, **dump_args)
        f.write("\n")


def remove_stale_temporaries(folder: str):
    """Temporary files that a killed process (SIGKILL: no `finally` runs) left in folder."""
    if os.path.isdir(folder):
        for name in os.listdir(folder):
            if name.startswith(".") and ".tmp" in name and os.path.isfile(os.path.join(folder, name)):
                os.remove(os.path.join(folder, name))


class staged_folder:
    """`with staged_folder(out) as tmp:` fills a fresh folder next to out; on success it becomes out
    (an existing out is swapped out and deleted), on any error or Ctrl-C it is removed. The caller
    decides beforehand whether an existing out may be replaced."""

    def __init__(self, out: str):
        self.out = os.path.abspath(out)

    def __enter__(self):
        parent = os.path.dirname(self.out)
        os.makedirs(parent, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(self.out)}.tmp-", dir=parent)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        os.chmod(self.tmp, 0o755)  # mkdtemp makes it 0700; these folders are for sharing
        old = None
        if os.path.isdir(self.out):
            old = self.tmp + "-old"
            os.rename(self.out, old)
        os.rename(self.tmp, self.out)
        if old:
            shutil.rmtree(old)
        return False
