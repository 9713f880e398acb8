"""plugins/module_utils/cnt_registry.py: every answer a registry can give, and the digest
or the error decided from it (cnt_registry_digests asks; this decides)."""

from __future__ import annotations

import pytest

from plugins.loader import load

registry = load("module_utils/cnt_registry.py")

# --- digests-------------------------------------------------------------------------

REG = "registry.example:5000"
A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


def answer(ref, status, digest="", msg="", repository="cnt-backend"):
    return {"item": [repository, ref], "status": status, "docker_content_digest": digest, "msg": msg}


def resolve(answers, recorded=None, probe=False):
    resolved = registry.decide(
        answers,
        registry=REG,
        repositories=["cnt-backend"],
        version="v2",
        recorded=recorded or {},
        sources={"cnt-backend": "the version store (/cnt/p)"},
    )
    return resolved["cnt-backend"], registry.errors(resolved, probe)


def test_the_tags_digest_when_nothing_is_recorded():
    image, errors = resolve([answer("v2", 200, A)])
    assert image == {"image": f"{REG}/cnt-backend@{A}", "digest": A, "source": "tag v2", "error": "", "missing": False}
    assert errors == []


def test_the_recorded_digest_wins_when_the_tag_still_names_it():
    image, errors = resolve([answer("v2", 200, A), answer(A, 200, A)], recorded={"cnt-backend": A})
    assert image["source"] == "the version store (/cnt/p)"
    assert errors == []


def test_the_recorded_digest_even_when_the_tag_is_gone():
    image, errors = resolve([answer("v2", 404), answer(A, 200, A)], recorded={"cnt-backend": A})
    assert image["digest"] == A and errors == []


@pytest.mark.parametrize(
    ("answers", "recorded", "error"),
    [
        ([answer("v2", 401)], {}, f"registry {REG} refused the credentials (password) for {REG}/cnt-backend:v2"),
        ([answer("v2", 403)], {}, "refused the credentials"),
        (
            [answer("v2", -1, msg="https://user:pw@registry.example:5000/v2/ refused")],
            {},
            f"registry {REG} is down or unreachable ({REG}/cnt-backend:v2): https://registry.example:5000/v2/ refused",
        ),
        (
            [answer("v2", 404)],
            {},
            f"{REG}/cnt-backend:v2: no such tag in registry {REG} (build it: make build VERSION=v2)",
        ),
        (
            [answer("v2", 200, A), answer(B, 404)],
            {"cnt-backend": B},
            f"{REG}/cnt-backend:v2: digest {B} (the version store (/cnt/p)) is not in registry {REG}",
        ),
        (
            [answer("v2", 200, A), answer(B, 200, B)],
            {"cnt-backend": B},
            f"digest mismatch: the registry {REG} tags {A}, the version store (/cnt/p) says {B}",
        ),
    ],
)
def test_every_way_an_image_cannot_be_had_is_named(answers, recorded, error):
    _, errors = resolve(answers, recorded)
    assert len(errors) == 1
    assert error in errors[0]
    assert "pw" not in errors[0]


def test_a_build_probe_takes_a_missing_tag_as_an_answer():
    image, errors = resolve([answer("v2", 404)], probe=True)
    assert image["missing"] is True
    assert errors == []
    # A refused login still stops a probe.
    assert resolve([answer("v2", 401)], probe=True)[1] != []
