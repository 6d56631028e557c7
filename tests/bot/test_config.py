"""Settings: enabled providers, Bigin's fallback, and one safe line on bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_settings
from commands.errors import ConfigError

CANARY = "canary-s3cret-value-zz9"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith(
            ("ALTA_", "FERNAND_", "ZOHO_", "BIGIN_", "CONSTANT_CONTACT_", "UNTAG_", "SLACK_")
        ):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_no_credentials_means_no_provider_enabled() -> None:
    config = load_settings().providers()
    assert (config.alta, config.fernand, config.zoho, config.bigin, config.constant_contact) == (
        None,
        None,
        None,
        None,
        None,
    )


def test_a_provider_is_enabled_when_its_credentials_are_present(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALTA_API_TOKEN", CANARY)
    monkeypatch.setenv("ALTA_ACCOUNT_ID", "acct-1")
    monkeypatch.setenv("FERNAND_API_KEY", "sk_x")
    config = load_settings().providers()
    assert config.alta is not None and config.alta.account_id == "acct-1"
    assert config.fernand is not None
    assert config.zoho is None and config.constant_contact is None
    assert CANARY not in repr(config) and CANARY in config.secrets()


def test_bigin_falls_back_to_the_zoho_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"CLIENT_ID": "c", "CLIENT_SECRET": "s", "REFRESH_TOKEN": "r"}.items():
        monkeypatch.setenv(f"ZOHO_{name}", value)
    monkeypatch.setenv("ZOHO_ACCOUNTS_URL", "https://accounts.zoho.eu")
    monkeypatch.setenv("BIGIN_API_DOMAIN", "https://www.zohoapis.in")
    config = load_settings().providers()
    assert config.zoho is not None and config.bigin is not None
    assert config.bigin.accounts_url == "https://accounts.zoho.eu"
    assert config.bigin.api_domain == "https://www.zohoapis.in"
    assert config.zoho.api_domain == "https://www.zohoapis.com"


def test_an_incomplete_grant_names_the_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOHO_CLIENT_ID", "c")
    monkeypatch.setenv("ZOHO_REFRESH_TOKEN", CANARY)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith("ZOHO_CLIENT_SECRET is missing")
    assert CANARY not in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ALTA_BASE_URL", f"ftp://{CANARY}", "ALTA_BASE_URL: must be an http(s) URL"),
        ("UNTAG_HTTP_TIMEOUT", CANARY, "UNTAG_HTTP_TIMEOUT:"),
        ("FERNAND_WRITES_PER_MINUTE", "-1", "FERNAND_WRITES_PER_MINUTE:"),
    ],
)
def test_a_malformed_value_stops_start_up_with_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(expected)
    assert "\n" not in message and CANARY not in message


def test_settings_are_read_from_a_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"FERNAND_API_KEY={CANARY}\nUNTAG_ADMINS=U1, U2\n")
    settings = load_settings()
    assert settings.providers().fernand is not None
    assert settings.admins == frozenset({"U1", "U2"})


def test_an_empty_value_means_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALTA_API_TOKEN", "")
    assert load_settings().providers().alta is None
