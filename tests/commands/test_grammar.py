"""The vocabulary: names and aliases, scopes, usage lines, id rules, tag rules, record links."""

from __future__ import annotations

import pytest

from commands.actions import ProviderName
from commands.grammar import (
    ALTA_ENTITY_TYPES,
    BIGIN_MODULES,
    GENERAL_USAGE,
    USAGE,
    ZOHO_MODULES,
    RecordLink,
    canonical_id,
    id_error,
    is_delete_tags,
    is_help_word,
    looks_like_target,
    recognise_record_url,
    resolve_provider,
    resolve_scope,
    suggest_provider,
    suggest_scope,
    tag_error,
)

ZOHO = ProviderName.ZOHO
BIGIN = ProviderName.BIGIN
ALTA = ProviderName.ALTA
FERNAND = ProviderName.FERNAND
CC = ProviderName.CONSTANT_CONTACT

ZID = "554023000000793002"
BID = "4876876000000123456"
U1 = "123e4567-e89b-12d3-a456-426614174000"


# --------------------------------------------------------------------------- providers


@pytest.mark.parametrize(
    ("word", "provider"),
    [
        ("zoho", ZOHO),
        ("ZOHO", ZOHO),
        ("crm", ZOHO),
        ("zohocrm", ZOHO),
        ("zoho-crm", ZOHO),
        ("Zoho_CRM", ZOHO),
        ("bigin", BIGIN),
        ("zohobigin", BIGIN),
        ("zoho-bigin", BIGIN),
        ("Bigin", BIGIN),
        ("alta", ALTA),
        ("ALTA", ALTA),
        ("fernand", FERNAND),
        ("Fernand", FERNAND),
        ("constantcontact", CC),
        ("cc", CC),
        ("CC", CC),
        ("constant-contact", CC),
        ("constant_contact", CC),
        ("ConstantContact", CC),
    ],
)
def test_provider_aliases(word: str, provider: ProviderName) -> None:
    assert resolve_provider(word) is provider


@pytest.mark.parametrize("word", ["zoh", "fernad", "nonsense", "", "zoho crm extra", "help"])
def test_unknown_provider_words(word: str) -> None:
    assert resolve_provider(word) is None


@pytest.mark.parametrize(
    ("word", "suggestion"),
    [
        ("zoh", "zoho"),
        ("fernad", "fernand"),
        ("bigni", "bigin"),
        ("constantcontct", "constantcontact"),
        ("alto", "alta"),
        ("hlep", "help"),
        ("xyzzy", None),
        ("z" * 10_000, None),
    ],
)
def test_provider_suggestions(word: str, suggestion: str | None) -> None:
    assert suggest_provider(word) == suggestion


@pytest.mark.parametrize("word", ["help", "HELP", "?", "-h", "--help"])
def test_help_words(word: str) -> None:
    assert is_help_word(word)


# --------------------------------------------------------------------------- scopes


@pytest.mark.parametrize("module", ZOHO_MODULES)
def test_every_zoho_module_by_api_name_lowercase_and_singular(module: str) -> None:
    assert resolve_scope(ZOHO, module) == module
    assert resolve_scope(ZOHO, module.lower()) == module
    assert resolve_scope(ZOHO, module.upper()) == module
    assert resolve_scope(ZOHO, module.removesuffix("s")) == module


@pytest.mark.parametrize(
    ("word", "module"),
    [
        ("lead", "Leads"),
        ("Price Books", "Price_Books"),
        ("price books", "Price_Books"),
        ("pricebooks", "Price_Books"),
        ("PriceBook", "Price_Books"),
        ("price-book", "Price_Books"),
        ("Sales Orders", "Sales_Orders"),
        ("salesorders", "Sales_Orders"),
        ("salesorder", "Sales_Orders"),
        ("Purchase Orders", "Purchase_Orders"),
        ("purchaseorders", "Purchase_Orders"),
        ("case", "Cases"),
        ("invoice", "Invoices"),
        ("Potentials", "Deals"),
        ("deal", "Deals"),
    ],
)
def test_zoho_module_forms(word: str, module: str) -> None:
    assert resolve_scope(ZOHO, word) == module


@pytest.mark.parametrize("word", ["Leeds", "Companies", "Pipelines", "Activities", "", "Custom"])
def test_unknown_zoho_modules(word: str) -> None:
    assert resolve_scope(ZOHO, word) is None


