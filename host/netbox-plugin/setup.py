"""Only here to copy the browser files into the package before it is built (see
build_static.py); everything else is in pyproject.toml."""

import os
import shutil
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build_static  # noqa: E402


class BuildPyWithStatic(build_py):
    def run(self):
        # From the repository: always the current files. From an sdist: the ones it carries.
        if not build_static.missing_sources():
            build_static.copy_assets()
        elif not build_static.assets_present():
            raise SystemExit("the preview's static files are missing: " + ", ".join(build_static.missing_sources()))
        # An in-tree build keeps build/lib between builds: no static file may outlive its source.
        shutil.rmtree(os.path.join(self.build_lib, "proxbox_planner_netbox", "static"), ignore_errors=True)
        super().run()


setup(cmdclass={"build_py": BuildPyWithStatic})
