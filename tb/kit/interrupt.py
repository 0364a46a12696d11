"""Ctrl-C during a simulation: one line from the host, nothing from the simulator.

``cocotb_tools.runner`` starts the compiler and the simulator with ``subprocess.run`` in
the terminal's process group, so a Ctrl-C reaches the simulator's embedded Python too,
which prints its own ``KeyboardInterrupt`` traceback (40 to 170 lines, depending on
where it lands).  :func:`isolate` makes the runner start each command in a session of
its own: the terminal's SIGINT then reaches only the host process, whose
``KeyboardInterrupt`` kills the simulator (SIGKILL, then waits for it) and propagates to
the caller -- ``python -m tb.run`` prints one line and exits 130.  Hand-written because
the runner has no option for it; it replaces only how a command is started.
"""

from __future__ import annotations

import subprocess
from typing import Any, Sequence, TextIO


def isolate(runner: Any) -> Any:
    """Make ``runner`` (a ``cocotb_tools.runner.Runner``) start its commands in their own
    session; returns ``runner``."""

    def execute_cmds(cmds: Sequence[Sequence[str]], cwd: Any,
                     stdout: TextIO | None = None) -> None:
        for cmd in cmds:
            stderr = None if stdout is None else subprocess.STDOUT
            with subprocess.Popen(list(cmd), cwd=cwd, env=runner.env, stdout=stdout,
                                  stderr=stderr, start_new_session=True) as proc:
                try:
                    status = proc.wait()
                except BaseException:          # Ctrl-C (or any error) in the host
                    proc.kill()
                    proc.wait()
                    raise
            if status != 0:
                raise RuntimeError(f"Command failed with return code: {status}")

    runner._execute_cmds = execute_cmds
    return runner
