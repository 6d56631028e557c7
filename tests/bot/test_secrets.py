"""Canary credentials: after real runs (success, retry, token refresh, refusal), none appears
in any output or log line, nor in the database file."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import Credentials, Fault, Sandbox
from tests.bot.test_cli_run import base_env, run

CANARIES = Credentials(
    alta_token="CANARY-alta-7f3e",
    alta_account_id="acct-canary-1",
    fernand_key="sk_CANARY-fernand-91ab",
    zoho_client_id="zoho-canary-client",
    zoho_client_secret="CANARY-zoho-secret-55d1",
    zoho_refresh_token="1000.CANARY-zoho-refresh-aa02",
    cc_client_id="cc-canary-client",
    cc_client_secret="CANARY-cc-secret-c0de",
    cc_refresh_token="CANARY-cc-refresh-b00c",
    cc_access_token="CANARY-cc-access-d1ce",
)
SECRETS = [
    CANARIES.alta_token,
    CANARIES.fernand_key,
    CANARIES.zoho_client_secret,
    CANARIES.zoho_refresh_token,
    CANARIES.cc_client_secret,
    CANARIES.cc_refresh_token,
    CANARIES.cc_access_token,
]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(port=0, seed_demo=True, credentials=CANARIES).start() as sb:
        yield sb


def test_no_configured_secret_leaks_into_output_logs_or_the_database(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    env = {**base_env(tmp_path), **sandbox.env()}
    assert env["ALTA_API_TOKEN"] == CANARIES.alta_token  # the canaries are really in use
    outputs: list[subprocess.CompletedProcess[str]] = []

    def untag(*args: str, environment: dict[str, str] = env) -> None:
        outputs.append(run(["-v", *args], environment))

    commands = [
        "zoho Leads 554023000000793002 Prime",
        'bigin Contacts 2445013000000402006 "Hot Deal"',
        'fernand 12345 "VIP Customer"',
        'alta thread 3f2b9c1e-5a7d-4e21-9b6a-0c8d2e4f6a10 "Hot Lead"',
        "cc contacts 1618ae62-4752-11e9-9c8a-fa163e6b01c1 VIP",
    ]
    # A token revoked mid-run (401 → one refresh) and a 503 (retry) on every provider.
    sandbox.add_fault(Fault(provider="constantcontact", kind="expire_token", count=1))
    sandbox.add_fault(Fault(provider="zoho", kind="expire_token", count=1, method="POST"))
    sandbox.add_fault(Fault(provider="*", kind="status", status=503, count=3, method="POST"))
    for text in commands:
        untag("run", text, "--yes", "--as", "U1")
        untag("run", "undo", "--yes", "--as", "U1")
    # Refusals: a wrong secret, and a provider that is down.
    wrong = {**env, "ZOHO_CLIENT_SECRET": "CANARY-wrong-secret-e77"}
    untag("run", "zoho Leads 554023000000793002 Prime", "--yes", environment=wrong)
    sandbox.add_fault(Fault(provider="alta", kind="drop"))
    untag(
        "run",
        'alta thread 3f2b9c1e-5a7d-4e21-9b6a-0c8d2e4f6a10 "Hot Lead"',
        "--yes",
        environment={**env, "ALTA_REQUESTS_PER_MINUTE": "0"},
    )

    assert sandbox.token_requests("zoho") >= 2 and sandbox.token_requests("constantcontact") >= 1
    text = "\n".join(o.stdout + o.stderr for o in outputs)
    assert "Zoho refused the refresh token" in text  # the refusal path really ran
    assert "Traceback" not in text
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("untag.db"))
    assert stored, "the database must exist"
    for secret in [*SECRETS, "CANARY-wrong-secret-e77"]:
        assert secret not in text, f"{secret} leaked into output"
        assert secret.encode() not in stored, f"{secret} leaked into the database"
