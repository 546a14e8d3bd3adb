"""Frame rates as people name them, from rates measured on timestamps.

A rate measured from a stream's timestamps wobbles around the encoder's setting:
millisecond timestamps (FLV) or a few frames' jitter turn 30 fps into 30.048. A
playlist's FRAME-RATE and an API's `fps` are read by people and players, so a
rate near a nominal one is given as that rate; anything else keeps 3 decimals.
"""

from __future__ import annotations

from typing import Final

# The rates cameras, encoders and broadcast standards use (NTSC's as x/1001).
NOMINAL_RATES: Final = (
    10.0, 12.0, 12.5, 15.0, 20.0,
    round(24000 / 1001, 3), 24.0, 25.0, round(30000 / 1001, 3), 30.0,
    48.0, 50.0, round(60000 / 1001, 3), 60.0,
    72.0, 90.0, 100.0, round(120000 / 1001, 3), 120.0,
)  # fmt: skip
# Relative distance within which a measured rate is taken for the nominal one:
# well under the 4 % between 24 and 25 or 48 and 50, well over timestamp jitter.
TOLERANCE: Final = 0.01


def nominal_frame_rate(measured: float) -> float:
    """The nominal rate nearest `measured` if it is within 1 %, else `measured`
    rounded to 3 decimals."""
    nearest = min(NOMINAL_RATES, key=lambda rate: abs(rate - measured))
    if abs(nearest - measured) <= nearest * TOLERANCE:
        return nearest
    return round(measured, 3)
