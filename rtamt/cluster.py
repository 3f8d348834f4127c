"""Online timbre clustering: one MIDI channel per timbre, the number of timbres unknown.

Each note gets an embedding: the frame-probability-weighted mean of the timbre encoder's output at the
note's pitch over its first ``decision_frames`` frames. The note-on waits for that window (the delay is
part of the reported latency) and is then sent on the channel of the cluster the embedding joins:
- the nearest cluster (cosine) at or above ``join_threshold``;
- otherwise the note is novel: it goes out on the nearest channel, and when it ends its whole-note
  embedding (steadier than the first frames) is judged again: close enough to a real cluster, it joins
  it; else it starts (or joins) a *provisional* cluster. A provisional cluster that collects ``evidence``
  notes becomes a real cluster with a new channel (so one odd note never spawns a channel), and one that
  collects nothing for ``expire_notes`` notes is forgotten (with ``evidence`` 1 a novel note spawns at
  once, whatever its length). Only novel notes of at least ``evidence_min_frames`` frames count as
  evidence: short blips (often false positives or transients) stay on the channel they were sent on and
  spawn nothing, so an instrument that only plays shorter notes never gets a channel of its own;
- real clusters whose centroids converge above ``merge_threshold`` merge into the older one, whose
  channel carries on; a channel is never reused for another timbre.
With ``pedal_join_threshold``, a note decided while the sustain stage has the pedal down joins at that
cosine instead of ``join_threshold``: a pedal says one struck instrument rings on, across its registers.
When a note ends, its whole-note embedding replaces its first-frames embedding in its cluster.
Channels are 1-16 skipping 10 (GM drums); ``max_clusters`` caps the count (``--instruments K``), and with
``exact`` every novel note spawns until K clusters exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from rtamt.chain import Stage
from rtamt.constants import HOP_S, MIDI_MIN
from rtamt.tracker import NoteEvent, NoteTracker, TrackedBlock, TrackerConfig

MAX_CHANNELS = 15  # 16 MIDI channels minus the drum channel


@dataclass(frozen=True)
class ClusterConfig:
    decision_frames: int = 4
    join_threshold: float = 0.8
    evidence: int = 2
    evidence_min_frames: int = 0
    expire_notes: int = 30
    merge_threshold: float = 0.95
    max_clusters: int | None = None
    exact: bool = False
    register_aware: bool = False  # also compare a note with the cluster's notes nearest its pitch
    pedal_join_threshold: float | None = None  # join_threshold for notes decided with the sustain pedal down


REGISTER_SEMITONES = 12  # width of the pitch bands a register-aware cluster keeps apart


@dataclass
class Cluster:
    total: np.ndarray  # sum of member note embeddings (unit vectors)
    notes: int
    channel: int | None  # None while provisional
    born: int  # note counter when created
    last_note: int
    merged_into: int | None = None
    expired: bool = False
    registers: dict[int, np.ndarray] = field(default_factory=dict)  # pitch band -> sum of its embeddings

    @property
    def centroid(self) -> np.ndarray:
        return self.total / (np.linalg.norm(self.total) + 1e-12)

    def add(self, embedding: np.ndarray, pitch: int | None, sign: float = 1.0) -> None:
        """Add (or with ``sign`` -1 remove) a note's embedding, in total and in its pitch band."""
        self.total = self.total + sign * embedding
        if pitch is not None:
            band = pitch // REGISTER_SEMITONES
            self.registers[band] = self.registers.get(band, np.zeros_like(embedding)) + sign * embedding

    def similarity(self, embedding: np.ndarray, pitch: int | None, register_aware: bool) -> float:
        """Cosine with the centroid or, register-aware, the larger of that and the cosine with the mean
        of the cluster's notes in the band nearest ``pitch``: an instrument's timbre drifts with register,
        so a note in a new register is judged against the cluster's notes closest to it."""
        best = float(self.centroid @ embedding)
        if register_aware and pitch is not None and self.registers:
            band = pitch // REGISTER_SEMITONES
            nearest = min(self.registers, key=lambda b: (abs(b - band), b))
            local = self.registers[nearest]
            best = max(best, float(local @ embedding / (np.linalg.norm(local) + 1e-12)))
        return best


