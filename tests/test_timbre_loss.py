"""The timbre encoder's contrastive loss: cross-register positives can be weighted up; with ``cross_mix``
one loss spans the crops of a batch, each slot labelled by its sound."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from rtamt.training.timbre import TimbreConfig, batch_loss, supcon_loss  # noqa: E402


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


def test_near_negatives_weigh_more_when_asked() -> None:
    # instrument 0 at pitches 40 and 64; instrument 1 at 41 (same register as the first, embedded close to
    # it) and at 76 (far from everything)
    embeddings = unit([1.0, 0.0, 0.0], [0.6, 0.0, 0.8], [0.9, 0.3, 0.0], [0.0, 1.0, 0.0])
    labels = torch.tensor([0, 0, 1, 1])
    pitch = torch.tensor([40, 64, 41, 76])
    plain = supcon_loss(embeddings, labels, 0.15, pitch)
    assert torch.allclose(supcon_loss(embeddings, labels, 0.15, pitch, near_negative_weight=0.0), plain)
    weighted = supcon_loss(embeddings, labels, 0.15, pitch, near_negative_weight=4.0)
    assert weighted > plain  # the close negative at the same register counts five times
    apart = unit([1.0, 0.0, 0.0], [0.6, 0.0, 0.8], [0.0, 0.3, 0.9], [0.0, 1.0, 0.0])
    assert supcon_loss(apart, labels, 0.15, pitch, near_negative_weight=4.0) < weighted  # telling them apart pays
    far = torch.tensor([40, 64, 52, 76])  # no negative within NEAR_SEMITONES: the weight changes nothing
    assert torch.allclose(supcon_loss(embeddings, labels, 0.15, far, near_negative_weight=4.0),
                          supcon_loss(embeddings, labels, 0.15, far))  # fmt: skip


class FixedEncoder(torch.nn.Module):
    """Returns a fixed (1, D, 84, T) embedding per crop, whatever the input."""

    def __init__(self, embedding: torch.Tensor) -> None:
        super().__init__()
        self.embedding = embedding

    def forward(self, hcqt: torch.Tensor):
        return (self.embedding,)


def test_cross_mix_gives_solo_crops_negatives_and_same_sounds_positives() -> None:
    # Two solo crops (one instrument each, slot 0). Per crop, neither sees the other: embedding the two
    # sounds alike or apart costs the same. Across the batch, the loss tells them apart by their sounds.
    frames, lookahead = 200, 2
    instrument = torch.full((2, 84, frames), -1, dtype=torch.int64)
    instrument[:, 40, 180:190] = 0
    instrument[:, 52, 180:190] = 0
    apart = torch.zeros(2, 3, 84, frames)
    apart[0, 0] = 1.0  # crop 0's instrument points one way, crop 1's another
    apart[1, 1] = 1.0
    alike = apart.clone()
    alike[1] = apart[0]
    batch = {"hcqt": torch.zeros(2, 8, 252, frames), "instrument": instrument}
    generator = torch.Generator().manual_seed(0)

    def loss(embedding: torch.Tensor, config: TimbreConfig, timbre: list[int] | None = None) -> float:
        given = batch if timbre is None else dict(batch, timbre=torch.tensor([[t] + [-1] * 15 for t in timbre]))
        return float(batch_loss(FixedEncoder(embedding), given, config, generator)[0])

    plain = TimbreConfig(bins_per_crop=64, lookahead=lookahead)
    assert loss(apart, plain) == pytest.approx(loss(alike, plain))
    crossed = TimbreConfig(bins_per_crop=64, lookahead=lookahead, cross_mix=True)
    assert loss(alike, crossed, [3, 5]) > loss(apart, crossed, [3, 5])  # two sounds: apart pays
    assert loss(apart, crossed, [3, 3]) > loss(alike, crossed, [3, 3])  # one sound in both crops: together pays
    _, positive, negative, *_ = batch_loss(FixedEncoder(apart), dict(batch, timbre=torch.tensor([[3] + [-1] * 15] * 2)),
                                          crossed, generator)  # fmt: skip
    assert negative != negative and positive < 1.0  # no negatives (NaN); the other crop's bins are positives


def test_mix_weight_adds_the_per_crop_loss_to_the_pooled_one() -> None:
    # One crop with two instruments: with the per-crop term added, embedding them apart pays more than the
    # pooled loss alone pays for it.
    frames, lookahead = 200, 2
    instrument = torch.full((1, 84, frames), -1, dtype=torch.int64)
    instrument[0, 40, 150:190] = 0
    instrument[0, 52, 150:190] = 1
    apart = torch.zeros(1, 3, 84, frames)
    apart[0, 0, 40] = 1.0
    apart[0, 1, 52] = 1.0
    alike = torch.zeros(1, 3, 84, frames)
    alike[0, 0] = 1.0
    batch = {"hcqt": torch.zeros(1, 8, 252, frames), "instrument": instrument,
             "timbre": torch.tensor([[3, 4] + [-1] * 14])}  # fmt: skip

    def loss(embedding: torch.Tensor, weight: float) -> float:
        config = TimbreConfig(bins_per_crop=64, lookahead=lookahead, cross_mix=True, mix_weight=weight)
        return float(batch_loss(FixedEncoder(embedding), batch, config, torch.Generator().manual_seed(0))[0])

    pooled_gap = loss(alike, 0.0) - loss(apart, 0.0)
    assert loss(alike, 1.0) - loss(apart, 1.0) > pooled_gap + 0.1  # the per-crop term rewards apart
