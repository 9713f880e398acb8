"""The collections requirements.yml pins are the ones the pinned `ansible` package ships.

make setup installs collections from PyPI (the `ansible` package) because Galaxy is not
reachable from CI. requirements.yml documents them for anyone installing from Galaxy;
this test keeps the two from drifting apart.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import ansible_collections
import pytest
import yaml
from conftest import ROOT

REQUIREMENTS = yaml.safe_load((ROOT / "requirements.yml").read_text(encoding="utf-8"))
COLLECTIONS = {c["name"]: c["version"] for c in REQUIREMENTS["collections"]}


def shipped_version(name: str) -> str:
    namespace, collection = name.split(".")
    base = Path(next(iter(ansible_collections.__path__)))
    manifest = base / namespace / collection / "MANIFEST.json"
    return json.loads(manifest.read_text(encoding="utf-8"))["collection_info"]["version"]


@pytest.mark.parametrize("name", sorted(COLLECTIONS))
def test_requirements_yml_pins_the_version_the_ansible_package_ships(name):
    assert COLLECTIONS[name] == shipped_version(name)


def test_requirements_txt_pins_the_ansible_package_that_is_installed():
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert pins["ansible"] == metadata.version("ansible")
    assert pins["ansible-core"] == metadata.version("ansible-core")
