"""Run a Python script under cProfile: its main thread and leadq's helper thread ("decide-ahead",
which prepares, enriches and scores the next batch) in one profile.

    python bench/profiled.py OUT.prof SCRIPT [ARGS...]

`python -m cProfile` sees the main thread only. Prefect's own background threads (its event
loop, log and event workers) are left out: they mostly wait, and their waits would fill the top.
"""

from __future__ import annotations

import sys
from pathlib import Path

# this folder holds bench/profile.py, which would shadow the standard library's `profile` that cProfile imports
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import cProfile  # noqa: E402
import pstats  # noqa: E402
import runpy  # noqa: E402
import threading  # noqa: E402

HELPER = "decide-ahead"


def main() -> None:
    out, script, *args = sys.argv[1:]
    helpers: list[cProfile.Profile] = []
    plain_run = threading.Thread.run

    def profiled_run(self: threading.Thread) -> None:
        if not self.name.startswith(HELPER):
            plain_run(self)
            return
        profile = cProfile.Profile()
        profile.enable()
        try:
            plain_run(self)
        finally:
            profile.disable()
            helpers.append(profile)

    threading.Thread.run = profiled_run  # type: ignore[method-assign]
    sys.argv = [script, *args]
    sys.path.insert(0, str(Path(script).resolve().parent))  # as `python SCRIPT` would
    main_thread = cProfile.Profile()
    code = 0
    main_thread.enable()
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        main_thread.disable()
        stats = pstats.Stats(main_thread)
        for profile in helpers:
            stats.add(profile)
        stats.dump_stats(out)
    sys.exit(code)


if __name__ == "__main__":
    main()
