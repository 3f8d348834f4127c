"""Bad input gets a clear error naming the file; odd but valid input is converted, not rejected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rtamt.audio import AudioInputError, InputStats, probe, read_all, read_blocks
from rtamt.cli import EXIT_BAD_INPUT, main
from rtamt.constants import HOP, SAMPLE_RATE
from rtamt.frontend import build_frontend
from rtamt.normalize import SILENCE
from tests.conftest import tone


def run_frontend(path: Path) -> np.ndarray:
    return build_frontend(probe(path).samplerate).run(read_blocks(path))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioInputError, match="no such file"):
        probe(tmp_path / "nope.wav")


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioInputError, match="empty.wav: not a readable audio file"):
        probe(path)


def test_wav_with_no_samples(tmp_path: Path) -> None:
    path = tmp_path / "nothing.wav"
    sf.write(path, np.zeros((0, 1), dtype=np.float32), 44_100)
    with pytest.raises(AudioInputError, match="nothing.wav: the file holds no audio samples"):
        list(read_blocks(path))


def test_text_file_renamed_wav(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 50)
    with pytest.raises(AudioInputError, match="notes.wav: not a readable audio file"):
        list(read_blocks(path))


def test_nan_samples_are_reported_with_their_time(tmp_path: Path) -> None:
    path = tmp_path / "nan.wav"
    audio = tone(60, 1.0)
    audio[11_025] = np.nan
    sf.write(path, audio, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(AudioInputError, match=r"nan.wav: non-finite sample .* at 0.500 s"):
        read_all(path)


def test_eight_channel_96k_file_is_downmixed_and_resampled(tmp_path: Path) -> None:
    path = tmp_path / "multi.wav"
    rate = 96_000
    mono = tone(69, 2.0, amplitude=0.4, rate=rate)
    channels = np.stack([mono * (0.5 + 0.1 * k) for k in range(8)], axis=1)
    sf.write(path, channels, rate, subtype="PCM_24")
    info = probe(path)
    assert (info.channels, info.samplerate) == (8, rate)
    frames = run_frontend(path)
    assert frames.shape == (int(2.0 * SAMPLE_RATE) // HOP + 1, 8, 252)
    assert np.argmax(frames[-10, 1]) == 3 * (69 - 24) + 1  # A4 in the fundamental channel


def test_silence_gives_finite_silent_frames(tmp_path: Path) -> None:
    path = tmp_path / "silence.flac"
    sf.write(path, np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    frames = run_frontend(path)
    assert np.all(frames == np.float32(SILENCE))


def test_clipping_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "loud.wav"
    sf.write(path, np.clip(tone(57, 1.0, amplitude=2.0), -1, 1), SAMPLE_RATE)
    stats = InputStats()
    list(read_blocks(path, stats=stats))
    assert stats.clipped > 0.3 * SAMPLE_RATE
    assert stats.peak == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("content", [b"", b"RIFF....WAVEfmt garbage", "text".encode() * 100])
def test_cli_bad_file_exits_with_a_message_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture, content: bytes
) -> None:
    audio, out = tmp_path / "bad.wav", tmp_path / "out.mid"
    audio.write_bytes(content)
    assert main(["transcribe", str(audio), "-o", str(out)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "bad.wav" in err and err.startswith("rtamt: ")
    assert not out.exists()
