"""
Files and folders written atomically, by one process at a time: a crash, a full disk or Ctrl-C at
any moment leaves the old version or the new one, never half of one.

    with atomic_path("out/ckpt.safetensors") as tmp:   # write tmp; it becomes the target on success
        save_file(tensors, tmp)
    with staged_folder("data/model_a") as tmp:         # fill a folder; it becomes the target on success
        ...

The trick is the same for both: write next to the target (same file system), flush to disk, then
rename, which POSIX guarantees to be all or nothing. A process killed with SIGKILL runs no cleanup,
so its temporary files stay behind; `remove_stale_temporaries` removes them at the next start.

A folder is replaced by two renames (out -> its -old copy, the staged folder -> out); a kill between
them leaves no out, so the next start puts the -old copy back (`recover_staged`) before anything
else. Two processes writing one output would interleave: `hold_lock` takes an exclusive lock
(`fcntl.flock`, released by the kernel when the process ends, however it ends) for as long as the
writer runs, and a second writer stops with one line naming the first one's PID.
"""

import fcntl
import json
import os
import shutil
import tempfile
import weakref
from contextlib import contextmanager


def current_umask() -> int:
    """The process's umask: from /proc on Linux, else by setting it and setting it back."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


@contextmanager
def atomic_path(path: str):
    """`with atomic_path(p) as tmp:` write the file tmp; on success it becomes p (flushed to disk
    first), on any error or Ctrl-C tmp is removed and p is untouched."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())  # as any new file (safetensors writes 0600)
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
    decides beforehand whether an existing out may be replaced. While it runs it holds the lock on
    out (hold_lock), and it first repairs what a killed run left (recover_staged)."""

    def __init__(self, out: str):
        self.out = os.path.abspath(out)

    def __enter__(self):
        parent, name = os.path.split(self.out)
        os.makedirs(parent, exist_ok=True)
        self.lock = hold_lock(os.path.join(parent, f".{name}.lock"), self.out)
        try:
            recover_staged(self.out)
            self.tmp = tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=parent)
        except BaseException:
            self.lock.close()
            raise
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is not None:
                shutil.rmtree(self.tmp, ignore_errors=True)
                return False
            os.chmod(self.tmp, 0o755)  # mkdtemp makes it 0700; these folders are for sharing
            old = None
            if os.path.isdir(self.out):
                old = self.tmp + "-old"
                os.rename(self.out, old)
            os.rename(self.tmp, self.out)  # a kill before this line leaves no out: recover_staged
            if old:
                shutil.rmtree(old)
            return False
        finally:
            self.lock.close()


def recover_staged(out: str):
    """Repair what writers of `out` killed mid-way (SIGKILL, a power cut: no cleanup ran) left beside
    it: a `-old` copy is the complete previous out, put back where out is missing (killed between
    the two renames) and removed where out exists; a staging folder is removed (it may be
    incomplete). Call it holding out's lock."""
    parent, name = os.path.split(os.path.abspath(out))
    if not os.path.isdir(parent):
        return
    ours = [e for e in sorted(os.listdir(parent)) if e.startswith(f".{name}.tmp-")
            and os.path.isdir(os.path.join(parent, e)) and not os.path.islink(os.path.join(parent, e))]
    for entry in sorted(ours, key=lambda e: not e.endswith("-old")):  # the -old copies first
        path = os.path.join(parent, entry)
        if entry.endswith("-old") and not os.path.exists(out):
            print(f"{out}: restoring the previous version from {path} (a run was killed while replacing it)")
            os.rename(path, out)
        else:
            print(f"{path}: removing the temporary folder of an earlier run that did not finish")
            shutil.rmtree(path)


HELD = weakref.WeakValueDictionary()  # lock file -> this process's hold_lock on it, while anything holds that


class hold_lock:
    """An exclusive lock on lock_path (a file made for it, holding our PID) until close(), which
    removes the file; the kernel drops the lock when the process ends, however it ends, and the file
    a killed holder left is simply locked again. SystemExit with one line naming the holder's PID if
    another process has it. Usable as `with hold_lock(path, what):`."""

    def __init__(self, lock_path: str, what: str):
        self.path = lock_path
        mine = HELD.get(os.path.realpath(lock_path))
        if mine is not None:  # this process's own earlier holder (a run that ended in an exception): take over
            mine.close()
        while True:
            try:
                f = open(lock_path, "a+")
            except OSError as e:
                raise SystemExit(f"{what}: cannot make the lock file {lock_path} ({e.strerror or e})")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read(20).strip() or "unknown"
                f.close()
                raise SystemExit(f"{what}: in use by another process (PID {holder}); wait for it to finish or stop it")
            try:  # the holder before us may have removed the file between our open and our lock: lock it anew
                if os.stat(lock_path).st_ino == os.fstat(f.fileno()).st_ino:
                    break
            except FileNotFoundError:
                pass
            f.close()
        try:  # the PID is for the message a second process prints; a full disk may not take it
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()}\n")
            f.flush()
        except OSError:
            pass
        self.file = f
        HELD[os.path.realpath(lock_path)] = self

    def close(self):
        HELD.pop(os.path.realpath(self.path), None)
        if not self.file.closed:
            os.remove(self.path)  # still holding the lock, so nobody else holds this file
            try:
                self.file.close()
            except OSError:  # the PID that a full disk did not take, flushed again: nothing lost
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def check_output(out: str, inputs, flag: str):
    """Stop with one line if the output path `out` (given as `flag`) is one of the command's input
    files (after following symlinks: writing it would destroy the input) or an existing folder."""
    if os.path.isdir(out):
        raise SystemExit(f"{flag} {out}: is a folder; give a file name")
    real = os.path.realpath(out)
    for path in inputs:
        if path and os.path.realpath(path) == real:
            raise SystemExit(f"{flag} {out}: is {path}, an input of this command; writing it would destroy it")