@pytest.mark.parametrize("module", BIGIN_MODULES)
def test_every_bigin_module(module: str) -> None:
    assert resolve_scope(BIGIN, module) == module
    assert resolve_scope(BIGIN, module.lower().removesuffix("s")) == module


@pytest.mark.parametrize(
    ("word", "module"),
    [
        ("deals", "Pipelines"),
        ("Deal", "Pipelines"),
        ("pipeline", "Pipelines"),
        ("Companies", "Accounts"),
        ("company", "Accounts"),
        ("accounts", "Accounts"),
    ],
)
def test_bigin_aliases(word: str, module: str) -> None:
    assert resolve_scope(BIGIN, word) == module


@pytest.mark.parametrize("word", ["Leads", "Price_Books", "Invoices"])
def test_crm_only_modules_are_not_bigin_modules(word: str) -> None:
    assert resolve_scope(BIGIN, word) is None


@pytest.mark.parametrize(
    ("word", "entity"),
    [
        ("emailThread", "emailThread"),
        ("emailthread", "emailThread"),
        ("email-thread", "emailThread"),
        ("email_thread", "emailThread"),
        ("thread", "emailThread"),
        ("threads", "emailThread"),
        ("email", "emailThread"),
        ("linkedinConversation", "linkedinConversation"),
        ("linkedinconversation", "linkedinConversation"),
        ("linkedin-conversation", "linkedinConversation"),
        ("LinkedIn", "linkedinConversation"),
        ("li", "linkedinConversation"),
    ],
)
def test_alta_entity_types(word: str, entity: str) -> None:
    assert entity in ALTA_ENTITY_TYPES
    assert resolve_scope(ALTA, word) == entity


@pytest.mark.parametrize(("word", "scope"), [("contacts", "contacts"), ("Contact", "contacts")])
def test_constant_contact_scopes(word: str, scope: str) -> None:
    assert resolve_scope(CC, word) == scope


@pytest.mark.parametrize("word", ["delete-tags", "delete_tags", "deletetags", "Delete-Tags"])
def test_delete_tags_words(word: str) -> None:
    assert is_delete_tags(word)


def test_fernand_has_no_scope_table() -> None:
    assert resolve_scope(FERNAND, "conversations") is None


@pytest.mark.parametrize(
    ("provider", "word", "suggestion"),
    [
        (ZOHO, "Leeds", "Leads"),
        (ZOHO, "Contcts", "Contacts"),
        (ZOHO, "Invoces", "Invoices"),
        (BIGIN, "Companys", "Accounts"),
        (BIGIN, "Pipline", "Pipelines"),
        (ALTA, "emial", "emailThread"),
        (ALTA, "linkdin", "linkedinConversation"),
        (CC, "contcts", "contacts"),
        (CC, "delete-tag", "delete-tags"),
        (ZOHO, "qwertyuiop", None),
    ],
)
def test_scope_suggestions(provider: ProviderName, word: str, suggestion: str | None) -> None:
    assert suggest_scope(provider, word) == suggestion


# --------------------------------------------------------------------------- usage


def test_every_provider_has_a_usage_line_in_the_general_usage() -> None:
    assert set(USAGE) == set(ProviderName)
    for provider, usage in USAGE.items():
        assert usage.startswith(f"/untag {provider} ")
        assert usage in GENERAL_USAGE
    assert "/untag help [provider]" in GENERAL_USAGE
    assert "delete-tags" in USAGE[CC]


# --------------------------------------------------------------------------- ids


@pytest.mark.parametrize(
    ("provider", "text"),
    [
        (ZOHO, ZID),
        (ZOHO, "12345"),
        (ZOHO, "1" * 25),
        (ZOHO, "00012"),
        (BIGIN, BID),
        (FERNAND, "1"),
        (FERNAND, "12345"),
        (FERNAND, "007"),
        (FERNAND, str(2**63 - 1)),
        (ALTA, U1),
        (ALTA, U1.upper()),
        (CC, U1),
    ],
)
def test_valid_ids(provider: ProviderName, text: str) -> None:
    assert id_error(provider, text) is None


