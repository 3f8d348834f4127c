"""Build step: the shipped models go inside the package. The repository keeps them, with their model card,
in models/; a built wheel carries models/*.onnx and the card as rtamt/models_data/ (the name
rtamt.models.PACKAGED_MODELS looks for), so an installed rtamt finds its models anywhere. Editable
installs read models/ in place."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PACKAGED_MODELS = "models_data"  # = rtamt.models.PACKAGED_MODELS


class BuildWithModels(build_py):
    """build_py, then copy the shipped models into the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        source = Path(__file__).resolve().parent / "models"
        target = Path(self.build_lib) / "rtamt" / PACKAGED_MODELS
        target.mkdir(parents=True, exist_ok=True)
        for path in [*sorted(source.glob("*.onnx")), source / "README.md"]:
            shutil.copy2(path, target / path.name)


setup(cmdclass={"build_py": BuildWithModels})
