"""Plugins by name: sinks and stages built in, registered by installed packages under the entry-point
groups ``rtamt.sinks`` and ``rtamt.stages``, or named as ``module:attr``.

A spec names one and its options: ``osc:host=127.0.0.1,port=9000``, ``my_pkg.sinks:Printer:prefix=>``.
Options reach the factory as keyword arguments with string values.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points

GROUPS = {"sinks": "rtamt.sinks", "stages": "rtamt.stages"}
_MODULE_ATTR = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class PluginError(Exception):
    """A plugin that cannot be found, loaded or built, with a message for the user."""


def builtins(kind: str) -> dict[str, Callable]:
    """The plugins rtamt ships, by name."""
    if kind == "sinks":
        from rtamt.sinks import BUILTIN_SINKS

        return dict(BUILTIN_SINKS)
    if kind == "stages":
        from rtamt.cluster import TimbreAssigner
        from rtamt.cqt import SlidingCQT
        from rtamt.hcqt import HarmonicStack
        from rtamt.normalize import EnergyNorm
        from rtamt.resample import Resampler
        from rtamt.tracker import NoteTracker

        stages = (Resampler, SlidingCQT, EnergyNorm, HarmonicStack, NoteTracker, TimbreAssigner)
        return {cls.name: cls for cls in stages}
    raise ValueError(f"plugin kind must be one of {sorted(GROUPS)}, not {kind!r}")


def installed(kind: str) -> dict[str, EntryPoint]:
    """Entry points of installed packages in the kind's group, by name."""
    return {ep.name: ep for ep in entry_points(group=GROUPS[kind])}


def listing() -> dict[str, dict[str, str]]:
    """Every plugin available, by kind and name: where it comes from."""
    result: dict[str, dict[str, str]] = {}
    for kind in GROUPS:
        found = {name: f"built in ({obj.__module__}:{obj.__qualname__})"
                 for name, obj in builtins(kind).items()}  # fmt: skip
        for name, ep in installed(kind).items():
            package = ep.dist.name if ep.dist is not None else "unknown package"
            found.setdefault(name, f"{package} ({ep.value})")
        result[kind] = dict(sorted(found.items()))
    return result


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``name[:key=value,...]`` or ``module:attr[:key=value,...]`` -> (target, options)."""
    parts = spec.split(":")
    head = 2 if len(parts) >= 2 and _MODULE_ATTR.match(":".join(parts[:2])) else 1
    target, rest = ":".join(parts[:head]), ":".join(parts[head:])
    options: dict[str, str] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PluginError(f"{spec!r}: options are key=value pairs separated by commas, not {item!r}")
        options[key.strip().replace("-", "_")] = value
    if not target:
        raise PluginError(f"{spec!r}: no plugin named")
    return target, options


def load(kind: str, target: str) -> Callable:
    """The factory (usually a class) called ``target``: built in, an installed entry point, or module:attr."""
    found = builtins(kind)
    if target in found:
        return found[target]
    points = installed(kind)
    try:
        if target in points:
            return points[target].load()
        if _MODULE_ATTR.match(target):
            module, attr = target.split(":")
            return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise PluginError(f"{kind[:-1]} {target!r} cannot be loaded ({err})") from None
    known = sorted(found) + sorted(set(points) - set(found))
    raise PluginError(f"no {kind[:-1]} named {target!r}; available: {', '.join(known)} (or module:attr)")


def build(kind: str, target: str, options: dict | None = None) -> object:
    """The plugin ``target`` built with keyword ``options``."""
    factory = load(kind, target)
    try:
        return factory(**(options or {}))
    except TypeError as err:
        raise PluginError(f"{kind[:-1]} {target!r}: {err}") from None


def make(kind: str, spec: str, defaults: dict | None = None) -> object:
    """Build the plugin a spec names, its options over ``defaults``."""
    target, options = parse_spec(spec)
    return build(kind, target, {**(defaults or {}), **options})
