"""The training loop both trainers share: a run stopped and resumed from its checkpoint ends with the same
weights as a run straight through, for the backbone and the timbre encoder."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("music21")

from tests.conftest import needs_synth  # noqa: E402

COMMON = dict(steps=4, batch=2, crop_frames=64, workers=0, valid_items=2, checkpoint_every=2, threads=1)


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rtamt.training import data

    out = tmp_path_factory.mktemp("shards")
    config = data.BuildConfig(seed=7)
    original, data.SHARD_EXAMPLES = data.SHARD_EXAMPLES, 2
    try:
        data.build_split(out, "train", 2 * data.EXAMPLE_S / 3600, config, {}, workers=1)
        data.build_split(out, "valid", 1 * data.EXAMPLE_S / 3600, config, {}, workers=1)
    finally:
        data.SHARD_EXAMPLES = original
    return out


@needs_synth
@pytest.mark.parametrize("trainer", ["backbone", "backbone-context", "timbre"])
def test_a_resumed_run_ends_where_a_straight_run_does(shards: Path, tmp_path: Path, trainer: str) -> None:
    from rtamt.training import backbone, timbre

    module, config_class = (timbre, timbre.TimbreConfig) if trainer == "timbre" else (backbone, backbone.TrainConfig)
    extra = {"timbre": {"bins_per_crop": 64}, "backbone-context": {"gru_hidden": 4, "context_hidden": 4,
             "context_lr_scale": 10.0}}.get(trainer, {})  # fmt: skip
    module.train(shards, tmp_path / "straight", config_class(**COMMON, **extra))
    module.train(shards, tmp_path / "resumed", config_class(**COMMON, **extra, stop_after=2))
    halfway = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)
    assert halfway["step"] == 2
    module.train(shards, tmp_path / "resumed", config_class(**COMMON, **extra))
    straight = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)
    resumed = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)
    assert straight["step"] == resumed["step"] == 4
    assert [e["step"] for e in resumed["log"]] == [2, 4]
    for name, weights in straight["model"].items():
        torch.testing.assert_close(resumed["model"][name], weights, rtol=0, atol=0)
    assert any(not torch.equal(halfway["model"][n], w) for n, w in straight["model"].items())  # it trained on


def test_parameter_groups_scale_the_learning_rate_of_named_parts() -> None:
    from rtamt.training.loop import parameter_groups
    from rtamt.training.models import Backbone

    model = Backbone(gru_hidden=4, context_hidden=4)
    groups = parameter_groups(model, 1e-3, {"context_": 10.0})
    by_lr = {group["lr"]: {id(p) for p in group["params"]} for group in groups}
    context = {id(p) for name, p in model.named_parameters() if name.startswith("context_")}
    assert set(by_lr) == {1e-3, 1e-2} and by_lr[1e-2] == context
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert [g["lr"] for g in parameter_groups(model, 1e-3, None)] == [1e-3]


def test_blend_averages_two_checkpoints_of_one_architecture(tmp_path: Path) -> None:
    from rtamt.training import timbre
    from rtamt.training.export import blend_checkpoints, load_checkpoint
    from rtamt.training.models import TimbreEncoder

    def checkpoint(seed: int, step: int) -> dict:
        torch.manual_seed(seed)
        return {"model": TimbreEncoder(8, 4).state_dict(), "config": {"dim": 8, "width": 4}, "step": step, "log": []}

    first, second = checkpoint(0, 10), checkpoint(1, 20)
    torch.save(first, tmp_path / "first.pt")
    torch.save(second, tmp_path / "second.pt")
    assert timbre.main(["blend", str(tmp_path / "first.pt"), str(tmp_path / "second.pt"), "--weight", "0.25",
                        "--out", str(tmp_path / "run")]) == 0  # fmt: skip
    blended = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert blended["step"] == 20 and blended["config"] == second["config"]
    floats = [k for k, v in second["model"].items() if v.is_floating_point()]
    assert floats
    for key in floats:
        expected = 0.75 * first["model"][key] + 0.25 * second["model"][key]
        assert torch.allclose(blended["model"][key], expected)
    assert any(not torch.equal(blended["model"][k], second["model"][k]) for k in floats)
    for weight, end in ((0.0, first), (1.0, second)):
        model = blend_checkpoints(first, second, weight)["model"]
        assert all(torch.allclose(model[k], end["model"][k]) for k in floats)
    with pytest.raises(ValueError, match="outside"):
        blend_checkpoints(first, second, 1.5)
    other = {**second, "model": TimbreEncoder(16, 4).state_dict()}
    with pytest.raises(ValueError, match="architectures"):
        blend_checkpoints(first, other, 0.5)
