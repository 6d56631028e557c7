"""The message shortcut reads provider, module and ids from a message."""

from __future__ import annotations

from bot.extract import prefill_from_message
from bot.views import Prefill
from commands.actions import ProviderName


def test_a_zoho_crm_link_gives_provider_module_and_id() -> None:
    text = "pls untag <https://crm.zoho.eu/crm/org20071/tab/Leads/554023000000793002|this lead>"
    assert prefill_from_message(text) == Prefill(
        provider=ProviderName.ZOHO, scope="Leads", targets=("554023000000793002",)
    )


def test_links_of_a_second_provider_are_ignored_and_duplicates_dropped() -> None:
    text = (
        "https://crm.zoho.com/crm/org1/tab/Contacts/554023000000801001 and "
        "<https://crm.zoho.com/crm/org1/tab/Contacts/554023000000801001> and "
        "https://app.altahq.com/inbox/threads/3f2b9c1e-5a7d-4e21-9b6a-0c8d2e4f6a10"
    )
    prefill = prefill_from_message(text)
    assert prefill.provider is ProviderName.ZOHO
    assert prefill.targets == ("554023000000801001",)


def test_bare_ids_without_links_leave_the_provider_to_the_user() -> None:
    assert prefill_from_message("554023000000793002, 554023000000792001 need cleanup") == Prefill(
        targets=("554023000000793002", "554023000000792001")
    )


def test_a_message_with_nothing_useful_gives_an_empty_form() -> None:
    assert prefill_from_message("hello <@U123> :wave:") == Prefill()
