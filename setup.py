"""Ship the top-level templates/ and migrations/ folders inside the `dispatcher` package.

They stay at the repository root (the layout the project names), so a plain `package-data`
entry cannot reach them: build_py copies them into the built package instead, where
`dispatcher.asset_dir` finds them in an installed wheel. An editable install reads them from
the checkout and needs no copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("templates", "migrations")


class BuildWithAssets(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in SHIPPED:
            target = Path(self.build_lib) / "dispatcher" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(name, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithAssets})
