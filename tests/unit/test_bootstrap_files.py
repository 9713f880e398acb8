"""The Auto Scaling bootstrap's files agree with each other: the two user-data variants
take the same settings, and the instances install the toolchain CI tested. (The Molecule
`bootstrap` scenario runs user-data.sh on bare hosts; cloud-init itself cannot run here.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
USER_DATA = ROOT / "bootstrap" / "user-data.sh"


def pins(path: Path) -> dict[str, str]:
    """name: version for each `name==version` line, following `-r other-file`."""
    found = {}
    for line in path.read_text().splitlines():
        if line.startswith("-r "):
            found.update(pins(path.parent / line.split(maxsplit=1)[1]))
        match = re.match(r"^([A-Za-z0-9_.\[\]-]+)==(\S+)", line.strip())
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def user_data_settings() -> dict[str, str]:
    block = USER_DATA.read_text().split("# ---- Settings")[1].split("# ---- End of settings")[0]
    return dict(re.findall(r"^(CNT_[A-Z_]+)=\$\{\1:-(.*)\}$", block, re.MULTILINE))


def test_instances_install_the_pins_ci_tested() -> None:
    controller = pins(ROOT / "requirements.txt")
    instance = pins(ROOT / "bootstrap" / "requirements.in")
    assert {"ansible", "ansible-core", "boto3"} <= instance.keys()
    for name, version in instance.items():
        assert controller.get(name) == version, f"{name}: instance {version}, controller {controller.get(name)}"


def test_cloud_init_variant_carries_every_user_data_setting_with_its_default() -> None:
    text = (ROOT / "bootstrap" / "cloud-init.yml").read_text()
    assert text.startswith("#cloud-config\n")
    config = yaml.safe_load(text)
    (settings_file,) = [f for f in config["write_files"] if f["path"] == "/etc/cnt-deploy/bootstrap.env"]
    assert settings_file["permissions"] == "0600"
    written = dict(line.split("=", 1) for line in settings_file["content"].splitlines())
    assert written == user_data_settings()
    command = " ".join(config["runcmd"][0])
    assert "/etc/cnt-deploy/bootstrap.env" in command
    assert command.rstrip().endswith('exec bash "$CNT_PULL_HOME/repo/bootstrap/user-data.sh"')
    assert set(config["packages"]) >= {"git", "gpg", "python3-venv"}
    # Nothing of the clone runs before its commit is verified against the team's keys.
    assert "/etc/cnt-deploy/trusted-keys.asc" in {f["path"] for f in config["write_files"]}
    steps = [step.strip() for step in command.split(";")]
    clone = next(i for i, step in enumerate(steps) if step.startswith("git clone"))
    verify = next(i for i, step in enumerate(steps) if "verify-commit HEAD" in step)
    run = next(i for i, step in enumerate(steps) if step.startswith("exec bash"))
    assert "--no-checkout" in steps[clone] and clone < verify < run


def test_user_data_verifies_the_commit_before_running_anything_of_it() -> None:
    text = USER_DATA.read_text()
    assert text.index("umask 077") < text.index("exec > >(tee -a /var/log/cnt-bootstrap.log)")
    assert text.index("chmod 0600 /var/log/cnt-bootstrap.log") < text.index("exec > >(tee")
    clone = text.index("git clone --quiet --no-checkout")
    verify = text.index("verify-commit")
    assert clone < verify < text.index("checkout --quiet --force") < text.index('pip" install')


def test_user_data_settings_are_documented_defaults() -> None:
    settings = user_data_settings()
    assert settings["CNT_PULL_INVENTORY"] == "inventories/pull/%s/hosts.yml"
    assert settings["CNT_IMDS_URL"] == "http://169.254.169.254"
    # Every Auto Scaling environment has the pull inventory the default expects, sharing
    # the push inventory's group_vars; no push inventory holds a pull inventory (its
    # "localhost" would join app_servers on a push).
    for inventory in (ROOT / "inventories").iterdir():
        if (inventory / "aws_ec2.yml").exists():
            pull = ROOT / "inventories" / "pull" / inventory.name
            assert (pull / "hosts.yml").exists(), f"{inventory.name}: Auto Scaling but no pull inventory"
            assert (pull / "group_vars").resolve() == (inventory / "group_vars").resolve()
        assert not list(inventory.rglob("pull.yml"))


LOCKED = ["bootstrap", "examples/backend", "examples/voice_agent"]


@pytest.mark.parametrize("directory", LOCKED)
def test_the_locked_requirements_pin_every_package_with_hashes_and_follow_the_in_file(directory) -> None:
    locked = ROOT / directory / "requirements.txt"
    text = locked.read_text()
    entries = re.findall(
        r"^([A-Za-z0-9_.-]+)==(\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", text, re.MULTILINE
    )
    requirement_lines = [line for line in text.splitlines() if line and not line.startswith(("#", " "))]
    assert len(entries) == len(requirement_lines) > 0, "every requirement carries its hashes"
    versions = {name.lower(): version for name, version, _ in entries}
    for name, version in pins(ROOT / directory / "requirements.in").items():
        assert versions.get(name) == version, f"{directory}: {name} {version} not locked (run make lock)"


def test_every_install_from_a_locked_file_requires_the_hashes() -> None:
    user_data = USER_DATA.read_text()
    assert (
        '--require-hashes --no-deps $CNT_PIP_OPTIONS \\\n  -r "$CNT_PULL_HOME/repo/bootstrap/requirements.txt"'
        in user_data
    )
    for app in ("backend", "voice_agent"):
        dockerfile = (ROOT / "examples" / app / "Dockerfile").read_text()
        installs = re.findall(r"pip install[^;]*-r requirements.txt", dockerfile)
        assert len(installs) == 2 and all("--require-hashes" in line for line in installs), installs
