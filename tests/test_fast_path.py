"""The fast onset path: a short-window CQT beside the HCQT (rtamt.frontend.FastPathTap) and the
backbone's branch that reads it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtamt.constants import FAST_CHANNELS, HOP, MIDI_MIN, N_FAST, SAMPLE_RATE, pitch_to_hz
from rtamt.cqt import CQTConfig
from rtamt.frontend import FastPathTap, build_frontend
from tests.conftest import music_like, split_randomly

MAIN = CQTConfig(gamma_hz=10.0)
FAST = CQTConfig(gamma_hz=60.0)
AUDIO = music_like(1.6, seed=21)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.one_of(st.integers(1, 300), st.integers(301, 8192)), min_size=1, max_size=12))
def test_fast_path_front_end_streams_and_keeps_the_hcqt(sizes: list[int]) -> None:
    chain = build_frontend(config=MAIN, fast=FAST)
    whole = chain.run([AUDIO])
    parts = [chain.process(block) for block in split_randomly(AUDIO, sizes)] + [chain.flush()]
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-6, rtol=0)
    assert whole.shape[1:] == (8 + N_FAST, 252)
    plain = build_frontend(config=MAIN).run([AUDIO])
    np.testing.assert_array_equal(whole[:, :8], plain)  # the HCQT channels are the plain front end's


def test_fast_channels_peak_sooner_on_a_struck_low_note() -> None:
    """A struck-string-like C3 (sharp attack, 0.3 s decay) starting at frame 40: its fundamental's bin
    peaks within two frames in the fast channels, at least two frames before the HCQT's (whose windows
    there are about 80 ms long)."""
    pitch, start_frame = 48, 40
    n = np.arange(SAMPLE_RATE * 2)
    envelope = np.where(n >= start_frame * HOP, np.exp(-(n - start_frame * HOP) / (0.3 * SAMPLE_RATE)), 0.0)
    audio = (0.3 * envelope * np.sin(2 * np.pi * pitch_to_hz(pitch) * n / SAMPLE_RATE)).astype(np.float32)
    frames = build_frontend(config=MAIN, fast=FAST).run([audio])
    centre = 3 * (pitch - MIDI_MIN) + 1
    slow_peak = int(np.argmax(frames[:, 1, centre]))  # harmonic 1 of the HCQT
    fast_peak = int(np.argmax(frames[:, 8 + FAST_CHANNELS.index(1), centre]))
    assert start_frame <= fast_peak <= start_frame + 2
    assert fast_peak <= slow_peak - 2


def test_fast_path_needs_the_same_look_ahead() -> None:
    with pytest.raises(ValueError, match="look-ahead"):
        FastPathTap(CQTConfig(gamma_hz=60.0, lookahead_frames=1), MAIN.lookahead_frames)


def test_growing_the_fast_branch_starts_as_the_same_function() -> None:
    torch = pytest.importorskip("torch")
    from rtamt.training.backbone import load_grown
    from rtamt.training.models import Backbone

    torch.manual_seed(4)
    plain = Backbone(gru_hidden=8, flux=4).eval()
    grown = Backbone(gru_hidden=8, flux=4, fast=True).eval()
    load_grown(grown, plain.state_dict())
    hcqt = torch.randn(1, 8 + N_FAST, 252, 30)
    with torch.no_grad():
        for a, b in zip(plain(hcqt[:, :8])[:2], grown(hcqt)[:2]):
            torch.testing.assert_close(a, b)
        grown.onset_conv.conv.weight[:, -N_FAST:].fill_(0.1)  # once trained, the fast channels count
        changed = grown(hcqt)[0]
        assert not torch.allclose(changed, plain(hcqt[:, :8])[0])


def test_growing_a_fast_trunk_starts_as_the_same_function() -> None:
    torch = pytest.importorskip("torch")
    from rtamt.training.backbone import load_grown
    from rtamt.training.models import Backbone

    torch.manual_seed(7)
    plain = Backbone(gru_hidden=8, flux=4, fast=True).eval()
    with torch.no_grad():
        plain.onset_conv.conv.weight.normal_(0, 0.3)
    grown = Backbone(gru_hidden=8, flux=4, fast=True, fast_trunk=True).eval()
    load_grown(grown, plain.state_dict())
    hcqt = torch.randn(1, 8 + N_FAST, 252, 30)
    with torch.no_grad():
        for a, b in zip(plain(hcqt)[:2], grown(hcqt)[:2]):
            torch.testing.assert_close(a, b)
        grown.conv1.conv.weight[:, -N_FAST:].fill_(0.1)  # once trained, the frame branch reads the fast path
        assert not torch.allclose(grown(hcqt)[1], plain(hcqt)[1])
    with pytest.raises(ValueError, match="fast path"):
        Backbone(fast_trunk=True)


def test_sharing_a_fresh_fast_trunk_moves_harmonics_one_to_three() -> None:
    torch = pytest.importorskip("torch")
    from rtamt.constants import FAST_CHANNELS
    from rtamt.training.backbone import load_grown, share_fast_trunk
    from rtamt.training.models import Backbone

    torch.manual_seed(8)
    plain = Backbone(gru_hidden=8, flux=4, fast=True).eval()
    grown = Backbone(gru_hidden=8, flux=4, fast=True, fast_trunk=True).eval()
    load_grown(grown, plain.state_dict())
    share_fast_trunk(grown, 0.25)
    old, new = plain.conv1.conv.weight, grown.conv1.conv.weight
    for k, channel in enumerate(FAST_CHANNELS):
        torch.testing.assert_close(new[:, 8 + k], 0.25 * old[:, channel])
        torch.testing.assert_close(new[:, channel], 0.75 * old[:, channel])
    torch.testing.assert_close(new[:, 0], old[:, 0])  # the sub-harmonic and harmonics 4-7 stay
    hcqt = torch.randn(1, 8, 252, 30)
    with torch.no_grad():  # where both front ends agree, the function is unchanged
        same = torch.cat([hcqt, hcqt[:, list(FAST_CHANNELS)]], dim=1)
        torch.testing.assert_close(grown(same)[1], plain(same)[1], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="freshly grown"):
        share_fast_trunk(grown, 0.25)


@pytest.mark.parametrize("fast_trunk", [False, True])
def test_fast_branch_streams_in_chunks(fast_trunk: bool) -> None:
    torch = pytest.importorskip("torch")
    from rtamt.training.models import Backbone

    torch.manual_seed(5)
    model = Backbone(gru_hidden=8, flux=4, fast=True, fast_trunk=fast_trunk).eval()
    with torch.no_grad():
        model.onset_conv.conv.weight.normal_(0, 0.3)
        model.conv1.conv.weight.normal_(0, 0.3)
        hcqt = torch.randn(1, 8 + N_FAST, 252, 40)
        whole = model(hcqt)[:2]
        caches = model.initial_caches()
        parts = []
        for a, b in ((0, 7), (7, 8), (8, 25), (25, 40)):
            onset, frame, *caches = model(hcqt[..., a:b], *caches)
            parts.append((onset, frame))
        for index in range(2):
            torch.testing.assert_close(torch.cat([p[index] for p in parts], dim=-1), whole[index], atol=1e-5, rtol=0)


def _fast_model(seed: int, grown_from: str = "", fast_trunk: bool = False):
    """A backbone with the fast path (random, or grown from a checkpoint's trained weights) whose fast
    channels already count (in the first conv too, with ``fast_trunk``)."""
    torch = pytest.importorskip("torch")
    from rtamt.training.backbone import load_grown
    from rtamt.training.export import load_checkpoint
    from rtamt.training.models import Backbone

    torch.manual_seed(seed)
    model = Backbone(gru_hidden=16 if grown_from else 8, flux=4, fast=True, fast_trunk=fast_trunk).eval()
    if grown_from:
        load_grown(model, load_checkpoint(Path(grown_from))["model"])
    with torch.no_grad():
        model.onset_conv.conv.weight[:, -N_FAST:].normal_(0, 0.3)  # the fast channels count
        if fast_trunk:
            model.conv1.conv.weight[:, -N_FAST:].normal_(0, 0.3)
    return model


@pytest.mark.parametrize("fast_trunk", [False, True])
def test_fast_backbone_exports_and_streams(tmp_path, fast_trunk: bool) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from rtamt.backbone import Backbone as BackboneStage
    from rtamt.models import ModelError, fast_config_of
    from rtamt.training.backbone import export_model

    model = _fast_model(6, fast_trunk=fast_trunk)
    path = tmp_path / "backbone.onnx"
    export_model(model, 2, MAIN, path, fast=FAST)
    with pytest.raises(ValueError, match="fast"):
        export_model(model, 2, MAIN, tmp_path / "other.onnx")  # a fast model needs its fast settings
    hcqt = np.random.default_rng(1).normal(-6, 3, size=(60, 8 + N_FAST, 252)).astype(np.float32)
    with torch.no_grad():
        onset, frame, *_ = model(torch.from_numpy(np.ascontiguousarray(hcqt.transpose(1, 2, 0)[None])))
    reference = np.stack([onset[0].numpy().T, frame[0].numpy().T], axis=1)
    stage = BackboneStage(path)
    assert stage.input_channels == 8 + N_FAST and fast_config_of(stage.meta) == FAST
    streamed = np.concatenate([stage.process(hcqt[a:b]) for a, b in ((0, 5), (5, 6), (6, 33), (33, 60))] + [stage.flush()])
    np.testing.assert_allclose(streamed[:58], reference[2:], atol=1e-4)
    with pytest.raises(ModelError, match="front-end channels"):
        stage.process(hcqt[:4, :8])


def test_transcriber_builds_the_fast_path_from_the_backbone(tmp_path) -> None:
    """A models folder whose backbone reads the fast path: the transcriber builds the fast front end beside
    the HCQT, the timbre encoder reads the HCQT channels, and any block size gives the same notes."""
    pytest.importorskip("onnx")
    import shutil

    from rtamt.audio import read_all
    from rtamt.models import models_dir
    from rtamt.pipeline import Transcriber
    from rtamt.training.backbone import export_model
    from rtamt.training.export import set_metadata, tuned_settings

    shipped = models_dir()
    shutil.copy(shipped / "timbre.onnx", tmp_path / "timbre.onnx")
    export_model(_fast_model(7, "models/checkpoints/backbone-onset.pt"), 2, MAIN, tmp_path / "backbone.onnx", fast=FAST)
    set_metadata(tmp_path / "backbone.onnx", tuned_settings(shipped / "backbone.onnx"))
    audio, rate = read_all("examples/duet/mix.flac")
    transcriber = Transcriber(rate, models=tmp_path, sustain=False)
    assert "fast-path" in transcriber.chain and "fast-path-join" in transcriber.chain
    whole = transcriber.run([audio])
    assert any(event.on for event in whole)
    rng = np.random.default_rng(3)
    blocks = split_randomly(audio, list(rng.integers(1, 5000, size=12)))
    assert transcriber.run(blocks) == whole