@pytest.mark.parametrize(
    ("provider", "text"),
    [
        (ZOHO, "1234"),
        (ZOHO, "1" * 26),
        (ZOHO, "12345a"),
        (ZOHO, "-12345"),
        (ZOHO, "1.5e17"),
        (ZOHO, "١٢٣٤٥"),  # Arabic-Indic digits are digits to str.isdigit, not to Zoho
        (ZOHO, ""),
        (BIGIN, "abcde"),
        (FERNAND, "0"),
        (FERNAND, "000"),
        (FERNAND, "-1"),
        (FERNAND, "1.0"),
        (FERNAND, str(2**63)),
        (FERNAND, "9" * 5000),
        (FERNAND, ""),
        (ALTA, "123"),
        (ALTA, U1[:-1]),
        (ALTA, U1.replace("-", "")),
        (ALTA, "g" + U1[1:]),
        (CC, "Prime"),
    ],
)
def test_invalid_ids(provider: ProviderName, text: str) -> None:
    problem = id_error(provider, text)
    assert problem is not None
    assert problem.startswith("expected ")


@pytest.mark.parametrize(
    ("provider", "text", "canonical"),
    [
        (ZOHO, ZID, ZID),
        (ZOHO, "00012345", "00012345"),
        (FERNAND, "007", "7"),
        (FERNAND, "12345", "12345"),
        (ALTA, U1.upper(), U1),
        (CC, U1.upper(), U1),
    ],
)
def test_canonical_ids_stay_strings(provider: ProviderName, text: str, canonical: str) -> None:
    assert canonical_id(provider, text) == canonical


# --------------------------------------------------------------------------- tags


@pytest.mark.parametrize(
    ("provider", "tag"),
    [
        (ZOHO, "Prime"),
        (ZOHO, "x" * 25),
        (ZOHO, "Attend First"),
        (ZOHO, "a,b"),
        (ZOHO, "R&D"),
        (BIGIN, "x" * 25),
        (BIGIN, "In Progress"),
        (FERNAND, "x" * 50),
        (CC, "x" * 255),
        (CC, U1),
        (CC, "R&D"),
        (ALTA, "x" * 1000),
        (ALTA, "🔥 hot"),
        (ALTA, "👩\u200d💻"),  # zero-width joiner is a format character, not a control one
    ],
)
def test_valid_tags(provider: ProviderName, tag: str) -> None:
    assert tag_error(provider, tag) is None


@pytest.mark.parametrize(
    ("provider", "tag", "words"),
    [
        (ZOHO, "x" * 26, "at most 25"),
        (BIGIN, "x" * 26, "at most 25"),
        (BIGIN, "a,b", "comma"),
        (FERNAND, "x" * 51, "at most 50"),
        (CC, "x" * 256, "at most 255"),
        (CC, "a<b", "`<` or `>`"),
        (CC, "a>b", "`<` or `>`"),
        (ALTA, "", "empty"),
        (ZOHO, "", "empty"),
        (ZOHO, "a\x00b", "control character"),
        (FERNAND, "a\tb", "control character"),
        (ALTA, "a\ud800", "invalid character"),
    ],
)
def test_invalid_tags(provider: ProviderName, tag: str, words: str) -> None:
    problem = tag_error(provider, tag)
    assert problem is not None
    assert words in problem


# --------------------------------------------------------------------------- record links


