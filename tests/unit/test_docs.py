"""docs/: the tables that mirror code are generated from it (tools/docs.py, make docs)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import yaml
from conftest import ROOT

_spec = importlib.util.spec_from_file_location("cnt_docs", ROOT / "tools/docs.py")
docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(docs)


def test_the_committed_contract_table_is_what_make_docs_writes():
    run = subprocess.run(
        [sys.executable, str(ROOT / "tools/docs.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_table_has_a_row_for_every_option_of_cnt_hosts_argument_specs():
    options = yaml.safe_load((ROOT / "roles/cnt_host/meta/argument_specs.yml").read_text())["argument_specs"]["main"][
        "options"
    ]
    rows = re.findall(r"^\| `(\w+)` \|", docs.contract_table(), re.M)
    assert rows == list(options)
    assert "| `cnt_environment` | str | required |" in docs.contract_table()
    assert "**Secret**: never printed." in next(
        line for line in docs.contract_table().splitlines() if "`cnt_redis_password`" in line
    )


def test_a_changed_spec_makes_the_check_fail(tmp_path):
    specs = yaml.safe_load((ROOT / "roles/cnt_host/meta/argument_specs.yml").read_text())
    specs["argument_specs"]["main"]["options"]["cnt_new_knob"] = {"type": "int", "default": 3, "description": "New."}
    changed = tmp_path / "argument_specs.yml"
    changed.write_text(yaml.safe_dump(specs))
    document = (ROOT / "docs/inventory.md").read_text()
    assert docs.render(document, docs.contract_table(changed)) != document
    assert "| `cnt_new_knob` | int | `3` | New. |" in docs.render(document, docs.contract_table(changed))


def test_the_readme_stays_short_and_its_links_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).is_file(), link


def test_every_role_has_a_readme_naming_its_entry_points_and_every_input():
    for specs_path in sorted((ROOT / "roles").glob("*/meta/argument_specs.yml")):
        role = specs_path.parents[1]
        specs = yaml.safe_load(specs_path.read_text())["argument_specs"]
        readme = (role / "README.md").read_text()
        assert readme.startswith(f"# Role `{role.name}`")
        for entry, spec in specs.items():
            assert f"| `{entry}` |" in readme, (role.name, entry)
            for option in spec.get("options") or {}:
                assert f"| `{option}` |" in readme, (role.name, option)
        assert f"    name: {role.name}" in readme
