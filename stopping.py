"""
How a training run stops: on its own at the end, at stop_iter, or when it is told to (Ctrl-C, or the
SIGTERM that schedulers and torchrun send). train.py's loop runs inside `with Stop(ranks) as stop:`;
a signal there finishes the step, saves a checkpoint, and the process exits with 128 + the signal's
number, so that a script can tell an interrupted run from a finished one and resume it. Before the
loop (reading data, building the model) and at a second Ctrl-C, `guarded` ends the run at once with
one line. Every handler put in place here is taken away again afterwards, so that a caller in the
same process (the tests, a notebook) keeps its own.
"""

import gc
import signal
import sys

import torch
import torch.distributed


class Stop:
    """Ctrl-C (SIGINT) or SIGTERM (what schedulers and torchrun send first): finish the current step,
    save a checkpoint and exit with 128 + the signal's number, so a script can tell an interrupted run
    from a finished one. A second Ctrl-C stops at once. The handlers are in place inside
    `with Stop(ranks) as stop:`, and the ones before are back after it."""

    REASONS = {0: None, 1: "stop_iter", signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}

    def __init__(self, ranks):
        self.ranks, self.signal = ranks, 0

    def __enter__(self):
        self.previous = set_handlers(self.on_signal, self.on_signal)
        return self

    def __exit__(self, *exception):
        set_handlers(*self.previous)  # a caller in this process gets its own handlers back

    def on_signal(self, signum, frame):
        if self.signal and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signal:  # torchrun follows a Ctrl-C with SIGTERM to every rank: the same request
            return
        self.signal = int(signum)
        if self.ranks.master:
            print(f"\n{signal.Signals(signum).name}: finishing this step, then saving a checkpoint "
                  f"(again to quit now)", file=sys.stderr)

    def agreed(self, stop_here: bool, iter_num: int) -> int:
        """0 to go on, else why to stop after this step: 1 (stop_iter) or the signal's number. A signal
        reaches the ranks at slightly different moments: they agree to stop at one step (one that lands
        after the flag was made counts at the next step)."""
        reason = self.signal or int(stop_here)
        if not self.ranks.ddp:
            return reason
        flag = torch.tensor([float(reason)], device=self.ranks.device)
        self.ranks.all_reduce(flag, f"training step {iter_num}", op=torch.distributed.ReduceOp.MAX)
        return int(flag.item())

    @staticmethod
    def exit_code(reason: int) -> int:
        return 0 if reason <= 1 else 128 + reason

    @staticmethod
    def message(reason: int, iter_num: int) -> str:
        return f"stopped ({Stop.REASONS[reason]}) at iteration {iter_num}; resume with the same command and --resume"


def guarded(main, argv) -> int:
    """main(argv), with a signal that arrives before the loop's handlers are installed (or a second
    Ctrl-C) ending the run with one line and 128 + the signal's number."""
    def before_the_loop(signum, frame):
        raise Interrupted(signum)
    previous = set_handlers(before_the_loop, before_the_loop)
    try:
        return main(argv)
    except (KeyboardInterrupt, Interrupted) as e:
        signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
        print(f"\n{signal.Signals(signum).name}: stopped; nothing more was saved", file=sys.stderr)
        return 128 + signum
    finally:
        set_handlers(*previous)
        # DDP's wrapper lives in reference cycles; collected while the interpreter shuts down, the
        # gloo work it still holds makes gloo's C++ threads take the GIL too late and abort the
        # process now and then. Collected here, the interpreter is still whole.
        gc.collect()


def set_handlers(on_sigint, on_sigterm) -> tuple:
    """Handle SIGINT and SIGTERM with these; returns the handlers they replace, for set_handlers(*previous)."""
    return signal.signal(signal.SIGINT, on_sigint), signal.signal(signal.SIGTERM, on_sigterm)


class Interrupted(Exception):
    def __init__(self, signum):
        self.signum = int(signum)
