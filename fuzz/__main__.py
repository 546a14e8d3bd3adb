"""Run one fuzz target under atheris (libFuzzer):

    python -m fuzz rtmp -runs=100000 /tmp/new-inputs fuzz/corpus/rtmp

Options and corpus directories go to libFuzzer as they are; the first directory is
where it adds the inputs it finds interesting, so pass a scratch one before the
committed seeds. The target's modules under `live` are instrumented for coverage;
whatever the process imported before that (the standard library, PyAV) is not.
"""

from __future__ import annotations

import importlib
import sys

import atheris

from fuzz import TARGETS

# Covered code: ours, plus the SDP parser a WHIP offer goes through before it is answered.
_INSTRUMENTED = ["live", "aiortc.sdp"]


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: python -m fuzz {{{','.join(TARGETS)}}} [libFuzzer options] [dirs]")
    with atheris.instrument_imports(include=_INSTRUMENTED):
        target = importlib.import_module(f"fuzz.{argv[1]}")
    atheris.Setup([argv[0], *argv[2:]], target.check)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
