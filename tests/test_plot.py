"""PNG piano rolls: `transcribe --plot` in the channel colours, `eval --plot` with hits, misses and false
notes in their own colours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtamt.cli import main
from rtamt.constants import HOP_S
from rtamt.palette import colour_of
from rtamt.tracker import NoteEvent

pytest.importorskip("matplotlib", reason="the plot extra (matplotlib) is not installed")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "duet"
MODELS = Path(__file__).resolve().parent.parent / "models"


def pixels_of(path: Path, hex_colour: str) -> int:
    """Pixels of exactly that colour in a PNG."""
    from matplotlib.image import imread

    image = np.round(imread(path)[..., :3] * 255).astype(int)
    code = hex_colour.lstrip("#")
    target = np.array([int(code[i : i + 2], 16) for i in (0, 2, 4)])
    return int(np.all(image == target, axis=-1).sum())


def note(on: bool, pitch: int, time_s: float, timbre: int = 0) -> NoteEvent:
    frame = round(time_s / HOP_S)
    return NoteEvent(on=on, pitch=pitch, frame=frame, decided=frame + 1, velocity=64, timbre=timbre)


def test_comparison_counts_and_colours_hits_misses_and_false_notes(tmp_path: Path) -> None:
    from rtamt.plot import FALSE, HIT, MISS, plot_comparison

    reference = [(0.5, 1.0, 60), (1.5, 2.0, 64), (2.5, 3.0, 67)]  # the last is missed
    events = [note(True, 60, 0.51), note(False, 60, 1.0), note(True, 64, 1.52, 1), note(False, 64, 2.0, 1),
              note(True, 70, 2.5), note(False, 70, 3.0), note(True, 67, 2.8), note(False, 67, 3.2)]  # fmt: skip
    counts = plot_comparison(reference, events, tmp_path / "piece.png", "piece")
    assert counts == {"hits": 2, "misses": 1, "false": 2}  # 67 came 300 ms late: a miss and a false note
    for colour in (HIT, MISS, FALSE):
        assert pixels_of(tmp_path / "piece.png", colour) > 100, colour


def test_roll_draws_each_channel_in_its_colour(tmp_path: Path) -> None:
    from rtamt.plot import notes_with_channels, plot_roll

    events = [note(True, 60, 0.5), note(True, 72, 0.6, 1), note(False, 60, 1.5), note(True, 48, 1.0, 10)]
    notes = notes_with_channels(events)  # the two never ended stop at the last event
    assert [(pitch, channel) for _, _, pitch, channel in notes] == [(60, 0), (72, 1), (48, 11)]
    assert np.allclose([n[:2] for n in notes], [(0.5, 1.5), (0.6, 1.5), (1.0, 1.5)], atol=HOP_S)
    assert plot_roll(events, tmp_path / "roll.png") == 3
    for channel in (0, 1, 11):
        assert pixels_of(tmp_path / "roll.png", colour_of(channel)) > 100, channel
    assert pixels_of(tmp_path / "roll.png", colour_of(2)) == 0


@pytest.mark.skipif(not (MODELS / "timbre.onnx").exists(), reason="shipped models missing")
def test_transcribe_and_eval_write_their_plots(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["transcribe", str(EXAMPLE / "mix.flac"), "-o", str(tmp_path / "duet.mid"),
                 "--plot", str(tmp_path / "duet.png")]) == 0  # fmt: skip
    assert f"wrote {tmp_path / 'duet.png'}" in capsys.readouterr().out
    assert pixels_of(tmp_path / "duet.png", colour_of(0)) > 100
    assert pixels_of(tmp_path / "duet.png", colour_of(1)) > 100
    assert main(["eval", str(EXAMPLE.parent), "--plot", str(tmp_path / "eval")]) == 0
    assert [p.name for p in (tmp_path / "eval").iterdir()] == ["duet.png"]
