"""Leave a check script without interpreter teardown.

delta-rs's native runtime can abort while Python shuts down ("terminate called without an
active exception"). That replaces the exit code after the answer has been written, so a
passing check reads as a crash. `run_and_exit` runs the check, flushes, and exits at once
with the check's own code.
"""
import os
import sys


def run_and_exit(run):
    try:
        code = run() or 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
