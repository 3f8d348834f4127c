"""PNG piano rolls (matplotlib, the ``plot`` extra): rtamt's notes in the live view's channel colours, and
reference against rtamt per piece with hits, misses and false notes told apart."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from rtamt.constants import HOP_S
from rtamt.midi import channel_for
from rtamt.palette import colour_of, timbre_of
from rtamt.tracker import NoteEvent

if TYPE_CHECKING:
    from matplotlib.axes import Axes

BACKGROUND = "#0b1020"  # the live page's
HIT, MISS, FALSE = "#16a34a", "#f59e0b", "#dc2626"  # green, amber, red: none is a channel colour


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:
        raise SystemExit(f"--plot needs matplotlib ({err}): pip install 'rtamt[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def notes_with_channels(events: list[NoteEvent]) -> list[tuple[float, float, int, int]]:
    """(onset_s, offset_s, pitch, MIDI channel) of every note, in onset order; a note still sounding at
    the end ends at the last event."""
    sounding: dict[tuple[int, int], NoteEvent] = {}
    notes = []
    end = max((e.time_s for e in events), default=0.0)
    for event in events:
        key = (channel_for(event.timbre), event.pitch)
        if key in sounding:
            start = sounding.pop(key)
            notes.append((start.time_s, max(event.time_s, start.time_s + HOP_S), event.pitch, key[0]))
        if event.on:
            sounding[key] = event
    notes += [(e.time_s, max(end, e.time_s + HOP_S), e.pitch, k[0]) for k, e in sounding.items()]
    return sorted(notes)


def _pitch_axis(ax: Axes, pitches: list[int], colour: str) -> None:
    low, high = (min(pitches) - 2, max(pitches) + 2) if pitches else (48, 72)
    ax.set_ylim(low, high + 1)
    names = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
    ticks = [p for p in range(low, high + 1) if p % 12 == 0] or [low]
    ax.set_yticks([p + 0.5 for p in ticks], [f"{names[p % 12]}{p // 12 - 1}" for p in ticks], color=colour)
    ax.tick_params(colors=colour)


def _bars(ax: Axes, notes: list[tuple], colour_of_note: Callable[[tuple], str]) -> None:
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    patches = [Rectangle((on, pitch + 0.1), off - on, 0.8) for on, off, pitch, *_ in notes]
    ax.add_collection(
        PatchCollection(patches, facecolors=[colour_of_note(n) for n in notes], edgecolors="none")
    )


def plot_roll(events: list[NoteEvent], path: str | os.PathLike, title: str = "") -> int:
    """rtamt's notes, one colour per MIDI channel (the live view's), legend with each timbre's note count.
    Returns the number of notes drawn."""
    plt = _pyplot()
    from matplotlib.patches import Patch

    notes = notes_with_channels(events)
    fig, ax = plt.subplots(figsize=(10, 3.6), dpi=100, facecolor=BACKGROUND)
    ax.set_facecolor(BACKGROUND)
    _bars(ax, notes, lambda note: colour_of(note[3]))
    ax.set_xlim(0, max((n[1] for n in notes), default=1.0) + 0.2)
    _pitch_axis(ax, [n[2] for n in notes], "#cbd5e1")
    ax.set_xlabel("time (s)", color="#cbd5e1")
    for side in ax.spines.values():
        side.set_color("#334155")
    ax.grid(axis="x", color="#1e293b")
    counts = Counter(n[3] for n in notes)
    handles = [Patch(color=colour_of(c), label=f"timbre {timbre_of(c) + 1} (ch {c + 1}): {counts[c]} notes")
               for c in sorted(counts)]  # fmt: skip
    if handles:
        ax.legend(handles=handles, loc="upper right", fontsize=8, facecolor="#111827", labelcolor="#e5e7eb",
                  edgecolor="#334155")  # fmt: skip
    ax.set_title(title, color="#e5e7eb", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, facecolor=BACKGROUND)
    plt.close(fig)
    return len(notes)


def plot_comparison(
    reference: list[tuple], events: list[NoteEvent], path: str | os.PathLike, title: str = ""
) -> dict:
    """Reference notes (hits, misses) above rtamt's (hits, false notes), on one time and pitch axis; a hit
    is a one-to-one onset-and-pitch match within 50 ms (mir_eval, as ``rtamt eval`` scores).
    Returns the counts drawn."""
    from rtamt.evaluate import matched_note_ons

    plt = _pyplot()
    from matplotlib.patches import Patch

    pairs = matched_note_ons(reference, events)
    hit_refs = {i for i, _ in pairs}
    hit_keys = {(on.frame, on.pitch, channel_for(on.timbre)) for _, on in pairs}
    estimate = notes_with_channels(events)
    keys = [(round(on / HOP_S), pitch, channel) for on, _, pitch, channel in estimate]
    counts = {"hits": len(pairs), "misses": len(reference) - len(hit_refs),
              "false": sum(key not in hit_keys for key in keys)}  # fmt: skip
    fig, axes = plt.subplots(2, 1, figsize=(10, 5), dpi=100, sharex=True, sharey=True)
    _bars(
        axes[0], [(*r[:3], i) for i, r in enumerate(reference)], lambda n: HIT if n[3] in hit_refs else MISS
    )
    _bars(
        axes[1], [(*n[:3], k) for n, k in zip(estimate, keys)], lambda n: HIT if n[3] in hit_keys else FALSE
    )
    pitches = [r[2] for r in reference] + [n[2] for n in estimate]
    end = max([r[1] for r in reference] + [n[1] for n in estimate] + [1.0]) + 0.2
    for ax, label in zip(axes, ("reference", "rtamt")):
        ax.set_xlim(0, end)
        _pitch_axis(ax, pitches, "black")
        ax.set_ylabel(label)
        ax.grid(axis="x", color="#e5e7eb")
    axes[1].set_xlabel("time (s)")
    axes[0].legend(
        handles=[
            Patch(color=HIT, label=f"hit ({counts['hits']})"),
            Patch(color=MISS, label=f"missed ({counts['misses']})"),
        ],
        loc="upper right",
        fontsize=8,
    )
    axes[1].legend(
        handles=[
            Patch(color=HIT, label=f"hit ({counts['hits']})"),
            Patch(color=FALSE, label=f"false ({counts['false']})"),
        ],
        loc="upper right",
        fontsize=8,
    )
    axes[0].set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return counts
