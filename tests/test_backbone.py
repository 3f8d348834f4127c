"""The exported streaming ONNX backbone and timbre encoder equal their PyTorch models; bad model files give
clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rtamt.backbone import Backbone as BackboneStage  # noqa: E402
from rtamt.cqt import CQTConfig  # noqa: E402
from rtamt.models import ModelError  # noqa: E402
from rtamt.training.backbone import export_model  # noqa: E402
from rtamt.training.models import Backbone, parameter_count  # noqa: E402

FRAMES = 150


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Backbone, Path, np.ndarray, np.ndarray]:
    torch.manual_seed(0)
    # the optional flux branch, GRU and context GRU carry caches too
    model = Backbone(gru_hidden=8, flux=4, context_hidden=6, context_channels=4, context_input=True).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, as after training
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
        model.refine.weight.normal_(0.0, 0.5)  # the GRUs' corrections start at zero: make them count
        model.context_refine.weight.normal_(0.0, 0.5)
    path = tmp_path_factory.mktemp("model") / "backbone.onnx"
    export_model(model, 2, CQTConfig(gamma_hz=10.0), path)
    hcqt = np.random.default_rng(0).normal(-6, 3, size=(FRAMES, 8, 252)).astype(np.float32)
    with torch.no_grad():
        onset, frame, *_ = model(torch.from_numpy(np.ascontiguousarray(hcqt.transpose(1, 2, 0)[None])))
    reference = np.stack([onset[0].numpy().T, frame[0].numpy().T], axis=1)  # (T, 2, 84)
    return model, path, hcqt, reference


def test_parameter_budget(exported) -> None:
    assert parameter_count(exported[0]) <= 40_000


@settings(max_examples=15, deadline=None)
@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=8))
def test_streaming_onnx_equals_pytorch(exported, sizes: list[int]) -> None:
    _, path, hcqt, reference = exported
    stage = BackboneStage(path)
    streamed = stream(stage, hcqt, sizes)
    lookahead = stage.lookahead
    assert streamed.shape == (FRAMES, 2, 84)
    # Output frame t is the model's output at input t + lookahead.
    np.testing.assert_allclose(streamed[: FRAMES - lookahead], reference[lookahead:], atol=1e-4)


def stream(stage, hcqt: np.ndarray, sizes: list[int]) -> np.ndarray:
    """``hcqt`` through ``stage`` in chunks of ``sizes`` (cycled), then the flush."""
    outputs, pos, i = [], 0, 0
    while pos < len(hcqt):
        n = sizes[i % len(sizes)]
        outputs.append(stage.process(hcqt[pos : pos + n]))
        pos, i = pos + n, i + 1
    outputs.append(stage.flush())
    return np.concatenate(outputs)


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "register-film"])
def exported_encoder(tmp_path_factory: pytest.TempPathFactory, request) -> tuple[Path, np.ndarray, np.ndarray]:  # noqa: ANN001
    from rtamt.training.export import export_streaming
    from rtamt.training.models import TimbreEncoder

    torch.manual_seed(1)
    model = TimbreEncoder(dim=6, width=8, register_film=request.param).eval()
    if request.param:
        with torch.no_grad():
            model.register_scale.normal_(0, 0.5), model.register_shift.normal_(0, 0.5)
    path = tmp_path_factory.mktemp("model") / "timbre.onnx"
    export_streaming(model, "timbre", ["embedding"], {"embedding": 2}, 1, CQTConfig(gamma_hz=10.0), path, {"dim": "6"})
    hcqt = np.random.default_rng(1).normal(-6, 3, size=(FRAMES, 8, 252)).astype(np.float32)
    with torch.no_grad():
        embedding, *_ = model(torch.from_numpy(np.ascontiguousarray(hcqt.transpose(1, 2, 0)[None])))
    return path, hcqt, embedding[0].numpy().transpose(2, 0, 1)  # (T, D, 84)


@settings(max_examples=10, deadline=None)
@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=8))
def test_streaming_timbre_encoder_equals_pytorch(exported_encoder, sizes: list[int]) -> None:
    from rtamt.backbone import TimbreEncoder as EncoderStage

    path, hcqt, reference = exported_encoder
    stage = EncoderStage(path)
    streamed = stream(stage, hcqt, sizes)
    assert streamed.shape == (FRAMES, 6, 84)
    np.testing.assert_allclose(streamed[: FRAMES - 1], reference[1:], atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(streamed, axis=1), 1.0, atol=1e-4)


def test_metadata_carries_front_end_and_lookahead(exported) -> None:
    stage = BackboneStage(exported[1])
    assert stage.lookahead == 2 and stage.latency_s == pytest.approx(2 * 256 / 22050)
    assert '"gamma_hz": 10.0' in stage.meta["cqt_config"]


def test_missing_and_corrupt_model_files(tmp_path: Path, exported) -> None:
    with pytest.raises(ModelError, match="model file not found"):
        BackboneStage(tmp_path / "nope.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(exported[1].read_bytes()[:5000])
    with pytest.raises(ModelError, match="corrupt.onnx: not a valid ONNX model"):
        BackboneStage(corrupt)
    text = tmp_path / "text.onnx"
    text.write_text("hello")
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        BackboneStage(text)


def test_old_layout_model_is_refused_with_advice(tmp_path: Path, exported) -> None:
    from rtamt.training.export import write_metadata

    old = tmp_path / "old.onnx"
    old.write_bytes(exported[1].read_bytes())
    write_metadata(old, "layout", "freq-major")
    with pytest.raises(ModelError, match="export it again"):
        BackboneStage(old)


def test_onset_targets_widen_forward_in_time_only() -> None:
    from rtamt.training.backbone import widen

    onset = torch.zeros(1, 2, 8)
    onset[0, 0, 2] = 1.0
    onset[0, 1, 7] = 1.0  # at the crop's end: nothing spills over
    wide = widen(onset, 3)
    assert wide[0, 0].tolist() == [0, 0, 1, 1, 1, 0, 0, 0]
    assert wide[0, 1].tolist() == [0, 0, 0, 0, 0, 0, 0, 1]
    assert torch.equal(widen(onset, 1), onset)


def test_restrikes_are_onsets_of_pitches_that_just_sounded() -> None:
    from rtamt.training.backbone import focal_loss, restrikes

    onset = torch.zeros(1, 2, 20)
    frame = torch.zeros(1, 2, 20)
    frame[0, 0, 2:8] = 1  # pitch 0 sounds over frames 2-7 and is struck again at 8 (and 15, after a gap)
    onset[0, 0, [2, 8, 15]] = 1
    onset[0, 1, 5] = 1  # pitch 1 starts from silence
    frame[0, 1, 5:9] = 1
    struck = restrikes(onset, frame)
    assert struck[0, 0].nonzero().flatten().tolist() == [8]
    assert struck[0, 1].sum() == 0
    prob = torch.rand(1, 2, 20)
    plain = focal_loss(prob, onset, 0.4)
    assert torch.isclose(focal_loss(prob, onset, 0.4, weight=torch.ones_like(prob)), plain)
    weighted = focal_loss(prob, onset, 0.4, weight=1 + 3 * struck)
    assert weighted > plain  # the re-struck onset's positive term counts four times


def test_growing_the_register_film_starts_as_the_same_encoder() -> None:
    from rtamt.training.models import TimbreEncoder
    from rtamt.training.backbone import load_grown

    torch.manual_seed(3)
    plain = TimbreEncoder(dim=6, width=8).eval()
    grown = TimbreEncoder(dim=6, width=8, register_film=True).eval()
    load_grown(grown, plain.state_dict())
    hcqt = torch.randn(1, 8, 252, 20)
    with torch.no_grad():
        torch.testing.assert_close(plain(hcqt)[0], grown(hcqt)[0])
    with pytest.raises(ValueError, match="does not fit"):
        load_grown(grown, plain.state_dict() | {"extra": torch.zeros(1)})


@pytest.mark.parametrize("gru_hidden, flux, context", [(0, 8, 0), (16, 0, 0), (16, 4, 0), (16, 4, 12), (0, 0, 12)])
def test_growing_flux_branch_and_grus_starts_as_the_same_function(gru_hidden: int, flux: int, context: int) -> None:
    from rtamt.training.backbone import load_grown
    from rtamt.training.models import TimbreEncoder

    torch.manual_seed(2)
    plain = Backbone().eval()
    grown = Backbone(gru_hidden=gru_hidden, flux=flux, context_hidden=context, context_input=not gru_hidden).eval()
    load_grown(grown, plain.state_dict())
    hcqt = torch.randn(1, 8, 252, 30)
    with torch.no_grad():
        for a, b in zip(plain(hcqt)[:2], grown(hcqt)[:2]):
            torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="does not fit"):
        load_grown(grown, TimbreEncoder().state_dict())


def test_widening_the_onset_branch_keeps_the_function() -> None:
    """Net2Net growth of the onset branch: with no noise the wider model is the same function (GRU and
    flux branch included); with the default noise it stays close, and its copies differ from their
    originals (else they would never part)."""
    from rtamt.training.backbone import load_grown, widen_onset_branch

    torch.manual_seed(3)
    narrow = Backbone(gru_hidden=8, flux=4).eval()
    with torch.no_grad():  # batch-norm statistics away from their defaults, so copying them matters
        narrow.onset_bn.running_mean.uniform_(-0.5, 0.5)
        narrow.onset_bn.running_var.uniform_(0.5, 2.0)
        narrow.refine.weight.normal_(0, 0.5)
    wide = Backbone(gru_hidden=8, flux=4, onset_channels=12).eval()
    wide.load_state_dict(widen_onset_branch(narrow.state_dict(), 12, noise=0.0))
    hcqt = torch.randn(1, 8, 252, 30)
    with torch.no_grad():
        for a, b in zip(narrow(hcqt)[:2], wide(hcqt)[:2]):
            torch.testing.assert_close(a, b)
        load_grown(wide, narrow.state_dict())  # the training path: default noise
        weight = wide.onset_conv.conv.weight
        assert not torch.equal(weight[7], weight[0])
        for a, b in zip(narrow(hcqt)[:2], wide(hcqt)[:2]):
            assert (a - b).abs().max() < 0.05
    with pytest.raises(ValueError, match="cannot narrow"):
        widen_onset_branch(wide.state_dict(), 7)


def test_models_pair_up_when_their_front_ends_agree_as_settings() -> None:
    """A model exported after a front-end field was added writes it with its default; a model exported
    before leaves it out: the two still describe the same front end. Other settings are refused."""
    import json
    from types import SimpleNamespace

    from rtamt.backbone import NoteModels

    def model(**cqt) -> SimpleNamespace:
        return SimpleNamespace(lookahead=2, meta={"cqt_config": json.dumps(cqt)})

    older = model(lookahead_frames=0, gamma_hz=10.0)
    NoteModels(older, model(lookahead_frames=0, gamma_hz=10.0, window_peak=CQTConfig().window_peak))
    with pytest.raises(ModelError, match="different front-end settings"):
        NoteModels(older, model(lookahead_frames=0, gamma_hz=10.0, window_peak=0.7))
