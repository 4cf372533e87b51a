"""Importing nu_keras changes no global state; the command line's entry point makes its own settings.

Each check runs in a fresh interpreter, where nothing of ours was imported before it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from nu_keras.config import BACKEND_ENVIRONMENT

# What an import may have changed: the environment, the exception hook, and whether numpy was loaded.
STATE_AFTER_IMPORT = """
import json, os, sys
environment, hook = dict(os.environ), sys.excepthook
import {module}
print(json.dumps({{
    "environment_changed": sorted(set(os.environ.items()) ^ set(environment.items())),
    "excepthook_replaced": sys.excepthook is not hook,
    "numpy_loaded": "numpy" in sys.modules,
}}))
"""

# The entry point, with `main` replaced by a probe: is numpy still unloaded, and are the settings in place?
ENTRY_POINT_PROBE = """
import json, os, sys
import nu_keras.cli as cli

def main():
    settings = {{name: os.environ.get(name) for name in {names}}}
    print(json.dumps({{"numpy_loaded": "numpy" in sys.modules, "settings": settings}}))
    return 0

cli.main = main
cli.entry_point()
"""


def fresh_python(code: str) -> subprocess.CompletedProcess:
    """`code` in a new interpreter with none of the backend settings in its environment."""
    env = {k: v for k, v in os.environ.items() if k not in BACKEND_ENVIRONMENT}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module", ["nu_keras", "nu_keras.cli", "nu_keras.config", "nu_keras.resources"])
def test_an_import_changes_no_global_state(module):
    done = fresh_python(STATE_AFTER_IMPORT.format(module=module))
    assert done.returncode == 0, done.stderr
    state = json.loads(done.stdout)
    assert state == {"environment_changed": [], "excepthook_replaced": False, "numpy_loaded": False}


def test_the_entry_point_sets_the_thread_settings_before_numpy_loads():
    done = fresh_python(ENTRY_POINT_PROBE.format(names=sorted(BACKEND_ENVIRONMENT)))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"numpy_loaded": False, "settings": BACKEND_ENVIRONMENT}


def test_ctrl_c_before_main_holds_the_signals_is_one_line_and_130():
    """A KeyboardInterrupt raised before `main` installs its handlers (here: by `main` itself, first thing)."""
    code = "import nu_keras.cli as cli\ndef main():\n    raise KeyboardInterrupt\ncli.main = main\ncli.entry_point()\n"
    done = fresh_python(code)
    assert done.returncode == 130
    assert done.stderr == "nu-keras: interrupted\n"
