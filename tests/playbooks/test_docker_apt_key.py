"""The docker role trusts the key of Docker's apt repository only when its fingerprint is
the one Docker publishes (tasks/apt_key.yml): a key the test made stands in for the
repository's, once as the expected one, once as an impostor."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    """A directory served as the repository (file://), with a freshly made key at /gpg."""
    root = tmp_path_factory.mktemp("repo")
    home = root / "gnupg"
    home.mkdir(mode=0o700)
    env = dict(os.environ, GNUPGHOME=str(home))
    subprocess.run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "test <test@example.invalid>", "ed25519", "sign"],
        env=env,
        check=True,
        capture_output=True,
    )
    (root / "gpg").write_bytes(
        subprocess.run(["gpg", "--armor", "--export"], env=env, check=True, capture_output=True).stdout
    )
    listing = subprocess.run(
        ["gpg", "--with-colons", "--list-keys"], env=env, check=True, capture_output=True, text=True
    )
    fingerprint = next(line.split(":")[9] for line in listing.stdout.splitlines() if line.startswith("fpr:"))
    return root, fingerprint


def run(ansible_playbook, tmp_path: Path, root: Path, fingerprint: str):
    keyring = tmp_path / "keyrings" / "docker.asc"
    keyring.parent.mkdir()
    extra = {
        "__docker_plan": {"repository": f"file://{root}"},
        "__docker_apt_keyring": str(keyring),
        "docker_apt_key_fingerprint": fingerprint,
    }
    return ansible_playbook("-e", json.dumps(extra), "tests/playbooks/plays/docker_apt_key.yml"), keyring


def test_the_published_fingerprint_is_trusted(ansible_playbook, tmp_path, repository):
    root, fingerprint = repository
    # Written as Docker's documentation writes it: groups of four, spaces.
    spaced = " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4)).lower()
    result, keyring = run(ansible_playbook, tmp_path, root, spaced)
    assert result.returncode == 0, result.stdout
    assert keyring.read_bytes() == (root / "gpg").read_bytes()


def test_a_key_with_another_fingerprint_is_refused_and_not_trusted(ansible_playbook, tmp_path, repository):
    root, fingerprint = repository
    docker = "9DC8 5822 9FC7 DD38 854A E2D8 8D81 803C 0EBF CD88"
    result, keyring = run(ansible_playbook, tmp_path, root, docker)
    assert result.returncode != 0
    flat = " ".join(result.stdout.split())
    assert f"has the fingerprint {fingerprint}, not Docker's published {docker}" in flat
    assert not keyring.exists()
