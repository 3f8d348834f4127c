"""Shipped ONNX models: locating, loading with clear errors, and reading their metadata."""

from __future__ import annotations

import json
import os
from pathlib import Path

import onnxruntime as ort

from rtamt.cqt import CQTConfig

MODELS_ENV = "RTAMT_MODELS"
PACKAGED_MODELS = "models_data"  # inside the installed package (setup.py copies models/ there at build time)
LAYOUT = "time-major"  # streaming models take hcqt (1, 8, frames, 252) and put time before pitch


class ModelError(Exception):
    """A model file that is missing, corrupt or not what rtamt expects."""


def models_dir() -> Path:
    """$RTAMT_MODELS if set; else the models inside the installed package (a wheel); else the repository's
    models/ folder (a checkout or an editable install)."""
    if os.environ.get(MODELS_ENV):
        return Path(os.environ[MODELS_ENV])
    packaged = Path(__file__).resolve().parent / PACKAGED_MODELS
    if (packaged / "backbone.onnx").exists():
        return packaged
    return Path(__file__).resolve().parent.parent / "models"


def open_session(path: str | os.PathLike, kind: str, threads: int = 1) -> tuple[ort.InferenceSession, dict]:
    """An onnxruntime session on ``path`` (``threads`` intra-op threads) and the model's metadata."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: model file not found")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises several unrelated types for a bad file
        raise ModelError(f"{path}: not a valid ONNX model ({str(err).splitlines()[0][:200]})") from None
    meta = dict(session.get_modelmeta().custom_metadata_map)
    if meta.get("rtamt_model") != kind:
        raise ModelError(f"{path}: expected an rtamt {kind} model, found {meta.get('rtamt_model', 'no rtamt metadata')}")
    if meta.get("layout") != LAYOUT:
        raise ModelError(f"{path}: exported by an older rtamt (tensor layout {meta.get('layout', 'freq-major')}); "
                         f"export it again with this version")  # fmt: skip
    return session, meta


def cqt_config_of(meta: dict) -> CQTConfig:
    """The front-end settings a model was trained with."""
    return CQTConfig(**json.loads(meta["cqt_config"]))


def fast_config_of(meta: dict) -> CQTConfig | None:
    """The settings of the fast onset path's CQT a backbone reads beside the HCQT (None: it reads none)."""
    return CQTConfig(**json.loads(meta["fast_cqt_config"])) if "fast_cqt_config" in meta else None
