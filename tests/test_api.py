"""The library: rtamt.transcribe, the result object, the streaming Transcriber and the README example."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

import rtamt
from rtamt.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "duet" / "mix.flac"


@pytest.fixture(scope="module")
def duet() -> rtamt.Transcription:
    return rtamt.transcribe(EXAMPLE)


def test_transcribe_a_file_returns_notes_on_timbre_channels(duet: rtamt.Transcription) -> None:
    notes = duet.notes
    assert len(notes) >= 30  # 49 in the score; the shipped model finds 48
    assert all(isinstance(n, rtamt.Note) and 0 <= n.onset < n.offset <= duet.duration_s + 0.5 for n in notes)
    assert all(1 <= n.channel <= 16 and n.channel != 10 and 1 <= n.velocity <= 127 for n in notes)
    assert {n.channel for n in notes} == {1, 2}  # flute and cello
    assert notes == sorted(notes)
    assert duet.sample_rate == 44_100 and duet.timbres == "online"
    assert repr(duet) == f"Transcription({str(EXAMPLE)!r}, {len(notes)} notes, timbres online, 18.11 s)"
    summary = str(duet)
    assert f"found {len(notes)} notes" in summary and "timbre 2 (MIDI channel 2)" in summary


def test_a_stereo_array_is_downmixed_not_interleaved(duet: rtamt.Transcription) -> None:
    mono, rate = sf.read(EXAMPLE, dtype="float32")
    stereo = np.stack([mono, mono], axis=1)  # (n, 2): the mean is the mono signal exactly
    result = rtamt.transcribe(stereo, sample_rate=rate)
    assert result.notes == duet.notes
    assert result.input_channels == 2 and result.duration_s == pytest.approx(duet.duration_s)


def test_array_input_errors_are_clear() -> None:
    audio = np.zeros(44_100, dtype=np.float32)
    with pytest.raises(ValueError, match="needs its sample rate"):
        rtamt.transcribe(audio)
    with pytest.raises(ValueError, match="transpose"):
        rtamt.transcribe(np.zeros((2, 44_100)), sample_rate=44_100)
    audio[1000] = np.nan
    with pytest.raises(rtamt.AudioInputError, match="non-finite sample .* at 0.023 s"):
        rtamt.transcribe(audio, sample_rate=44_100)
    with pytest.raises(rtamt.AudioInputError, match="no audio samples"):
        rtamt.transcribe(np.zeros(0, dtype=np.float32), sample_rate=44_100)
    with pytest.raises(ValueError, match="a file's rate is its own"):
        rtamt.transcribe(EXAMPLE, sample_rate=22_050)


def test_streaming_transcriber_in_any_chunking_equals_transcribe(duet: rtamt.Transcription) -> None:
    mono, rate = sf.read(EXAMPLE, dtype="float32")
    audio = np.stack([mono, mono], axis=1)  # (samples, 2) blocks, downmixed block by block
    transcriber = rtamt.Transcriber()
    with pytest.raises(ValueError, match="sample rate first"):
        transcriber.process(audio[:512])
    transcriber.start(rate)
    events, position, sizes = [], 0, [700, 1, 4096, 333, 12_000]
    for i in range(10_000):
        if position >= len(audio):
            break
        events += transcriber.process(audio[position : position + sizes[i % len(sizes)]])
        position += sizes[i % len(sizes)]
    events += transcriber.flush()
    assert events == duet.events
    # the same chain, a new stream at another rate: started afresh, no rebuild
    transcriber.start(22_050)
    assert transcriber.sample_rate == 22_050 and transcriber.resampler.passthrough


def test_to_midi_writes_one_track_per_timbre(duet: rtamt.Transcription, tmp_path: Path) -> None:
    path = tmp_path / "duet.mid"
    assert duet.to_midi(path) == 2
    midi = mido.MidiFile(path)
    assert len(midi.tracks) == 3  # tempo track + one per timbre
    ons = [m for t in midi.tracks for m in t if m.type == "note_on" and m.velocity > 0]
    assert sorted(m.note for m in ons) == sorted(n.pitch for n in duet.notes)
    assert {m.channel for m in ons} == {n.channel - 1 for n in duet.notes}


def test_version() -> None:
    run = subprocess.run([sys.executable, "-m", "rtamt", "--version"], capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert run.stdout.strip() == f"rtamt {rtamt.__version__}"
    assert re.fullmatch(r"\d+\.\d+\.\d+", rtamt.__version__)


def test_readme_library_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Library") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    found = int(re.search(r"found (\d+) notes", out).group(1))
    assert 40 <= found <= 60 and "timbre 1 (MIDI channel 1)" in out  # the duet has 49 notes
    ons = int(re.search(r"(\d+) note-ons", out).group(1))
    assert ons >= 30
    assert mido.MidiFile(tmp_path / "duet.mid").tracks


def test_transcribe_cli_takes_a_models_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "duet.mid"
    assert main(["transcribe", str(EXAMPLE), "-o", str(out), "--models", str(tmp_path / "none")]) == 3
    assert "backbone.onnx: model file not found" in capsys.readouterr().err
    assert not out.exists()
