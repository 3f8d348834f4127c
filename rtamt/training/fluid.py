"""A minimal ctypes binding to libfluidsynth: sample-accurate offline rendering of one part at a time.

FluidSynth renders in blocks of 64 samples and applies events at block starts. Events are therefore
placed on the 64-sample grid (2.9 ms at 22,050 Hz) and the note tables record the grid times, so labels
and audio agree exactly; sub-frame timing (jitter) survives because a frame is 256 samples.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BLOCK = 64  # FluidSynth's internal block (FLUID_BUFSIZE)
WARMUP_BLOCKS = 400  # 1.16 s rendered and discarded before every part (see Synth.render)


def _load_library() -> ctypes.CDLL:
    name = ctypes.util.find_library("fluidsynth") or "libfluidsynth.so.3"
    try:
        lib = ctypes.CDLL(name)
    except OSError as err:
        raise RuntimeError("libfluidsynth not found (apt-get install fluidsynth)") from err
    vp, cp, ci, cd = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_double
    signatures = {
        "new_fluid_settings": ([], vp),
        "delete_fluid_settings": ([vp], None),
        "fluid_settings_setnum": ([vp, cp, cd], ci),
        "fluid_settings_setint": ([vp, cp, ci], ci),
        "new_fluid_synth": ([vp], vp),
        "delete_fluid_synth": ([vp], None),
        "fluid_synth_sfload": ([vp, cp, ci], ci),
        "fluid_synth_program_select": ([vp, ci, ci, ci, ci], ci),
        "fluid_synth_noteon": ([vp, ci, ci, ci], ci),
        "fluid_synth_noteoff": ([vp, ci, ci], ci),
        "fluid_synth_cc": ([vp, ci, ci, ci], ci),
        "fluid_synth_pitch_bend": ([vp, ci, ci], ci),
        "fluid_synth_system_reset": ([vp], ci),
        "fluid_synth_write_float": ([vp, ci, vp, ci, ci, vp, ci, ci], ci),
        "fluid_synth_get_sfont_by_id": ([vp, ci], vp),
        "fluid_synth_add_sfont": ([vp, vp], ci),
        "fluid_synth_remove_sfont": ([vp, vp], ci),
        "fluid_set_log_function": ([ci, vp, vp], vp),
    }
    for function, (args, result) in signatures.items():
        getattr(lib, function).argtypes = args
        getattr(lib, function).restype = result
    for level in (2, 3, 4):  # warnings, info, debug: a fresh synth warns about its empty channels
        lib.fluid_set_log_function(level, None, None)
    return lib


@dataclass(frozen=True, order=True)
class Event:
    """A synth event at a sample index on the block grid. ``kind``: 0 note-off, 1 cc, 2 bend, 3 note-on
    (the order in which events at the same sample are applied)."""

    sample: int
    kind: int
    a: int = 0  # key, controller or bend value
    b: int = 0  # velocity or controller value


class Synth:
    """One soundfont, loaded once; every render runs on a fresh synth sharing it (reverb/chorus off).

    A synth that has played before keeps state in its recycled voices, which makes later renders differ
    slightly; a fresh synth per part (a few ms) makes every render bit-identical for the same events.
    The first note a synth plays also starts differently from all later ones (up to ~1 ms later), so
    every render begins with an inaudible warm-up note that is cut off with the first 1.16 s.
    """

    def __init__(self, soundfont: str | Path, rate: int, gain: float = 0.4) -> None:
        self._lib = _load_library()
        self.rate = rate
        self._settings = self._lib.new_fluid_settings()
        self._lib.fluid_settings_setnum(self._settings, b"synth.sample-rate", float(rate))
        self._lib.fluid_settings_setnum(self._settings, b"synth.gain", gain)
        self._lib.fluid_settings_setint(self._settings, b"synth.reverb.active", 0)
        self._lib.fluid_settings_setint(self._settings, b"synth.chorus.active", 0)
        self._lib.fluid_settings_setint(self._settings, b"synth.polyphony", 512)
        self._lib.fluid_settings_setint(self._settings, b"synth.cpu-cores", 1)
        self._synth = self._lib.new_fluid_synth(self._settings)
        sfid = self._lib.fluid_synth_sfload(self._synth, str(soundfont).encode(), 1)
        if sfid < 0:
            raise RuntimeError(f"FluidSynth could not load soundfont {soundfont}")
        self._sfont = self._lib.fluid_synth_get_sfont_by_id(self._synth, sfid)

    def close(self) -> None:
        if self._synth:
            self._lib.delete_fluid_synth(self._synth)
            self._lib.delete_fluid_settings(self._settings)
            self._synth = None

    def __del__(self) -> None:
        self.close()

    def render(self, program: int, events: list[Event], length: int) -> np.ndarray:
        """Mono float32 audio of ``length`` samples: GM ``program`` (0-based) playing ``events``."""
        lib = self._lib
        synth = lib.new_fluid_synth(self._settings)
        try:
            sfid = lib.fluid_synth_add_sfont(synth, self._sfont)
            if lib.fluid_synth_program_select(synth, 0, sfid, 0, program) != 0:
                raise RuntimeError(f"program {program} missing from the soundfont")
            keys = [event.a for event in events if event.kind == 3]
            warm_key = min(keys) if keys else 60
            warmup = [Event(0, 3, warm_key, 1), Event(8 * BLOCK, 0, warm_key)]
            shift = WARMUP_BLOCKS * BLOCK
            shifted = [Event(e.sample + shift, e.kind, e.a, e.b) for e in events]
            return self._play(synth, warmup + shifted, length + shift)[shift:]
        finally:
            lib.fluid_synth_remove_sfont(synth, self._sfont)
            lib.delete_fluid_synth(synth)

    def _play(self, synth: int, events: list[Event], length: int) -> np.ndarray:
        lib = self._lib
        length = -(-length // BLOCK) * BLOCK
        left = np.zeros(length, dtype=np.float32)
        right = np.zeros(length, dtype=np.float32)
        position = 0
        for event in sorted(events) + [Event(length, -1)]:
            target = min(event.sample, length)
            if target % BLOCK:
                raise ValueError(f"event at sample {event.sample} is off the {BLOCK}-sample grid")
            if target > position:
                count = target - position
                lib.fluid_synth_write_float(
                    synth, count, left.ctypes.data + 4 * position, 0, 1, right.ctypes.data + 4 * position, 0, 1
                )
                position = target
            if event.kind == 3:
                lib.fluid_synth_noteon(synth, 0, event.a, event.b)
            elif event.kind == 0:
                lib.fluid_synth_noteoff(synth, 0, event.a)
            elif event.kind == 1:
                lib.fluid_synth_cc(synth, 0, event.a, event.b)
            elif event.kind == 2:
                lib.fluid_synth_pitch_bend(synth, 0, event.a)
        return 0.5 * (left + right)
