"""atomic.py: a folder replaced by a process killed between its two renames comes back whole; one
writer at a time, by a lock a second real process holds."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from atomic import hold_lock, recover_staged, staged_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_version(folder, text):
    with staged_folder(folder) as tmp:
        with open(os.path.join(tmp, "data.txt"), "w") as f:
            f.write(text)


def read_version(folder):
    with open(os.path.join(folder, "data.txt")) as f:
        return f.read()


def test_a_kill_between_the_two_renames_leaves_the_old_folder_which_the_next_start_restores(tmp_path):
    out = str(tmp_path / "data")
    write_version(out, "old")
    # a real process, SIGKILLed by itself right after the first rename (out -> its -old copy)
    child = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {ROOT!r})
        import atomic
        rename = os.rename
        def rename_then_die(src, dst):
            rename(src, dst)
            os.kill(os.getpid(), signal.SIGKILL)
        os.rename = rename_then_die
        with atomic.staged_folder({out!r}) as tmp:
            open(os.path.join(tmp, "data.txt"), "w").write("new")
    """)
    proc = subprocess.run([sys.executable, "-c", child])
    assert proc.returncode == -signal.SIGKILL
    assert not os.path.exists(out)  # the window: no out at all
    left = sorted(os.listdir(tmp_path))
    assert any(e.endswith("-old") for e in left) and len([e for e in left if ".tmp-" in e]) == 2

    recover_staged(out)
    assert read_version(out) == "old"
    assert [e for e in os.listdir(tmp_path) if ".tmp-" in e] == []  # the -old copy went back, the staging went

    write_version(out, "newer")  # and the next write works as usual
    assert read_version(out) == "newer"
    assert os.listdir(tmp_path) == ["data"]  # no staging folder, no -old copy, no lock file left


def test_staging_folders_a_killed_writer_left_are_removed_at_the_next_start(tmp_path):
    out = str(tmp_path / "export")
    stale = tmp_path / ".export.tmp-abc123"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    write_version(out, "v1")
    assert not stale.exists() and read_version(out) == "v1"


def test_a_second_writer_stops_with_one_line_naming_the_holders_pid(tmp_path):
    out = str(tmp_path / "data")
    lock = str(tmp_path / ".data.lock")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {ROOT!r})
        from atomic import hold_lock
        f = hold_lock({lock!r}, "x")
        print("held", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SystemExit) as e:
            write_version(out, "mine")
        message = str(e.value)
        assert f"PID {holder.pid}" in message and "\n" not in message and out in message
        assert not os.path.exists(out)
    finally:
        holder.kill()
        holder.wait()
    write_version(out, "mine")  # the kernel dropped the dead holder's lock
    assert read_version(out) == "mine"


def test_a_process_takes_over_its_own_lock_and_close_removes_the_file(tmp_path):
    """In one process (a run called again after one that ended in an exception, as tests and notebooks
    do) the new holder takes over; another process is still refused (the second-writer test above)."""
    lock = str(tmp_path / ".lock")
    first = hold_lock(lock, "run")
    second = hold_lock(lock, "run")
    assert first.file.closed and not second.file.closed and os.path.exists(lock)
    second.close()
    assert not os.path.exists(lock)


def test_files_written_atomically_follow_the_umask_checkpoints_included(tmp_path):
    """safetensors writes 0600; a checkpoint must get the mode any new file of the run folder gets."""
    import torch
    from dataclasses import asdict
    from checkpoint import save_checkpoint
    from model import ModelConfig, Transformer
    old = os.umask(0o022)
    try:
        model = Transformer(ModelConfig(dim=16, n_layers=1, n_heads=2, hidden_dim=32, vocab_size=50, max_seq_len=8))
        save_checkpoint(str(tmp_path / "ckpt.safetensors"), model, {"model_config": asdict(model.cfg)})
        with open(tmp_path / "plain.txt", "w") as f:
            f.write("x")
    finally:
        os.umask(old)
    mode = lambda name: os.stat(tmp_path / name).st_mode & 0o777
    assert mode("ckpt.safetensors") == mode("plain.txt") == 0o644
