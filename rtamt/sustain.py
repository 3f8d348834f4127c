"""Sustain pedal: where a pianist lets the keys go while the pedal keeps the strings ringing.

Under the sustain pedal a piano note rings on after its key is released, so notes that follow the sound
end long after the keys were let go (a median 179 ms on MAPS, models/README.md). The sustain model
(``models/sustain.onnx``, a small GRU over the tracker's input frames: onset and frame probability per
pitch and the timbre embedding averaged over the sounding pitches) gives, per frame, the probability that
notes are being held by the pedal. It goes down once ``press_frames`` frames in a row are at or above
``threshold`` and comes up when more than ``release_frames`` frames in a row have been under it (holds
against flicker near the threshold). While it is down, a note-on ends every sounding note that started
at least ``legato_gap_s`` before it (with ``cut_span``, only those within that many semitones of it: the
hand that moved on, not the other hand's held keys): one voice moves on, the key before it is let go. The tracker still
follows the sound; the stage swallows its later note-off of a note it already ended. The pedal's state
goes out as sustain-pedal changes (MIDI CC64) beside the notes, so a synthesizer keeps the released notes
ringing as they were heard. Causal: everything is
decided on the frame that arrives. For the first ``WARM_UP_FRAMES`` of a stream (0.58 s) the pedal stays up:
the model was not trained on them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace

import numpy as np

from rtamt.chain import Stage
from rtamt.constants import HOP_S, N_PITCHES
from rtamt.models import ModelError, open_session
from rtamt.tracker import NoteEvent, TrackedBlock

WARM_UP_FRAMES = 50  # a stream's first frames: the GRU starts from zero state and training gives them no loss


def frame_features(frames: np.ndarray) -> np.ndarray:
    """(n, 2 + D, 84) model frames -> (n, 168 + D): onset and frame probability per pitch, and the timbre
    embedding averaged over pitches weighted by their frame probability."""
    onset, frame, embedding = frames[:, 0], frames[:, 1], frames[:, 2:]
    weights = frame / np.maximum(frame.sum(axis=1, keepdims=True), 1e-3)
    pooled = np.einsum("np,ndp->nd", weights, embedding)
    return np.concatenate([onset, frame, pooled], axis=1).astype(np.float32)


def feature_count(embedding_dim: int) -> int:
    """Length of a frame's feature vector for a timbre encoder of ``embedding_dim``."""
    return 2 * N_PITCHES + embedding_dim


@dataclass(frozen=True)
class SustainConfig:
    threshold: float = 0.1  # a frame says 'held' when the held probability is at or above this
    legato_gap_s: float = 0.1  # a note-on ends only notes that started at least this long before it
    press_frames: int = 1  # the pedal goes down on the frame that makes this many in a row at or above the threshold
    release_frames: int = 0  # the pedal comes up on the next frame under the threshold after this many in a row
    cut_span: int | None = None  # a note-on ends only notes within this many semitones of it (None: every note)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SustainConfig:
        return cls(**{k: v for k, v in json.loads(text).items() if not k.startswith("_")})


@dataclass(frozen=True)
class PedalChange:
    """The sustain pedal going down or up at ``frame`` (decided when frame ``decided`` arrived)."""

    down: bool
    frame: int
    decided: int

    @property
    def time_s(self) -> float:
        return self.frame * HOP_S


class SustainModel:
    """The streaming sustain model: (n, features) frames in, (n,) held probabilities out, state carried."""

    kind = "sustain"

    def __init__(self, path: str | os.PathLike, threads: int = 1) -> None:
        self.session, self.meta = open_session(path, self.kind, threads)
        self.embedding_dim = int(self.meta["embedding_dim"])
        self.config = SustainConfig.from_json(self.meta["sustain"]) if "sustain" in self.meta else SustainConfig()
        self._state_shape = tuple(self.session.get_inputs()[1].shape)
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros(self._state_shape, dtype=np.float32)

    def process(self, features: np.ndarray) -> np.ndarray:
        if len(features) == 0:
            return np.zeros(0, dtype=np.float32)
        held, self._state = self.session.run(
            ["held", "state_out"], {"features": np.ascontiguousarray(features[None], dtype=np.float32), "state": self._state})
        return held[0]


