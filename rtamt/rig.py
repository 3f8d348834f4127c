"""Rig files (``--config rig.toml``): the chain's settings, stages to insert into it and the sinks, in TOML.

    mode = "low-latency"          # also: instruments, exact, models
    [tracker]                     # settings over the model file's (rtamt.tracker.TrackerConfig fields)
    onset_threshold = 0.5
    [clusterer]                   # likewise (rtamt.cluster.ClusterConfig fields)
    join_threshold = 0.8
    [[stages]]
    name = "level-gate"           # a plugin name or module:attr; before = / after = a stage name
    before = "resample"
    threshold_db = -70            # every other key is the plugin's option
    [[sinks]]
    name = "osc"
    port = 9000
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TypeVar

from rtamt.chain import Chain
from rtamt.pipeline import MODES
from rtamt.plugins import PluginError, build

SETTINGS = ("models", "mode", "instruments", "exact")
PLACEMENT = ("before", "after")
TABLES = ("tracker", "clusterer", "stages", "sinks")
Settings = TypeVar("Settings")


@dataclass
class Rig:
    """What a rig file describes."""

    settings: dict = field(default_factory=dict)  # command-line option name -> value
    stages: list[dict] = field(default_factory=list)  # {"name": ..., "before"/"after": ..., options...}
    sinks: list[dict] = field(default_factory=list)  # {"name": ..., options...}
    tracker: dict = field(default_factory=dict)  # TrackerConfig fields over the model's
    clusterer: dict = field(default_factory=dict)  # ClusterConfig fields over the model's

    @staticmethod
    def override(base: Settings, values: dict, table: str) -> Settings:
        """``base`` (a settings dataclass) with the rig's ``values`` for it."""
        known = {f.name for f in fields(base)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise PluginError(f"[{table}]: unknown settings {unknown}; known: {', '.join(sorted(known))}")
        return replace(base, **values)

    def insert_stages(self, chain: Chain) -> None:
        """Build every stage and insert it before or after the stage it names (default: first)."""
        for entry in self.stages:
            options = {k: v for k, v in entry.items() if k != "name" and k not in PLACEMENT}
            stage = build("stages", entry["name"], options)
            try:
                if "after" in entry:
                    position = chain.index(entry["after"]) + 1
                else:
                    position = chain.index(entry["before"]) if "before" in entry else 0
            except KeyError as err:
                raise PluginError(f"stage {entry['name']!r}: {err.args[0]}") from None
            chain.insert(position, stage)

    def open_sinks(self) -> list:
        """Every sink of the file, built."""
        return [build("sinks", entry["name"], {k: v for k, v in entry.items() if k != "name"})
                for entry in self.sinks]  # fmt: skip


def load_rig(path: str | os.PathLike) -> Rig:
    """Read and check a rig file; PluginError says what is wrong with it."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as err:
        raise PluginError(f"{path}: cannot read the rig file ({err.strerror})") from None
    except tomllib.TOMLDecodeError as err:
        raise PluginError(f"{path}: not valid TOML ({err})") from None
    unknown = sorted(set(data) - {*SETTINGS, *TABLES})
    if unknown:
        raise PluginError(f"{path}: unknown keys {unknown}; a rig has {', '.join(SETTINGS)}, [tracker], "
                          "[clusterer], [[stages]] and [[sinks]]")  # fmt: skip
    settings = {key: data[key] for key in SETTINGS if key in data}
    rig = Rig(settings, data.get("stages", []), data.get("sinks", []), data.get("tracker", {}),
              data.get("clusterer", {}))  # fmt: skip
    if not isinstance(rig.tracker, dict) or not isinstance(rig.clusterer, dict):
        raise PluginError(f"{path}: [tracker] and [clusterer] are tables of settings")
    if rig.settings.get("mode", MODES[0]) not in MODES:
        raise PluginError(f"{path}: mode must be one of {MODES}, not {rig.settings['mode']!r}")
    for kind in ("stages", "sinks"):
        entries = getattr(rig, kind)
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "name" in e for e in entries):
            raise PluginError(f"{path}: every [[{kind}]] entry needs a name")
    if "models" in rig.settings:  # relative to the rig file
        rig.settings["models"] = (path.parent / rig.settings["models"]).resolve()
    return rig
