"""The library call: ``rtamt.transcribe(path_or_array)`` -> a :class:`Transcription` (notes, MIDI file,
the summary the command line prints). It streams the audio through the same chain as ``rtamt live``."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from rtamt.audio import AudioInputError, InputStats, as_mono, probe, read_blocks
from rtamt.constants import DEFAULT_BLOCK
from rtamt.midi import channel_for
from rtamt.pipeline import Transcriber
from rtamt.sustain import PedalChange
from rtamt.tracker import NoteEvent, note_pairs

if TYPE_CHECKING:
    import mido


class Note(NamedTuple):
    """One transcribed note. ``channel`` is the MIDI channel as DAWs number it (1-16, never 10);
    ``timbre`` the 0-based timbre index behind it."""

    onset: float  # seconds
    offset: float  # seconds
    pitch: int  # MIDI number
    velocity: int
    channel: int
    timbre: int


def notes_of(events: Iterable[NoteEvent]) -> list[Note]:
    """Pair note-ons with their note-offs (a note ends at least one hop after it starts), sorted by onset."""
    return sorted(Note(on.time_s, off, on.pitch, on.velocity, channel_for(on.timbre) + 1, on.timbre)
                  for on, off in note_pairs(events))  # fmt: skip


@dataclass(repr=False)
class Transcription:
    """What :func:`transcribe` found. ``events`` are the chain's note events in stream order; ``notes``
    pairs them; ``to_midi`` writes them; ``summary()`` (also ``str()``) is what ``rtamt transcribe``
    prints."""

    events: list[NoteEvent]
    source: str  # the file, or "array"
    sample_rate: int
    input_channels: int
    duration_s: float
    elapsed_s: float
    timbres: str  # "online", "refined" or "single" (no timbre model: every note on channel 1)
    stats: InputStats = field(default_factory=InputStats)
    pedal: list[PedalChange] = field(default_factory=list)  # sustain-pedal changes (CC64), in time order

    @property
    def notes(self) -> list[Note]:
        return notes_of(self.events)

    @property
    def real_time_factor(self) -> float:
        return self.elapsed_s / self.duration_s

    def midi(self) -> mido.MidiFile:
        """The notes as a type-1 MIDI file, one track per timbre."""
        from rtamt.midi import build_midi

        return build_midi(self.events, [e.timbre for e in self.events], pedal=self.pedal)

    def to_midi(self, path: str | os.PathLike) -> int:
        """Write a type-1 MIDI file, one track per timbre (atomically); returns the number of tracks."""
        from rtamt.midi import write_midi_file

        return write_midi_file(path, self.events, [e.timbre for e in self.events], pedal=self.pedal)

    def summary(self) -> str:
        """The input, the processing time and what was found, one line per timbre track."""
        lines = [f"{self.source}: {self.duration_s:.2f} s, {self.sample_rate} Hz, "
                 f"{self.input_channels} channel(s)"]
        if self.stats.clipped:
            share = 100 * self.stats.clipped / self.stats.samples
            lines.append(f"warning: {self.stats.clipped} clipped samples ({share:.2f}%)")
        lines.append(f"processed in {self.elapsed_s:.2f} s (real-time factor {self.real_time_factor:.3f})")
        notes = self.notes
        if not notes:
            return "\n".join([*lines, "found no notes"])
        pitches = [n.pitch for n in notes]
        lines.append(f"found {len(notes)} notes, MIDI {min(pitches)}-{max(pitches)}, "
                     f"{notes[0].onset:.2f}-{max(n.offset for n in notes):.2f} s")  # fmt: skip
        for timbre in sorted({n.timbre for n in notes}):
            mine = [n.pitch for n in notes if n.timbre == timbre]
            lines.append(f"  timbre {timbre + 1} (MIDI channel {channel_for(timbre) + 1}): "
                         f"{len(mine)} notes, MIDI {min(mine)}-{max(mine)}")  # fmt: skip
        downs = [c.time_s for c in self.pedal if c.down]
        if downs:
            held = sum(c.time_s for c in self.pedal if not c.down) - sum(downs)
            lines.append(f"sustain pedal (CC64): down {len(downs)} times, {held:.1f} s in all")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"Transcription({self.source!r}, {len(self.notes)} notes, timbres {self.timbres}, "
                f"{self.duration_s:.2f} s)")  # fmt: skip


def transcribe(audio: str | os.PathLike | np.ndarray, sample_rate: int | None = None, *,
               models: str | os.PathLike | None = None, mode: str = "accurate",
               instruments: int | None = None, exact: bool = False, refine: bool = False,
               block_size: int = DEFAULT_BLOCK,
               transcriber: Transcriber | None = None) -> Transcription:  # fmt: skip
    """Transcribe an audio file (anything libsndfile reads) or an array of samples.

    An array needs its ``sample_rate`` (no rate is assumed); ``(samples, channels)`` arrays are downmixed.
    NaN or infinite samples and empty input raise :class:`~rtamt.audio.AudioInputError`. ``instruments``
    caps the number of timbres (exactly that many with ``exact``). ``refine`` re-clusters all notes in
    hindsight, into as many timbres as the online clusterer found (K with ``exact``): better for an
    ensemble, worse for one instrument spread over channels (models/README.md, timbre item 16); without
    it the notes keep the channels they streamed on, as ``rtamt live`` sends them. ``mode`` picks the
    accurate or the low-latency settings; ``models`` a folder of models other than the shipped ones.
    ``transcriber``: one built beforehand (e.g. with stages inserted into its chain), reused for this
    stream; its own models and settings then apply."""
    stats = InputStats()
    if isinstance(audio, (str, os.PathLike)):
        info = probe(audio)
        if sample_rate is not None and sample_rate != info.samplerate:
            raise ValueError(f"{info.path} is at {info.samplerate} Hz, not {sample_rate}: "
                             "a file's rate is its own")  # fmt: skip
        source, rate, channels, length = info.path, info.samplerate, info.channels, info.frames
        blocks: Iterable[np.ndarray] = read_blocks(audio, block_size, stats=stats)
    else:
        if sample_rate is None:
            raise ValueError("an array needs its sample rate: transcribe(samples, sample_rate=44100)")
        array = np.asarray(audio)
        mono = as_mono(array, sample_rate, where="array")
        if not len(mono):
            raise AudioInputError("array: holds no audio samples")
        stats.update(mono)
        channels = array.shape[1] if array.ndim == 2 else 1
        source, rate, length = "array", int(sample_rate), len(mono)
        blocks = (mono[i : i + block_size] for i in range(0, len(mono), block_size))
    if transcriber is None:
        transcriber = Transcriber(models=models, mode=mode, instruments=instruments, exact=exact)
    transcriber.start(rate)
    start = time.perf_counter()
    events = transcriber.run(blocks)
    elapsed = time.perf_counter() - start
    pedal = transcriber.take_pedal()
    timbres = "single" if transcriber.assigner is None else "online"
    if refine and transcriber.assigner is not None:
        found = instruments if exact and instruments else transcriber.assigner.timbres_found
        events = refined_events(transcriber.assigner.completed, found)
        timbres = "refined"
    return Transcription(events, source, rate, channels, length / rate, elapsed, timbres, stats, pedal)


def refined_events(completed: list, timbres: int) -> list[NoteEvent]:
    """Note events re-labelled by hindsight clustering of all whole-note embeddings into ``timbres``."""
    from rtamt.cluster import refine, relabel

    return sorted(relabel(completed, refine(completed, timbres)), key=lambda e: (e.frame, e.on))
