"""The baseline of ``bench.ack``: a minimal bolt app that calls the provider *before* it acks.

    .venv/bin/python -m bench.baseline_app --port P [--workers 1] [--threads 16]

This is the pattern of many bolt samples ("look it up, then answer"): the slash
command handler reads the record from Zoho and only then acknowledges, with the
record's tags.  It is served exactly as ``untag serve`` is (``bot.server``'s
WSGI wrapper under gunicorn, gthread, same worker and thread counts), with
``process_before_response=True`` so the provider call runs on the request's own
thread: each of the 16 threads serves one command at a time, which is the
*best* such an app can do (bolt's default 5-thread listener pool would be slower).

Configuration comes from the environment the sandbox writes (``ZOHO_*``) plus
``SLACK_BOT_TOKEN``, ``SLACK_SIGNING_SECRET`` and ``SLACK_API_URL``.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

import httpx
from slack_bolt import Ack, App
from slack_sdk import WebClient

from bench._serve import serve_from_args
from bot.server import make_wsgi_app


def zoho_token(client: httpx.Client) -> tuple[str, str]:
    """One access token and the api_domain, by the refresh-token grant."""
    response = client.post(
        os.environ["ZOHO_ACCOUNTS_URL"].rstrip("/") + "/oauth/v2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": os.environ["ZOHO_CLIENT_ID"],
            "client_secret": os.environ["ZOHO_CLIENT_SECRET"],
            "refresh_token": os.environ["ZOHO_REFRESH_TOKEN"],
        },
    )
    body: dict[str, Any] = response.json()
    return str(body["access_token"]), str(body["api_domain"])


def build_app() -> App:
    """The bolt app: ``/untag help`` answers at once, anything else reads Zoho first."""
    client = httpx.Client(timeout=30.0, trust_env=False)
    token, api_domain = zoho_token(client)
    app = App(
        client=WebClient(
            token=os.environ["SLACK_BOT_TOKEN"],
            base_url=os.environ.get("SLACK_API_URL", "https://slack.com/api/"),
        ),
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        token_verification_enabled=False,
        process_before_response=True,
    )

    @app.command("/untag")
    def untag(ack: Ack, command: dict[str, Any]) -> None:
        words = str(command.get("text") or "").split()
        if len(words) < 3 or words[0] == "help":
            ack(text="Usage: /untag zoho <Module> <id> <tag>")
            return
        module, record = words[1], words[2]
        response = client.get(
            f"{api_domain}/crm/v7/{quote(module, safe='')}/{quote(record, safe='')}",
            headers={"Authorization": f"Zoho-oauthtoken {token}"},
        )
        data = response.json().get("data") if response.status_code == 200 else None
        tags = [t.get("name") for t in (data[0].get("Tag") or [])] if data else []
        ack(text=f"{record} carries {', '.join(map(str, tags)) or 'no tags'}. Remove?")

    return app


def main() -> None:
    serve_from_args(
        lambda: make_wsgi_app(build_app()), __doc__.splitlines()[0] if __doc__ else None
    )


if __name__ == "__main__":
    main()
