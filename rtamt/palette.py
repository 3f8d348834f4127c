"""One colour per MIDI channel, shared by the live view and the PNG piano rolls."""

from __future__ import annotations

from rtamt.midi import DRUM_CHANNEL, channel_for

# Index = MIDI channel (0-based). Channel 10 (index 9) is GM percussion and never carries a note here.
CHANNEL_COLOURS: tuple[str, ...] = (
    "#4e9bff", "#ff7a45", "#3ddc84", "#ff5c93", "#b388ff", "#ffd43b", "#22d3ee", "#a3e635",
    "#e879f9", "#9ca3af", "#f87171", "#2dd4bf", "#fde68a", "#93c5fd", "#fca5a5", "#86efac",
)  # fmt: skip


def colour_of(channel: int) -> str:
    """Hex colour of a 0-based MIDI channel."""
    return CHANNEL_COLOURS[channel % len(CHANNEL_COLOURS)]


def timbre_of(channel: int) -> int:
    """The 0-based timbre index sent on a 0-based MIDI channel (inverse of ``midi.channel_for``)."""
    timbre = channel if channel < DRUM_CHANNEL else channel - 1
    assert channel_for(timbre) == channel, f"channel {channel + 1} carries no timbre"
    return timbre


def rgb_of(channel: int) -> tuple[int, int, int]:
    """(r, g, b) 0..255 of a channel's colour."""
    code = colour_of(channel).lstrip("#")
    return int(code[0:2], 16), int(code[2:4], 16), int(code[4:6], 16)
