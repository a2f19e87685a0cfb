"""A one-line progress bar in simulated time: how far, how fast (events/s), and how long to go.

In: the replay's end time and, per round, the simulated time reached and events applied.
Out: a line on stderr (redrawn in place on a terminal, every few seconds otherwise) and the
same numbers as a dict for the run store.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Optional


def fmt_sim(t_us: int) -> str:
    """Simulated time as ``[Dd ]HH:MM:SS``."""
    s = t_us // 1_000_000
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return (f"{d}d " if d else "") + f"{h:02d}:{m:02d}:{s:02d}"


class Progress:
    """Tracks one replay; ``update`` returns the numbers and draws the bar if enabled."""

    def __init__(self, label: str, t_end_us: int, enabled: bool = True,
                 stream: Optional[IO[str]] = None, min_interval_s: float = 2.0) -> None:
        self.label, self.t_end_us, self.enabled = label, max(1, t_end_us), enabled
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval_s = 0.1 if self.tty else min_interval_s
        self.begin(0)
        self.last_draw = 0.0

    def begin(self, start_us: int) -> None:
        """Start the clock at simulated ``start_us`` (a resumed run starts part-way)."""
        self.t0 = time.monotonic()
        self.start_us, self.start_events = max(0, start_us), 0

    def note(self, text: str) -> None:
        """A line of what the run is doing before or between rounds (setup, generation), drawn at once."""
        if self.enabled:
            self.stream.write(("\r" if self.tty else "") + f"[{self.label}] {text}\n")
            self.stream.flush()

    def update(self, t_us: int, events: int) -> dict[str, float]:
        """Record a round; returns sim time, events, events/s and ETA (seconds, -1 unknown)."""
        wall = max(time.monotonic() - self.t0, 1e-9)
        rate = (events - self.start_events) / wall
        done = (t_us - self.start_us) / max(1, self.t_end_us - self.start_us)
        eta = wall * (1 - done) / done if done > 0 else -1.0
        out = {"sim_us": t_us, "events": events, "events_per_s": rate, "eta_s": eta, "wall_s": wall}
        if self.enabled:
            self._draw(t_us, rate, eta, final=t_us >= self.t_end_us)
        return out

    def _draw(self, t_us: int, rate: float, eta: float, final: bool) -> None:
        now = time.monotonic()
        if not final and now - self.last_draw < self.min_interval_s:
            return
        self.last_draw = now
        frac = min(1.0, t_us / self.t_end_us)
        bar = "#" * int(frac * 20)
        eta_txt = "--" if eta < 0 else fmt_sim(int(eta * 1e6))
        line = (f"[{self.label}] |{bar:<20}| sim {fmt_sim(t_us)}/{fmt_sim(self.t_end_us)} "
                f"{rate / 1e3:,.0f}k ev/s ETA {eta_txt}")
        end = "\n" if final or not self.tty else ""
        self.stream.write(("\r" if self.tty else "") + line + end)
        self.stream.flush()
