"""Online note tracker: onset/frame probabilities per pitch -> NoteOn / NoteOff events, causally.

Rules, per pitch, one frame at a time:
- onset: a local maximum of the onset probability above ``onset_threshold``, confirmed one frame later
  (so every note-on is decided exactly one frame after its onset frame); with ``onset_rise`` instead the
  first frame at or above the threshold, decided on arrival (a frame sooner, for a model whose onset
  probability stays high over the first frames of a note), placed ``rise_backdate_frames`` earlier (a
  causal model's onset probability reaches the threshold a little after the onset; never before the
  pitch's previous note ended);
- sustain start: a pitch whose frame probability stays above ``sustain_threshold`` for ``sustain_frames``
  frames without an onset starts a note (legato and slow attacks), back-dated to the frame where the onset
  probability peaked between ``backdate_frames`` before the first frame above the threshold and now: a soft
  attack leaves the onset head a bump too small to pass ``onset_threshold``, and that bump, known from past
  frames only, marks where the note began better than the frame probability's slow climb does (without
  a bump, the note starts at the first frame above the threshold);
- joint evidence (with ``bump_threshold`` set): an onset bump of at least ``bump_threshold`` in that
  back-dating window together with a frame probability of at least ``bump_sustain_threshold`` starts the
  note at once, at the bump. Two weak signals that agree decide sooner than the sustained-energy rule
  waits for one strong one: a soft attack's note-on need not wait for the slow frame probability;
- end: ``off_frames`` consecutive frames below ``frame_threshold`` end the note at the first of them, but
  never before ``min_frames`` after its start; a new onset on a sounding pitch re-strikes it (the onset
  threshold of a sounding pitch is ``restrike_threshold`` when set: a re-struck string that still rings
  gives a smaller onset peak);
- onset-time calibration: a note's reported start lies ``onset_lead_frames[pitch]`` (a note started by an
  onset) or ``sustain_lead_frames[pitch]`` (by sustained energy) frames before the frame the rules above
  give it, never before the pitch's previous note ended. The causal front end's low bins lag by more
  than the model's look-ahead, so its onsets come out late by a pitch-dependent amount, measured on
  validation (``python -m rtamt.training.tune leads``); the note-on is still decided when the rules
  decide it, so this moves no decision and no live note-on sooner;
- velocity from the onset peak. ``flush`` ends every sounding note: nothing is ever left hanging.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np

from rtamt.chain import Stage
from rtamt.constants import HOP_S, MIDI_MIN, N_PITCHES


LEAD_FIELDS = ("onset_lead_frames", "sustain_lead_frames")


@dataclass(frozen=True)
class TrackerConfig:
    onset_threshold: float = 0.4
    frame_threshold: float = 0.3
    sustain_threshold: float = 0.6
    sustain_frames: int = 8
    off_frames: int = 3
    min_frames: int = 4
    backdate_frames: int = 8
    onset_rise: bool = False
    rise_backdate_frames: int = 0
    onset_lead_frames: tuple[int, ...] = ()  # per pitch (84) or empty: none
    sustain_lead_frames: tuple[int, ...] = ()  # per pitch (84) or empty: none
    restrike_threshold: float | None = None  # onset threshold on a sounding pitch (None: onset_threshold)
    bump_threshold: float | None = None  # an onset bump this high lets a note start at bump_sustain_threshold
    bump_sustain_threshold: float = 0.25

    def __post_init__(self) -> None:
        for name in LEAD_FIELDS:
            leads = tuple(int(lead) for lead in getattr(self, name))
            if leads and (len(leads) != N_PITCHES or min(leads) < 0):
                raise ValueError(f"{name}: {N_PITCHES} frame counts >= 0, or none")
            object.__setattr__(self, name, leads)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TrackerConfig:
        fields = json.loads(text)
        if "rise_max_frames" in fields:  # settings stored before the back-dating rule used the onset peak
            fields["backdate_frames"] = fields.pop("rise_max_frames")
            fields.pop("rise_floor", None)
        return cls(**fields)


@dataclass(frozen=True)
class NoteEvent:
    """A note starting (``on``) or ending. ``frame`` is the musical frame of the event, ``decided`` the
    frame whose arrival made the tracker emit it (the difference is the tracker's decision delay)."""

    on: bool
    pitch: int  # MIDI number
    frame: int
    decided: int
    velocity: int = 0
    timbre: int = 0  # timbre cluster (MIDI channel index); set by the clusterer, 0 without one
    lead: int = 0  # frames the reported time lies before ``frame`` (the tracker's onset-time calibration)

    @property
    def time_s(self) -> float:
        return (self.frame - self.lead) * HOP_S


@dataclass
class TrackedBlock:
    """What a note tracker passes to the stage after it (the timbre clusterer) when it keeps the frames:
    the model frames, the events decided at each frame, and the events that end the stream (``final``,
    from ``flush``, after the last frame)."""

    frames: np.ndarray  # (n, C, 84): onset, frame probability and anything after them (embeddings)
    events: list[list[NoteEvent]]  # events[i]: decided when frames[i] arrived
    final: list[NoteEvent] = field(default_factory=list)
    pedal: np.ndarray | None = None  # pedal[i]: the sustain pedal down when frames[i] arrived (a sustain stage's)

    def __len__(self) -> int:
        """Frames plus end-of-stream events: zero when there is nothing to pass on."""
        return len(self.frames) + len(self.final)


class NoteTracker(Stage):
    """(n, 2, 84) probability frames -> list of NoteEvent, in order of decision. With ``keep_frames`` the
    input may carry more channels after the two probabilities (n, 2 + D, 84) and the output is a
    :class:`TrackedBlock` holding the frames and each frame's events, for a stage that needs both (the
    timbre clusterer): the tracker then sits in the chain as a stage of its own."""

    name = "note-tracker"

    def __init__(self, config: TrackerConfig | None = None, keep_frames: bool = False) -> None:
        self.config = config or TrackerConfig()
        self.keep_frames = keep_frames
        self.reset()

    @property
    def decision_frames(self) -> int:
        """Frames from an onset frame to its note-on decision."""
        return 0 if self.config.onset_rise else 1

    @property
    def latency_s(self) -> float:
        return self.decision_frames * HOP_S

    @property
    def max_backdate_frames(self) -> int:
        """How far before its decision a note can start: what a consumer must keep of the past."""
        rise = self.config.rise_backdate_frames if self.config.onset_rise else 0
        return max(self.decision_frames, rise, self.config.sustain_frames - 1 + self.config.backdate_frames)

    def reset(self) -> None:
        self.frame = 0  # index of the next input frame
        self._prev_onset = np.zeros(N_PITCHES)  # onset probability at frame - 1
        self._prev2_onset = np.zeros(N_PITCHES)  # at frame - 2
        self._start = np.full(N_PITCHES, -1, dtype=np.int64)  # start frame of the sounding note, -1 if none
        self._below = np.zeros(N_PITCHES, dtype=np.int64)  # consecutive frames under frame_threshold
        self._above = np.zeros(N_PITCHES, dtype=np.int64)  # consecutive frames over sustain_threshold
        self._onset_history = np.zeros((self.max_backdate_frames + 1, N_PITCHES))  # frame f in row f % length
        self._free = np.zeros(N_PITCHES, dtype=np.int64)  # earliest frame a new note may start (last end)
        self._lead = np.zeros(N_PITCHES, dtype=np.int64)  # lead of the sounding note
        self._onset_leads, self._sustain_leads = (
            np.array(getattr(self.config, name) or (0,) * N_PITCHES, dtype=np.int64) for name in LEAD_FIELDS)

    def empty_output(self) -> list[NoteEvent] | TrackedBlock:
        return TrackedBlock(np.zeros((0, 2, N_PITCHES), dtype=np.float32), []) if self.keep_frames else []

    def process(self, block: np.ndarray) -> list[NoteEvent] | TrackedBlock:
        if self.keep_frames:
            per_frame = [self._events(frame[None]) for frame in block]
            return TrackedBlock(block, per_frame)
        return self._events(block)

    def _events(self, block: np.ndarray) -> list[NoteEvent]:
        events: list[NoteEvent] = []
        for onset, frame in zip(block[:, 0], block[:, 1]):
            self._step(onset.astype(np.float64), frame.astype(np.float64), events)
        return events

    def _step(self, onset: np.ndarray, frame: np.ndarray, events: list[NoteEvent]) -> None:
        c, t = self.config, self.frame
        history = len(self._onset_history)
        self._onset_history[t % history] = onset
        sounding = self._start >= 0
        threshold = c.onset_threshold
        if c.restrike_threshold is not None:
            threshold = np.where(sounding, c.restrike_threshold, c.onset_threshold)
        if c.onset_rise:  # onsets at t: the onset probability reaches the threshold
            at, strength = np.maximum(t - c.rise_backdate_frames, self._free), onset
            peak = (onset >= threshold) & (self._prev_onset < threshold)
        else:  # onsets at t - 1: local maxima above threshold, now that frame t is known
            at, strength = np.full(N_PITCHES, t - 1), self._prev_onset
            peak = (strength >= threshold) & (strength >= self._prev2_onset) & (strength > onset)
        for p in np.flatnonzero(peak & ~(sounding & (at - self._start < c.min_frames))):
            self._note_on(int(p), int(at[p]), t, strength[p], self._onset_leads, events)
        # Ends: off_frames in a row under the frame threshold, after the minimum duration.
        sounding = self._start >= 0
        self._below = np.where(frame < c.frame_threshold, self._below + 1, 0)
        end = t - c.off_frames + 1  # the first of the quiet frames
        for p in np.flatnonzero(sounding & (self._below >= c.off_frames) & (end - self._start >= c.min_frames)):
            events.append(NoteEvent(False, MIDI_MIN + int(p), end, t))
            self._start[p] = -1
            self._free[p] = end
        # Sustained energy with no onset: start a note where the onset probability peaked.
        above = frame >= c.sustain_threshold
        self._above = np.where(above, self._above + 1, 0)
        for p in np.flatnonzero((self._above >= c.sustain_frames) & (self._start < 0)):
            first_above = t - c.sustain_frames + 1
            window, peaks = self._bump_window(int(p), first_above, t)
            begin = max(first_above, int(window[0]))  # without a clear bump: where the energy arrived
            if peaks.max() > self._onset_history[begin % history, p]:
                begin = int(window[np.argmax(peaks)])
            self._note_on(int(p), begin, t, frame[p], self._sustain_leads, events)
        # Joint evidence: an onset bump and a lower frame probability start a note at the bump, at once.
        if c.bump_threshold is not None:
            for p in np.flatnonzero((frame >= c.bump_sustain_threshold) & (self._start < 0)):
                window, peaks = self._bump_window(int(p), t, t)
                if peaks.max() >= c.bump_threshold:
                    self._note_on(int(p), int(window[np.argmax(peaks)]), t, peaks.max(), self._onset_leads, events)
        self._prev2_onset, self._prev_onset = self._prev_onset, onset
        self.frame = t + 1

    def _bump_window(self, p: int, first: int, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Frames where a note of pitch index ``p`` first heard at ``first`` may have begun (``backdate_frames``
        earlier at most, never before the pitch's last note ended or past the kept history), up to ``t``,
        and the onset probability at each."""
        history = len(self._onset_history)
        window = np.arange(max(first - self.config.backdate_frames, int(self._free[p]), t - history + 1, 0), t + 1)
        return window, self._onset_history[window % history, p]

    def _note_on(self, p: int, at: int, t: int, strength: float, leads: np.ndarray, events: list[NoteEvent]) -> None:
        """Start a note of pitch index ``p`` at frame ``at``, decided at ``t``, its velocity from ``strength``;
        a sounding note on the pitch (a re-strike) ends where the new one starts."""
        lead = self._lead_at(p, at, leads)
        if self._start[p] >= 0:
            events.append(NoteEvent(False, MIDI_MIN + p, at, t, lead=lead))
        events.append(NoteEvent(True, MIDI_MIN + p, at, t, int(np.clip(round(30 + 97 * strength), 1, 127)), lead=lead))
        self._start[p] = at
        self._lead[p] = lead
        self._below[p] = 0

    def _lead_at(self, p: int, at: int, leads: np.ndarray) -> int:
        """Calibrated lead of a note of pitch index ``p`` placed at frame ``at``: its reported time stays at
        or after the previous note's end (a re-struck note's start plus one frame) and at or after 0."""
        if self._start[p] >= 0:
            earliest = int(self._start[p] - self._lead[p]) + 1
        else:
            earliest = int(self._free[p])
        return max(0, min(int(leads[p]), at - max(earliest, 0)))

    def flush(self) -> list[NoteEvent] | TrackedBlock:
        """End every sounding note at the current frame (never earlier than its minimum duration)."""
        events = [
            NoteEvent(False, MIDI_MIN + int(p), max(self.frame, int(self._start[p]) + 1), self.frame)
            for p in np.flatnonzero(self._start >= 0)
        ]
        self.reset()
        if self.keep_frames:
            empty = self.empty_output()
            return TrackedBlock(empty.frames, [], events)
        return events


def track_whole(frames: np.ndarray, config: TrackerConfig, after: Stage | None = None) -> TrackedBlock:
    """The note tracker, and the stage ``after`` it if one is given (the sustain stage), over one whole
    example as the chain runs them: every frame's events (and pedal) in one block, the end-of-stream events
    in ``final`` (``after`` is flushed for the next example)."""
    note_tracker = NoteTracker(config, keep_frames=True)
    tracked, end = note_tracker.process(frames), note_tracker.flush()
    if after is not None:
        tracked, end = after.process(tracked), after.process(end)
        after.flush()
    return TrackedBlock(tracked.frames, tracked.events, end.final, tracked.pedal)


def note_pairs(events: Iterable[NoteEvent]) -> list[tuple[NoteEvent, float]]:
    """Each note-on with the time of its note-off (at least one hop later), in the order notes end."""
    open_notes: dict[int, NoteEvent] = {}
    pairs = []
    for event in events:
        if event.on:
            open_notes[event.pitch] = event
        elif event.pitch in open_notes:
            start = open_notes.pop(event.pitch)
            pairs.append((start, max(event.time_s, start.time_s + HOP_S)))
    if open_notes:
        raise ValueError(f"unterminated notes: {sorted(open_notes)}")
    return pairs


def events_to_notes(events: list[NoteEvent]) -> list[tuple[float, float, int, int]]:
    """Pair note-ons with their note-offs: (onset_s, offset_s, pitch, velocity), sorted by onset."""
    return sorted((on.time_s, off, on.pitch, on.velocity) for on, off in note_pairs(events))