class SustainStage(Stage):
    """Tracked frames -> the same frames and events, with note ends moved to the key releases under the
    pedal; the pedal's changes collect in ``changes`` until :meth:`take_changes`. Sits between the note
    tracker (``keep_frames``) and the timbre clusterer."""

    name = "sustain-pedal"

    def __init__(self, model: SustainModel, config: SustainConfig | None = None) -> None:
        self.model = model
        self.config = config or model.config
        self.changes: list[PedalChange] = []
        self.reset()

    def check_encoder(self, embedding_dim: int) -> None:
        if embedding_dim != self.model.embedding_dim:
            raise ModelError(f"the sustain model was trained on {self.model.embedding_dim}-dimensional timbre "
                             f"embeddings, the timbre encoder gives {embedding_dim}: train it again for this encoder")  # fmt: skip

    def reset(self) -> None:
        self.model.reset()
        self.frame = 0
        self.down = False
        self._over = 0  # frames in a row at or above the threshold
        self._under = 0  # frames in a row under it
        self._sounding: dict[int, NoteEvent] = {}  # note-ons passed on and not yet ended, by pitch
        self._released: set[int] = set()  # pitches ended here whose tracker note-off is still to come
        self.changes = []

    def empty_output(self) -> TrackedBlock:
        return TrackedBlock(np.zeros((0, 2, N_PITCHES), dtype=np.float32), [])

    def take_changes(self) -> list[PedalChange]:
        """The pedal changes decided since the last call."""
        changes, self.changes = self.changes, []
        return changes

    def process(self, block: TrackedBlock) -> TrackedBlock:
        held = self.model.process(frame_features(block.frames)) if len(block.frames) else np.zeros(0)
        per_frame, pedal = [], np.zeros(len(block.events), dtype=bool)
        for index, (probability, events) in enumerate(zip(held, block.events)):
            self._update_pedal(bool(probability >= self.config.threshold) and self.frame >= WARM_UP_FRAMES)
            pedal[index] = self.down
            out: list[NoteEvent] = []
            for event in events:
                self._pass(event, out)
            per_frame.append(out)
            self.frame += 1
        final: list[NoteEvent] = []
        for event in block.final:
            self._pass(event, final)
        return TrackedBlock(block.frames, per_frame, final, pedal)

    def flush(self) -> TrackedBlock:
        """End of stream: the pedal comes up (nothing is left held); pending changes stay to be taken."""
        self._set_pedal(False, self.frame)
        changes = self.changes
        self.reset()
        self.changes = changes
        return self.empty_output()

    def _update_pedal(self, held: bool) -> None:
        """Down after ``press_frames`` frames in a row say held; up when more than ``release_frames`` in a row
        have not."""
        self._over, self._under = (self._over + 1, 0) if held else (0, self._under + 1)
        if self.down:
            self._set_pedal(self._under <= self.config.release_frames, self.frame)
        else:
            self._set_pedal(self._over >= self.config.press_frames, self.frame)

    def _set_pedal(self, down: bool, frame: int) -> None:
        if down != self.down:
            self.changes.append(PedalChange(down, frame, frame))
            self.down = down

    def _pass(self, event: NoteEvent, out: list[NoteEvent]) -> None:
        if not event.on:
            if event.pitch in self._released:  # ended here already, at its key release
                self._released.discard(event.pitch)
            else:
                self._sounding.pop(event.pitch, None)
                out.append(event)
            return
        if self.down:
            span = self.config.cut_span
            for pitch, start in list(self._sounding.items()):
                near = span is None or abs(pitch - event.pitch) <= span
                if near and pitch != event.pitch and event.time_s - start.time_s >= self.config.legato_gap_s - 1e-9:
                    out.append(replace(event, on=False, pitch=pitch, velocity=0, timbre=0))
                    del self._sounding[pitch]
                    self._released.add(pitch)
        self._sounding[event.pitch] = event
        out.append(event)


def interleave(events: list[NoteEvent], changes: list[PedalChange]) -> list[NoteEvent | PedalChange]:
    """Note events and pedal changes in one stream, by the frame that decided them: a pedal going down comes
    before the events decided on its frame (the notes it holds are released after it), one coming up
    after them."""
    out: list[NoteEvent | PedalChange] = []
    pending = list(changes)
    for event in events:
        while pending and (pending[0].decided < event.decided or (pending[0].down and pending[0].decided == event.decided)):
            out.append(pending.pop(0))
        out.append(event)
    return out + pending
