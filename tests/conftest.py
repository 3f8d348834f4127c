"""Shared helpers for the tests."""

from __future__ import annotations

import numpy as np
import pytest

from rtamt.constants import SAMPLE_RATE


def tone(midi: float, seconds: float, amplitude: float = 0.5, rate: int = SAMPLE_RATE) -> np.ndarray:
    """A pure sine at a MIDI pitch."""
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * 440.0 * 2 ** ((midi - 69) / 12) * t)).astype(np.float32)


def music_like(seconds: float, seed: int = 0, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Harmonic notes that change every ~200 ms, with their own onsets, over soft noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    audio = 0.003 * rng.standard_normal(n)
    start = 0
    while start < n:
        length = int(rng.integers(rate // 10, rate // 3))
        f0 = 440.0 * 2 ** ((rng.integers(30, 90) - 69) / 12)
        envelope = np.exp(-np.arange(min(length, n - start)) / (0.3 * rate))
        for harmonic in range(1, 6):
            if f0 * harmonic < rate / 2:
                audio[start : start + length] += (
                    0.15 / harmonic * envelope * np.sin(2 * np.pi * f0 * harmonic * t[start : start + length])
                )
        start += length
    return audio.astype(np.float32)


def split_randomly(audio: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """Cut ``audio`` into consecutive blocks of the given sizes (cycled), the last one shorter."""
    blocks, pos, i = [], 0, 0
    while pos < len(audio):
        size = sizes[i % len(sizes)]
        blocks.append(audio[pos : pos + size])
        pos += size
        i += 1
    return blocks


def setuptools_too_old() -> str | None:
    """Why this environment cannot build rtamt's wheel without build isolation (None when it can)."""
    try:
        import setuptools
    except ImportError:
        return "needs setuptools (the test extra)"
    major = int(setuptools.__version__.split(".")[0])
    return None if major >= 77 else f"needs setuptools >= 77 (SPDX licence field), found {setuptools.__version__}"


def synth_missing() -> str | None:
    """Why FluidSynth rendering cannot run here (None when it can): the library and the Debian soundfonts
    come from apt packages (.ci/run), which a plain pip install does not bring."""
    import ctypes.util

    if ctypes.util.find_library("fluidsynth") is None:
        return "needs libfluidsynth (apt-get install fluidsynth; .ci/run lists the packages)"
    try:
        from rtamt.training.instruments import HELD_OUT_SOUNDFONTS, TRAIN_SOUNDFONTS
        from rtamt.training.render import soundfont_path

        for name in (*TRAIN_SOUNDFONTS, *HELD_OUT_SOUNDFONTS):
            soundfont_path(name)
    except ImportError as err:
        return f"needs the train extra ({err})"
    except FileNotFoundError as err:
        return f"needs the soundfont packages: {err}"
    return None


_SYNTH_MISSING = synth_missing()
needs_synth = pytest.mark.skipif(_SYNTH_MISSING is not None, reason=_SYNTH_MISSING or "")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory: pytest.TempPathFactory):
    """A models/ folder holding an untrained (random) backbone exported to ONNX: for plumbing tests that
    must not depend on the shipped model's accuracy."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from rtamt.cqt import CQTConfig
    from rtamt.training.backbone import export_model
    from rtamt.training.models import Backbone

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("random-model")
    export_model(Backbone(), 2, CQTConfig(gamma_hz=10.0), directory / "backbone.onnx")
    return directory