class OnlineClusterer:
    """Embeddings in, channel indices out, deterministically."""

    def __init__(self, config: ClusterConfig | None = None) -> None:
        self.config = config or ClusterConfig()
        self.reset()

    def reset(self) -> None:
        self.clusters: list[Cluster] = []
        self.channels_used = 0
        self.note_count = 0

    def resolve(self, index: int) -> int:
        """Follow merges to the cluster that now holds ``index``'s notes."""
        while self.clusters[index].merged_into is not None:
            index = self.clusters[index].merged_into
        return index

    def real(self) -> list[int]:
        return [i for i, c in enumerate(self.clusters) if c.channel is not None and c.merged_into is None]

    def _provisional(self) -> list[int]:
        return [i for i, c in enumerate(self.clusters) if c.channel is None and not c.expired]

    def _limit(self) -> int:
        return min(self.config.max_clusters or MAX_CHANNELS, MAX_CHANNELS)

    def _new(self, embedding: np.ndarray, real: bool, pitch: int | None = None) -> int:
        channel = None
        if real:
            channel, self.channels_used = self.channels_used, self.channels_used + 1
        cluster = Cluster(np.zeros_like(embedding), 0, channel, self.note_count, self.note_count)
        cluster.add(embedding, pitch)
        cluster.notes = 1
        self.clusters.append(cluster)
        return len(self.clusters) - 1

    def _similarities(self, indices: list[int], embedding: np.ndarray, pitch: int | None) -> np.ndarray:
        aware = self.config.register_aware
        return np.array([self.clusters[i].similarity(embedding, pitch, aware) for i in indices])

    def join_threshold(self, pedal: bool) -> float:
        """The cosine at which a note joins a cluster: lower under the sustain pedal, if so configured."""
        c = self.config
        return c.pedal_join_threshold if pedal and c.pedal_join_threshold is not None else c.join_threshold

    def assign(self, embedding: np.ndarray, pitch: int | None = None, pedal: bool = False) -> tuple[int, bool]:
        """Cluster index for a new note's first-frames embedding (its channel is ``clusters[index].channel``)
        and whether the note is novel (then :meth:`update` judges it again when it ends); ``pedal``: the
        sustain pedal was down when it was decided."""
        self.note_count += 1
        self._expire()
        real = self.real()
        if not real:
            return self._new(embedding, real=True, pitch=pitch), False
        sims = self._similarities(real, embedding, pitch)
        best = real[int(np.argmax(sims))]
        if sims.max() >= self.join_threshold(pedal) or len(real) >= self._limit():
            self._add(best, embedding, pitch)
            return best, False
        if self._evidence(len(real)) <= 1:  # spawn at once
            return self._new(embedding, real=True, pitch=pitch), False
        return best, True  # sent on the nearest channel; judged on the whole note

    def _evidence(self, n_real: int) -> int:
        """Notes a provisional cluster needs to become real (1 while fewer than K exist and K is exact)."""
        c = self.config
        return 1 if (c.exact and c.max_clusters and n_real < c.max_clusters) else c.evidence

    def _add(self, index: int, embedding: np.ndarray, pitch: int | None = None) -> None:
        cluster = self.clusters[index]
        cluster.add(embedding, pitch)
        cluster.notes += 1
        cluster.last_note = self.note_count
        if cluster.channel is not None:
            self._merge()

    def update(self, index: int, first: np.ndarray, full: np.ndarray, novel: bool, frames: int,
               pitch: int | None = None, pedal: bool = False) -> None:  # fmt: skip
        """A note of ``frames`` frames has ended. A known note's whole-note embedding replaces its
        first-frames embedding in its cluster; a novel note's joins the nearest real cluster it is close to,
        or counts as provisional evidence if it lasted ``evidence_min_frames``."""
        if not novel:
            cluster = self.clusters[self.resolve(index)]
            cluster.add(first, pitch, sign=-1.0)
            cluster.add(full, pitch)
            if cluster.channel is not None:
                self._merge()
            return
        real = self.real()
        sims = self._similarities(real, full, pitch)
        join = self.join_threshold(pedal)
        if sims.max() >= join or len(real) >= self._limit():
            self._add(real[int(np.argmax(sims))], full, pitch)
            return
        if frames < self.config.evidence_min_frames:
            return
        provisional = self._provisional()
        target = None
        if provisional:
            psims = self._similarities(provisional, full, pitch)
            if psims.max() >= join:
                target = provisional[int(np.argmax(psims))]
                self._add(target, full, pitch)
        if target is None:
            target = self._new(full, real=False, pitch=pitch)
        if self.clusters[target].notes >= self._evidence(len(real)):
            self.clusters[target].channel, self.channels_used = self.channels_used, self.channels_used + 1
            self._merge()

    def _merge(self) -> None:
        real = self.real()
        for a_pos, a in enumerate(real):
            for b in real[a_pos + 1 :]:
                ca, cb = self.clusters[a], self.clusters[b]
                if ca.merged_into is None and cb.merged_into is None and ca.centroid @ cb.centroid >= self.config.merge_threshold:
                    older, younger = (a, b) if ca.born <= cb.born else (b, a)
                    self.clusters[older].total = self.clusters[older].total + self.clusters[younger].total
                    for band, total in self.clusters[younger].registers.items():
                        registers = self.clusters[older].registers
                        registers[band] = registers.get(band, np.zeros_like(total)) + total
                    self.clusters[older].notes += self.clusters[younger].notes
                    self.clusters[younger].merged_into = older

    def _expire(self) -> None:
        for i in self._provisional():
            if self.note_count - self.clusters[i].last_note > self.config.expire_notes:
                self.clusters[i].expired = True


