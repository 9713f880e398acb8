"""Load a plugin of the project's Python home (plugins/) by its path, as Ansible does:
the tests exercise the very file the playbooks run."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[3]


def load(relative: str) -> ModuleType:
    """plugins/<relative> as a module."""
    path = ROOT / "plugins" / relative
    spec = importlib.util.spec_from_file_location(path.stem + "_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
