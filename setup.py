"""Ships the top-level static/ and templates/ inside the package, so `pip install .` works."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent


class BuildWithAssets(build_py):
    def run(self):
        super().run()
        for name in ("static", "templates"):
            src = ROOT / name
            if src.is_dir():
                dest = Path(self.build_lib) / "annotator" / name
                shutil.rmtree(dest, ignore_errors=True)
                shutil.copytree(src, dest)


setup(cmdclass={"build_py": BuildWithAssets})
