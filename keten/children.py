"""Child processes that end with the process that started them."""

from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1


def stop_with_parent() -> None:
    """For ``subprocess.Popen(preexec_fn=...)``: the child gets SIGTERM when the thread that
    started it dies, however it dies (Linux): a benchmark, a loader or a test killed midway leaves
    no service reconnecting to a vhost or copying into a schema that was dropped."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
