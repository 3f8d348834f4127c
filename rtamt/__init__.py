"""rtamt: real-time, multi-instrument music transcription from live audio to live MIDI."""

__version__ = "0.1.0"
