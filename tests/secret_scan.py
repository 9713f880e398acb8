"""Find secrets in a playbook's output, in every form an output may carry them: as is,
percent- and JSON-encoded, each line of a multi-line secret, and base64 at each of the
three alignments (slurp results and module payloads at -vvv are base64)."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

# Shorter pieces would match ordinary text.
MIN_LENGTH = 8


def secret_forms(secret: str) -> set[str]:
    forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    forms |= {line.strip() for line in secret.splitlines()}
    raw = secret.encode()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        # Drop the characters that depend on what surrounds the secret.
        forms.add(encoded[(shift * 4 + 2) // 3 + 1 if shift else 0 : -3])
    return {form for form in forms if len(form) >= MIN_LENGTH}


def leaks(output: str, secrets: list[str]) -> list[str]:
    """Which secrets (named by their first characters) `output` holds, and in what form."""
    return sorted(
        {f"{secret[:4]}... as {form[:6]}..." for secret in secrets for form in secret_forms(secret) if form in output}
    )
