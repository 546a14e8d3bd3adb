"""Coverage-guided fuzzing of the parsers that face the network.

One module per target (`rtmp`, `srt`, `mpegts`, `whip`), each with a `check(data)`
that drives the sans-I/O core the way the server does. The contract: any bytes in
are either taken or refused with the error the server expects from that core;
anything else (another exception, state that outgrows its limits, a result that
depends on how the input was cut into reads) raises `Finding`. A hang or runaway
memory is caught by the fuzzing engine's own timeout and RSS limit.

`python -m fuzz TARGET [libFuzzer options] [corpus dirs]` runs one target under
atheris; `fuzz/corpus/TARGET/` holds its seeds, recorded from real clients by
`python -m fuzz.capture`. Inputs that found a bug are kept in `fuzz/regressions/`
when they are too long to write into their regression test.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

TARGETS: Final = ("rtmp", "srt", "mpegts", "whip")
CORPUS: Final = Path(__file__).resolve().parent / "corpus"
# The longest input per target: a seed is at most ~14 KB; an SDP offer may grow longer.
MAX_LEN: Final = {"rtmp": 16384, "srt": 16384, "mpegts": 16384, "whip": 32768}


def command(
    target: str,
    runs: int,
    scratch: Path,
    artifacts: Path,
    *,
    timeout_s: int = 10,
    rss_limit_mb: int = 1024,
    seed: int = 0,
) -> list[str]:
    """The command line that fuzzes `target` for `runs` executions from its seeds.

    New inputs go to `scratch`, never into the committed corpus; an input that
    crashed, hung (over `timeout_s`) or ran out of memory is written to `artifacts`.
    A `seed` other than 0 makes the run repeat itself exactly (0: a new one each time).
    """
    return [
        sys.executable, "-m", "fuzz", target,
        f"-runs={runs}", f"-max_len={MAX_LEN[target]}", f"-timeout={timeout_s}",
        # A slow input is only a finding as a timeout: on a busy machine any may be slow.
        f"-report_slow_units={timeout_s}",
        f"-rss_limit_mb={rss_limit_mb}", f"-seed={seed}", "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/{target}-",
        str(scratch), str(CORPUS / target),
    ]  # fmt: skip


class Finding(AssertionError):
    """The core broke its contract on this input."""
