"""rtamt: real-time, multi-instrument music transcription from live audio to live MIDI.

>>> import rtamt
>>> result = rtamt.transcribe("mix.flac")        # or an array with its sample_rate
>>> result.notes[0]                              # Note(onset, offset, pitch, velocity, channel, timbre)
>>> result.to_midi("mix.mid")

The main types are imported on first use, so ``import rtamt`` stays quick.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "transcribe": "rtamt.api",
    "Transcription": "rtamt.api",
    "Note": "rtamt.api",
    "Transcriber": "rtamt.pipeline",
    "Chain": "rtamt.chain",
    "Stage": "rtamt.chain",
    "NoteEvent": "rtamt.tracker",
    "AudioInputError": "rtamt.audio",
    "ModelError": "rtamt.models",
}
__all__ = ["AudioInputError", "Chain", "ModelError", "Note", "NoteEvent", "Stage", "Transcriber",
           "Transcription", "__version__", "transcribe"]

if TYPE_CHECKING:
    from rtamt.api import Note, Transcription, transcribe
    from rtamt.audio import AudioInputError
    from rtamt.chain import Chain, Stage
    from rtamt.models import ModelError
    from rtamt.pipeline import Transcriber
    from rtamt.tracker import NoteEvent


def __getattr__(name: str) -> object:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'rtamt' has no attribute {name!r}")