@dataclass
class _Note:
    pitch: int
    onset: NoteEvent
    first: np.ndarray = field(default_factory=lambda: np.zeros(0))  # embedding sum over the decision window
    total: np.ndarray = field(default_factory=lambda: np.zeros(0))  # embedding sum over the whole note
    frames: int = 0
    cluster: int | None = None
    novel: bool = False  # no real cluster was close at the decision: judged again on the whole note
    pedal: bool = False  # the sustain pedal was down at the decision


class TimbreAssigner(Stage):
    """Model frames -> NoteEvents carrying their timbre (cluster channel index).

    Input: the :class:`TrackedBlock` of a note-tracker stage before it (``tracked``: the chain's layout,
    where tracker and clusterer are stages of their own), or (n, 2 + D, 84) model frames, on whose
    onset/frame maps it then runs its own note tracker. Each note-on is held until its decision window
    of embeddings has arrived; every note-off carries the timbre of its note-on. ``tracker`` (settings
    or a tracker) sizes the window of past frames kept for back-dated notes. Finished notes are kept for
    hindsight refinement (``completed``) unless ``keep_notes`` is false, as for an endless live stream.
    """

    name = "timbre-clusterer"

    def __init__(self, tracker: TrackerConfig | NoteTracker | None = None,
                 config: ClusterConfig | None = None, tracked: bool = False) -> None:  # fmt: skip
        self.tracker = tracker if isinstance(tracker, NoteTracker) else NoteTracker(tracker)
        self.clusterer = OnlineClusterer(config)
        self.config = self.clusterer.config
        self.tracked = tracked
        self.history = max(self.tracker.max_backdate_frames, self.config.decision_frames) + 2
        self.keep_notes = True
        self.reset()

    @property
    def decision_window_s(self) -> float:
        """How long after a note's start its note-on leaves: the tracker's decision or the timbre window."""
        return max(self.config.decision_frames - 1, self.tracker.decision_frames) * HOP_S

    @property
    def latency_s(self) -> float:
        """The decision window; behind a tracker stage, only what it adds to the tracker's delay."""
        return self.decision_window_s - (self.tracker.latency_s if self.tracked else 0.0)

    def reset(self) -> None:
        self.tracker.reset()
        self.clusterer.reset()
        self.frame = 0
        self.pedal = False  # the sustain pedal as the stage before says, at the current frame
        self._past: list[np.ndarray] = []  # the last `history` frames, (2 + D, 84) each
        self._notes: dict[int, _Note] = {}  # sounding or pending notes by pitch
        self.finished: list[tuple[NoteEvent, NoteEvent, np.ndarray]] = []  # (on, off, whole-note embedding)
        self.completed: list[tuple[NoteEvent, NoteEvent, np.ndarray]] = []
        self.timbres_found = 0  # timbres of the last flushed stream (merged clusters count once)

    def empty_output(self) -> list[NoteEvent]:
        return []

    def process(self, block: np.ndarray | TrackedBlock) -> list[NoteEvent]:
        tracked = isinstance(block, TrackedBlock)
        frames = block.frames if tracked else block
        out: list[NoteEvent] = []
        for index, frame in enumerate(frames):
            self._past.append(frame)
            if len(self._past) > self.history:
                self._past.pop(0)
            if tracked and block.pedal is not None:
                self.pedal = bool(block.pedal[index])
            for event in block.events[index] if tracked else self.tracker.process(frame[None]):
                (self._start if event.on else self._end)(event, out)
            self._accumulate(frame)
            self._decide(out)
            self.frame += 1
        for event in block.final if tracked else []:  # the tracker stage's flush: every note ends
            self._end(event, out)
        return out

    def flush(self) -> list[NoteEvent]:
        """End every note (those its own tracker still holds: behind a tracker stage, that stage's flush has
        ended them already); the stream's notes stay in ``completed`` (for refinement) until the next
        flush."""
        out: list[NoteEvent] = []
        for event in self.tracker.flush():
            self._end(event, out)
        completed, found = self.finished, len(self.clusterer.real())
        self.reset()
        self.completed, self.timbres_found = completed, found
        return out

    def _weighted(self, frame: np.ndarray, pitch: int) -> np.ndarray:
        index = pitch - MIDI_MIN
        return frame[1, index] * frame[2:, index]

    def _start(self, event: NoteEvent, out: list[NoteEvent]) -> None:
        note = _Note(event.pitch, event)
        dim = self._past[-1].shape[0] - 2
        note.first, note.total = np.zeros(dim), np.zeros(dim)
        # frames of this note that have already arrived (the onset is decided a frame late, a sustained
        # start is back-dated): the current frame is added by _accumulate
        for k, past in enumerate(self._past[:-1]):
            frame_index = self.frame - (len(self._past) - 1) + k
            if frame_index >= event.frame:
                self._add_frame(note, past)
        self._notes[event.pitch] = note

    def _add_frame(self, note: _Note, frame: np.ndarray) -> None:
        weighted = self._weighted(frame, note.pitch)
        if note.frames < self.config.decision_frames:
            note.first = note.first + weighted
        note.total = note.total + weighted
        note.frames += 1

    def _accumulate(self, frame: np.ndarray) -> None:
        for note in self._notes.values():
            self._add_frame(note, frame)

    def _decide(self, out: list[NoteEvent]) -> None:
        for pitch in sorted(self._notes):
            note = self._notes[pitch]
            if note.cluster is None and note.frames >= self.config.decision_frames:
                self._assign(note, out)

    def _assign(self, note: _Note, out: list[NoteEvent]) -> None:
        embedding = _unit(note.first)
        note.pedal = self.pedal
        note.cluster, note.novel = self.clusterer.assign(embedding, note.pitch, note.pedal)
        note.first = embedding
        timbre = self.clusterer.clusters[note.cluster].channel or 0
        out.append(replace(note.onset, decided=self.frame, timbre=timbre))
        note.onset = out[-1]

    def _end(self, event: NoteEvent, out: list[NoteEvent]) -> None:
        note = self._notes.pop(event.pitch, None)
        if note is None:
            return
        if note.cluster is None:  # ended inside its decision window: decide with what there is
            self._assign(note, out)
        full = _unit(note.total)
        self.clusterer.update(note.cluster, note.first, full, note.novel, note.frames, note.pitch, note.pedal)
        off = replace(event, decided=max(event.decided, self.frame), timbre=note.onset.timbre)
        out.append(off)
        if self.keep_notes:
            self.finished.append((note.onset, off, full))


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vector)
    return vector / norm if norm > 1e-12 else np.full_like(vector, 1.0 / np.sqrt(max(len(vector), 1)))