@pytest.mark.parametrize(
    ("url", "link"),
    [
        (f"https://crm.zoho.com/crm/org123/tab/Leads/{ZID}", RecordLink(ZOHO, ZID, "Leads")),
        (f"https://crm.zoho.eu/crm/org123/tab/Contacts/{ZID}", RecordLink(ZOHO, ZID, "Contacts")),
        (f"https://crm.zoho.in/crm/org1/tab/Leads/{ZID}", RecordLink(ZOHO, ZID, "Leads")),
        (f"https://crm.zoho.com.au/crm/org1/tab/Leads/{ZID}", RecordLink(ZOHO, ZID, "Leads")),
        (f"https://crm.zoho.jp/crm/org1/tab/Leads/{ZID}", RecordLink(ZOHO, ZID, "Leads")),
        (f"https://crm.zoho.com.cn/crm/org1/tab/Leads/{ZID}", RecordLink(ZOHO, ZID, "Leads")),
        (f"https://crm.zohocloud.ca/crm/org1/tab/Leads/{ZID}", RecordLink(ZOHO, ZID, "Leads")),
        (f"https://crm.zoho.com/crm/org1/tab/Leads/{ZID}/", RecordLink(ZOHO, ZID, "Leads")),
        (f"https://crm.zoho.com/crm/org1/tab/Leads/{ZID}/edit", RecordLink(ZOHO, ZID, "Leads")),
        (f"https://crm.zoho.com/crm/org1/tab/Leads/{ZID}?a=1&b=2", RecordLink(ZOHO, ZID, "Leads")),
        (f"https://crm.zoho.com/crm/org1/tab/Leads/{ZID}#notes", RecordLink(ZOHO, ZID, "Leads")),
        (f"https://crm.zoho.com/crm/tab/Leads/{ZID}", RecordLink(ZOHO, ZID, "Leads")),
        (f"http://CRM.ZOHO.COM/crm/org1/tab/Leads/{ZID}", RecordLink(ZOHO, ZID, "Leads")),
        (f"crm.zoho.com/crm/org1/tab/Leads/{ZID}", RecordLink(ZOHO, ZID, "Leads")),
        (
            f"https://crm.zoho.com/crm/org1/tab/Potentials/{ZID}",
            RecordLink(ZOHO, ZID, "Potentials"),
        ),
        (f"https://bigin.zoho.com/bigin/org1/Home#/contacts/{BID}", RecordLink(BIGIN, BID)),
        (
            f"https://bigin.zoho.eu/bigin/org1/Home#/deals/{BID}?section=notes",
            RecordLink(BIGIN, BID),
        ),
        (f"https://bigin.zoho.com/bigin/org1/contacts/{BID}/", RecordLink(BIGIN, BID)),
        (f"https://bigin.zohocloud.ca/bigin/org1/Home#/contacts/{BID}", RecordLink(BIGIN, BID)),
        ("https://app.getfernand.com/conversations/12345", RecordLink(FERNAND, "12345")),
        ("https://acme.getfernand.com/inbox/all/42?tab=notes", RecordLink(FERNAND, "42")),
        ("https://getfernand.com/c/7", RecordLink(FERNAND, "7")),
        (f"https://app.altahq.com/inbox/threads/{U1}", RecordLink(ALTA, U1)),
        (f"https://app.altahq.com/inbox/threads/{U1.upper()}?x=1", RecordLink(ALTA, U1.upper())),
        (f"https://altahq.com/x?thread={U1}", RecordLink(ALTA, U1)),
        (
            f"https://app.constantcontact.com/pages/contacts/ui#contact/{U1}",
            RecordLink(CC, U1),
        ),
    ],
)
def test_record_links(url: str, link: RecordLink) -> None:
    assert recognise_record_url(url) == link


@pytest.mark.parametrize(
    "url",
    [
        f"https://example.com/crm/org1/tab/Leads/{ZID}",
        f"https://crm.zoho.com.evil.example/crm/org1/tab/Leads/{ZID}",
        f"https://notcrm.zoho.com/crm/org1/tab/Leads/{ZID}",
        "https://crm.zoho.com/crm/org1/tab/Leads/",
        "https://crm.zoho.com/crm/org1/home",
        "https://bigin.zoho.com/bigin/org1/Home#/contacts",
        "https://bigin.zoho.com/bigin/org1/Home#/contacts/1234",
        "https://app.getfernand.com/inbox",
        "https://evilgetfernand.com/c/7",
        "https://app.altahq.com/inbox",
        "https://app.constantcontact.com/pages/contacts/ui",
        "http://[::1",
        "Prime",
        "",
    ],
)
def test_not_record_links(url: str) -> None:
    assert recognise_record_url(url) is None


# --------------------------------------------------------------------------- id-list continuation


@pytest.mark.parametrize(
    ("provider", "word", "expected"),
    [
        (ZOHO, "12345", True),
        (ZOHO, "12345,67890", True),
        (ZOHO, ",12345", True),
        (ZOHO, "2024", False),  # too short for an id: a tag
        (ZOHO, "Prime", False),
        (ZOHO, f"https://crm.zoho.com/crm/org1/tab/Leads/{ZID}", True),
        (ZOHO, "https://example.com/anything", True),  # links are read, and refused if foreign
        (FERNAND, "2024", True),
        (FERNAND, "0", False),
        (ALTA, U1, True),
        (ALTA, U1[:-3], True),  # a mangled uuid is reported, not taken for a tag
        (ALTA, "deadbeef-party", False),
        (CC, U1.upper(), True),
        (CC, "VIP", False),
    ],
)
def test_looks_like_target(provider: ProviderName, word: str, expected: bool) -> None:
    assert looks_like_target(provider, word) is expected
