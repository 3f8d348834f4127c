"""The timbre encoder's contrastive loss: cross-register positives can be weighted up."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from rtamt.training.timbre import supcon_loss  # noqa: E402


def unit(*rows: list[float]) -> torch.Tensor:
    x = torch.tensor(rows, dtype=torch.float32)
    return x / x.norm(dim=1, keepdim=True)


def test_far_positives_weigh_more_when_asked() -> None:
    # instrument 0 plays pitches 40, 41 (alike) and 64 (two octaves up, embedded apart); instrument 1 at 52
    embeddings = unit([1.0, 0.0, 0.0], [0.95, 0.1, 0.0], [0.2, 0.0, 1.0], [0.0, 1.0, 0.0])
    labels = torch.tensor([0, 0, 0, 1])
    pitch = torch.tensor([40, 41, 64, 52])
    plain = supcon_loss(embeddings, labels, 0.15)
    assert torch.allclose(supcon_loss(embeddings, labels, 0.15, pitch, 0.0), plain)
    weighted = supcon_loss(embeddings, labels, 0.15, pitch, 2.0)
    assert weighted > plain  # the far positive is the poorly matched one: counting it more costs more
    together = unit([1.0, 0.0, 0.0], [0.95, 0.1, 0.0], [0.9, 0.0, 0.1], [0.0, 1.0, 0.0])
    assert supcon_loss(together, labels, 0.15, pitch, 2.0) < weighted  # pulling the registers together pays