def relabel(finished: list[tuple[NoteEvent, NoteEvent, np.ndarray]], labels: list[int]) -> list[NoteEvent]:
    """Every finished note's note-on and note-off, in note order, carrying its new timbre label (e.g. from
    :func:`refine`)."""
    return [replace(e, timbre=int(label)) for (on, off, _), label in zip(finished, labels) for e in (on, off)]


def refine(finished: list[tuple[NoteEvent, NoteEvent, np.ndarray]], k: int) -> list[int]:
    """Hindsight clustering of all notes: k-means (scikit-learn, 10 seeded starts) on the whole-note
    embeddings into ``k`` timbres (K given, or the online clusterer's ``timbres_found``). Memory grows with
    the number of notes, not its square, so hour-long files refine too. Returns a timbre index per note,
    numbered by first appearance."""
    from sklearn.cluster import KMeans

    embeddings = np.stack([e for _, _, e in finished]) if finished else np.zeros((0, 1))
    k = min(k, len({e.tobytes() for e in embeddings}))
    if k < 2:
        return [0] * len(finished)
    labels = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(embeddings)
    order = np.argsort([on.frame for on, _, _ in finished], kind="stable")
    renumber: dict[int, int] = {}
    for i in order:
        renumber.setdefault(int(labels[i]), len(renumber))
    return [renumber[int(label)] for label in labels]
