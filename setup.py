"""The wheel carries the report's resources inside the package; the rest of the configuration is pyproject.toml.

The checkout keeps them at its top (report_templates/, mkdocs.yml, docs/overrides/). Building a wheel copies
them into the package under the names nu_keras/resources.py looks for; an editable install reads the
checkout's own, so an edited template shows in the next `make report`.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

# Name inside the package -> place in the checkout; the same table as nu_keras/resources.py's CHECKOUT_PLACES.
RESOURCES = {"report_templates": "report_templates", "mkdocs.yml": "mkdocs.yml", "theme": "docs/overrides"}


class BuildWithResources(build_py):
    """setuptools' build_py, then the resources copied into the built package."""

    def run(self) -> None:
        package = Path(self.build_lib, "nu_keras")
        if not self.editable_mode:  # built afresh: a file since removed from the checkout must not linger in build/
            shutil.rmtree(package, ignore_errors=True)
        super().run()
        if self.editable_mode:
            return
        for name, place in RESOURCES.items():
            target = package / name
            if Path(place).is_dir():
                shutil.copytree(place, target)
            else:
                shutil.copyfile(place, target)


setup(cmdclass={"build_py": BuildWithResources})
