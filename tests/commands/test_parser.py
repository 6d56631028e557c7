"""The parser: every rule of the command language, valid and invalid, with exact results."""

from __future__ import annotations

import pytest

from commands import parser
from commands.actions import Action, HelpRequest, Operation, ProviderName
from commands.errors import ParseError
from commands.grammar import GENERAL_USAGE, USAGE
from commands.parser import MAX_TEXT_LENGTH, format_command, parse

ZOHO = ProviderName.ZOHO
BIGIN = ProviderName.BIGIN
ALTA = ProviderName.ALTA
FERNAND = ProviderName.FERNAND
CC = ProviderName.CONSTANT_CONTACT

ZID = "554023000000793002"
ZID2 = "554023000000792001"
BID = "4876876000000123456"
U1 = "123e4567-e89b-12d3-a456-426614174000"
U2 = "0b2e1c3d-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
ZOHO_URL = f"https://crm.zoho.com/crm/org123/tab/Leads/{ZID}"


def zoho(module: str, *targets: str, tags: tuple[str, ...] = ("Prime",)) -> Action:
    return Action(provider=ZOHO, scope=module, targets=targets, tags=tags)


def action(
    provider: ProviderName, scope: str | None, targets: tuple[str, ...], *tags: str
) -> Action:
    return Action(provider=provider, scope=scope, targets=targets, tags=tags)


VALID: list[tuple[str, Action]] = [
    # the example of the brief, and provider aliases
    (f"zoho Leads {ZID} Prime", zoho("Leads", ZID)),
    (f"ZOHO leads {ZID} Prime", zoho("Leads", ZID)),
    (f"crm Leads {ZID} Prime", zoho("Leads", ZID)),
    (f"zohocrm Leads {ZID} Prime", zoho("Leads", ZID)),
    (f"zoho-crm Leads {ZID} Prime", zoho("Leads", ZID)),
    (f"/untag zoho Leads {ZID} Prime", zoho("Leads", ZID)),
    (f"  zoho\tLeads \n {ZID}   Prime  ", zoho("Leads", ZID)),
    # Zoho module forms
    (f"zoho lead {ZID} Prime", zoho("Leads", ZID)),
    (f"zoho Price Books {ZID} Prime", zoho("Price_Books", ZID)),
    (f"zoho price books {ZID} Prime", zoho("Price_Books", ZID)),
    (f'zoho "Sales Orders" {ZID} Prime', zoho("Sales_Orders", ZID)),
    (f"zoho 'purchase orders' {ZID} Prime", zoho("Purchase_Orders", ZID)),
    (f"zoho “Price Books” {ZID} Prime", zoho("Price_Books", ZID)),
    (f"zoho pricebooks {ZID} Prime", zoho("Price_Books", ZID)),
    (f"zoho salesorders {ZID} Prime", zoho("Sales_Orders", ZID)),
    (f"zoho Sales_Order {ZID} Prime", zoho("Sales_Orders", ZID)),
    (f"zoho Potentials {ZID} Prime", zoho("Deals", ZID)),
    # id lists
    (f"zoho Leads {ZID},{ZID2} Prime", zoho("Leads", ZID, ZID2)),
    (f"zoho Leads {ZID}, {ZID2} Prime", zoho("Leads", ZID, ZID2)),
    (f"zoho Leads {ZID} , {ZID2} Prime", zoho("Leads", ZID, ZID2)),
    (f"zoho Leads {ZID} ,{ZID2} Prime", zoho("Leads", ZID, ZID2)),
    (f"zoho Leads {ZID} {ZID2} Prime", zoho("Leads", ZID, ZID2)),
    ("zoho Leads 11111,22222,33333 Prime", zoho("Leads", "11111", "22222", "33333")),
    ("zoho Leads 11111,,22222 Prime", zoho("Leads", "11111", "22222")),
    (f"zoho Leads {ZID},{ZID2},{ZID} {ZID} Prime", zoho("Leads", ZID, ZID2)),
    (f"zoho Leads {'9' * 25} Prime", zoho("Leads", "9" * 25)),
    ("zoho Leads 00012 Prime", zoho("Leads", "00012")),
    # tags: quoting, trimming, dedupe, commas, numbers
    (f'zoho Leads {ZID} "Attend First" Prime', zoho("Leads", ZID, tags=("Attend First", "Prime"))),
    (f"zoho Leads {ZID} 'Attend First'", zoho("Leads", ZID, tags=("Attend First",))),
    (f'zoho Leads {ZID} "  Attend First  "', zoho("Leads", ZID, tags=("Attend First",))),
    (f"zoho Leads {ZID} Prime prime PRIME Hot", zoho("Leads", ZID, tags=("Prime", "Hot"))),
    (f'zoho Leads {ZID} hot "Hot" HOT', zoho("Leads", ZID, tags=("hot",))),
    (f"zoho Leads {ZID} Zeta Alpha Mid", zoho("Leads", ZID, tags=("Zeta", "Alpha", "Mid"))),
    (f"zoho Leads {ZID} Prime, Hot", zoho("Leads", ZID, tags=("Prime", "Hot"))),
    (f"zoho Leads {ZID} Prime , Hot,", zoho("Leads", ZID, tags=("Prime", "Hot"))),
    (f'zoho Leads {ZID} "Prime,"', zoho("Leads", ZID, tags=("Prime,",))),
    (f"zoho Leads {ZID} a,b", zoho("Leads", ZID, tags=("a,b",))),
    (f"zoho Leads {ZID} 2024", zoho("Leads", ZID, tags=("2024",))),
    (f'zoho Leads {ZID} "12345"', zoho("Leads", ZID, tags=("12345",))),
    (f"zoho Leads {ZID} Bob's", zoho("Leads", ZID, tags=("Bob's",))),
    (f"zoho Leads {ZID} 'Bob's list'", zoho("Leads", ZID, tags=("Bob's list",))),
    (f'zoho Leads {ZID} "say "hi"" x', zoho("Leads", ZID, tags=('say "hi"', "x"))),
    (f'zoho Leads {ZID} "a"b"', zoho("Leads", ZID, tags=('a"b',))),
    (f"zoho Leads {ZID} help", zoho("Leads", ZID, tags=("help",))),
    (f"zoho Leads {ZID} {'x' * 25}", zoho("Leads", ZID, tags=("x" * 25,))),
    # smart quotes from macOS / iOS Slack clients
    (f"zoho Leads {ZID} “Attend First”", zoho("Leads", ZID, tags=("Attend First",))),
    (f"zoho Leads {ZID} ‘Attend First’", zoho("Leads", ZID, tags=("Attend First",))),
    (f'zoho Leads {ZID} “Attend First"', zoho("Leads", ZID, tags=("Attend First",))),
    (f"zoho Leads {ZID} ‘Bob’s list’", zoho("Leads", ZID, tags=("Bob’s list",))),
    (f"zoho Leads {ZID} “A B” “C D”", zoho("Leads", ZID, tags=("A B", "C D"))),
    # Slack escaping and links
    (f"zoho Leads {ZID} R&amp;D", zoho("Leads", ZID, tags=("R&D",))),
    (f'zoho Leads {ZID} "Q&amp;A Team"', zoho("Leads", ZID, tags=("Q&A Team",))),
    (f"zoho Leads {ZID} &lt;b&gt;", zoho("Leads", ZID, tags=("<b>",))),
    (f"zoho Leads {ZID} &amp;lt;", zoho("Leads", ZID, tags=("&lt;",))),
    (f"zoho Leads {ZID} R&D", zoho("Leads", ZID, tags=("R&D",))),
    (f"zoho Leads <{ZOHO_URL}> Prime", zoho("Leads", ZID)),
    (f"zoho Leads <{ZOHO_URL}|Lead: Ada> Prime", zoho("Leads", ZID)),
    (f"zoho Leads <{ZOHO_URL}?a=1&amp;b=2> Prime", zoho("Leads", ZID)),
    (f"zoho Leads {ZID} <http://acme.io|acme.io>", zoho("Leads", ZID, tags=("acme.io",))),
    (f"zoho Leads {ZID} <mailto:a@b.co|a@b.co>", zoho("Leads", ZID, tags=("a@b.co",))),
    # Zoho record links
    (f"zoho Leads {ZOHO_URL} Prime", zoho("Leads", ZID)),
    (f"zoho {ZOHO_URL} Prime", zoho("Leads", ZID)),
    (f"zoho <{ZOHO_URL}> Prime", zoho("Leads", ZID)),
    (f"zoho {ZOHO_URL},{ZID2} Prime", zoho("Leads", ZID, ZID2)),
    (f"zoho {ZOHO_URL} {ZOHO_URL}/edit Prime", zoho("Leads", ZID)),
    (f"zoho Leads {ZID} {ZOHO_URL} Prime", zoho("Leads", ZID)),
    (f"zoho Leads {ZOHO_URL}/ Prime", zoho("Leads", ZID)),
    (f"zoho Leads {ZOHO_URL}?sub=1#notes Prime", zoho("Leads", ZID)),
    (f"zoho Leads https://crm.zoho.eu/crm/org1/tab/Leads/{ZID} Prime", zoho("Leads", ZID)),
    (f"zoho Leads https://crm.zoho.com.au/crm/org1/tab/Leads/{ZID} Prime", zoho("Leads", ZID)),
    (f"zoho Leads https://crm.zohocloud.ca/crm/org1/tab/Leads/{ZID} Prime", zoho("Leads", ZID)),
    (f"zoho https://crm.zoho.in/crm/org1/tab/Potentials/{ZID} Prime", zoho("Deals", ZID)),
    (f"zoho Deals https://crm.zoho.jp/crm/org1/tab/Potentials/{ZID} Prime", zoho("Deals", ZID)),
    (
        f"zoho https://crm.zoho.com.cn/crm/org1/tab/Price_Books/{ZID} Prime",
        zoho("Price_Books", ZID),
    ),
    (f"zoho Tasks https://crm.zoho.com/crm/o/tab/Activities/{ZID} Prime", zoho("Tasks", ZID)),
    # Bigin
    (f"bigin Contacts {BID} Prime", action(BIGIN, "Contacts", (BID,), "Prime")),
    (f"zohobigin contacts {BID} Prime", action(BIGIN, "Contacts", (BID,), "Prime")),
    (f"zoho-bigin Deals {BID} Prime", action(BIGIN, "Pipelines", (BID,), "Prime")),
    (f"bigin Companies {BID} Prime", action(BIGIN, "Accounts", (BID,), "Prime")),
    (f"bigin company {BID} Prime", action(BIGIN, "Accounts", (BID,), "Prime")),
    (f"bigin pipeline {BID} Prime", action(BIGIN, "Pipelines", (BID,), "Prime")),
    (
        f"bigin Contacts https://bigin.zoho.com/bigin/org1/Home#/contacts/{BID}?s=1 Prime",
        action(BIGIN, "Contacts", (BID,), "Prime"),
    ),
    (
        f'bigin Contacts {BID} "In Progress" {"x" * 25}',
        action(BIGIN, "Contacts", (BID,), "In Progress", "x" * 25),
    ),
    # Alta
    (f"alta emailThread {U1} Prime", action(ALTA, "emailThread", (U1,), "Prime")),
    (f"alta thread {U1.upper()} Prime", action(ALTA, "emailThread", (U1,), "Prime")),
    (f"alta email-thread {U1},{U2} Prime", action(ALTA, "emailThread", (U1, U2), "Prime")),
    (f"alta email {U1}, {U1.upper()} Prime", action(ALTA, "emailThread", (U1,), "Prime")),
    (f"alta linkedin {U1} Prime", action(ALTA, "linkedinConversation", (U1,), "Prime")),
    (f"alta li {U1} Prime", action(ALTA, "linkedinConversation", (U1,), "Prime")),
    (
        f"alta linkedinConversation {U1} {U2} Prime",
        action(ALTA, "linkedinConversation", (U1, U2), "Prime"),
    ),
    (
        f"alta thread https://app.altahq.com/inbox/threads/{U1} Prime",
        action(ALTA, "emailThread", (U1,), "Prime"),
    ),
    (f"alta thread {U1} {'x' * 300}", action(ALTA, "emailThread", (U1,), "x" * 300)),
    # Fernand
    ("fernand 12345 Prime", action(FERNAND, None, ("12345",), "Prime")),
    ("Fernand 12345,678 Prime", action(FERNAND, None, ("12345", "678"), "Prime")),
    ("fernand 007 Prime", action(FERNAND, None, ("7",), "Prime")),
    ("fernand 7,007,0007 Prime", action(FERNAND, None, ("7",), "Prime")),
    ("fernand conversations 12 Prime", action(FERNAND, None, ("12",), "Prime")),
    ('fernand 12 "2024"', action(FERNAND, None, ("12",), "2024")),
    ("fernand 12 0", action(FERNAND, None, ("12",), "0")),
    (f"fernand 12 {'x' * 50}", action(FERNAND, None, ("12",), "x" * 50)),
    (
        "fernand https://app.getfernand.com/conversations/12345 Prime",
        action(FERNAND, None, ("12345",), "Prime"),
    ),
    # Constant Contact
    (f"constantcontact contacts {U1} VIP", action(CC, "contacts", (U1,), "VIP")),
    (f"cc contact {U1.upper()},{U2} VIP", action(CC, "contacts", (U1, U2), "VIP")),
    (f"constant-contact contacts {U1} VIP", action(CC, "contacts", (U1,), "VIP")),
    (f'cc contacts {U1} "{U2}"', action(CC, "contacts", (U1,), U2)),
    (f"cc contacts {U1} VIP {U2}", action(CC, "contacts", (U1,), "VIP", U2)),
    (f"cc contacts {U1} {'x' * 255}", action(CC, "contacts", (U1,), "x" * 255)),
    (
        f"cc contacts https://app.constantcontact.com/pages/contacts/ui#contact/{U1} VIP",
        action(CC, "contacts", (U1,), "VIP"),
    ),
]

DELETE_TAGS: list[tuple[str, tuple[str, ...]]] = [
    ("constantcontact delete-tags VIP", ("VIP",)),
    ("cc delete_tags VIP Old", ("VIP", "Old")),
    ("cc deletetags VIP vip", ("VIP",)),
    (f'cc Delete-Tags "Old Customers" {U1}', ("Old Customers", U1)),
    (f"cc delete-tags {U1.upper()}", (U1.upper(),)),  # tag uuids are kept as given
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_valid_commands(text: str, expected: Action) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(("text", "tags"), DELETE_TAGS)
def test_constant_contact_delete_tags(text: str, tags: tuple[str, ...]) -> None:
    result = parse(text)
    assert result == Action(provider=CC, operation=Operation.DELETE_TAGS, tags=tags)
    assert isinstance(result, Action)
    assert result.scope is None
    assert result.targets == ()
    assert result.is_account_wide


def test_zoho_ids_stay_exact_strings() -> None:
    big = "9007199254740993"  # 2**53 + 1: a float would turn it into ...992
    result = parse(f"zoho Leads {big} Prime")
    assert isinstance(result, Action)
    assert result.targets == (big,)
    assert all(isinstance(target, str) for target in result.targets)


# --------------------------------------------------------------------------- help


@pytest.mark.parametrize(
    ("text", "provider"),
    [
        ("", None),
        ("   ", None),
        ("\n\t ", None),
        ("help", None),
        ("HELP", None),
        ("?", None),
        ("--help", None),
        ("/untag", None),
        ("/untag help", None),
        ("help zoho", ZOHO),
        ("help crm", ZOHO),
        ("help cc", CC),
        ("help Constant-Contact", CC),
        ("help bigin", BIGIN),
        ("help alta", ALTA),
        ("help fernand", FERNAND),
        ("zoho help", ZOHO),
        ("cc ?", CC),
    ],
)
def test_help(text: str, provider: ProviderName | None) -> None:
    assert parse(text) == HelpRequest(provider=provider)


# --------------------------------------------------------------------------- errors

# (text, provider whose usage comes back or None for the general usage,
#  words the message must contain, the suggestion)
INVALID: list[tuple[str, ProviderName | None, str, str | None]] = [
    # providers
    (f"zoh Leads {ZID} Prime", None, "unknown provider `zoh`", "zoho"),
    ("fernad 12 Prime", None, "unknown provider `fernad`", "fernand"),
    ("bigni Contacts 12345 x", None, "unknown provider", "bigin"),
    ("salesforce Leads 1 x", None, "unknown provider `salesforce`", None),
    ("help nonsense", None, "unknown provider `nonsense`", None),
    ("help zohp", None, "unknown provider `zohp`", "zoho"),
    ("hlep", None, "unknown provider `hlep`", "help"),
    ("help zoho leads", None, "at most one provider", None),
    # scopes
    ("zoho", ZOHO, "missing the Zoho CRM module", None),
    (f"zoho Leeds {ZID} Prime", ZOHO, "unknown Zoho CRM module `Leeds`", "Leads"),
    (f"zoho Contcts {ZID} Prime", ZOHO, "unknown Zoho CRM module", "Contacts"),
    (f"zoho Companies {ZID} Prime", ZOHO, "unknown Zoho CRM module `Companies`", "Accounts"),
    (f"zoho {ZID} Prime", ZOHO, f"missing the Zoho CRM module (e.g. `Leads`) before `{ZID}`", None),
    (f"bigin Leads {BID} Prime", BIGIN, "unknown Bigin module `Leads`", "Contacts"),
    (f"bigin Pipline {BID} Prime", BIGIN, "unknown Bigin module", "Pipelines"),
    ("bigin", BIGIN, "missing the Bigin module", None),
    (f"alta emial {U1} Prime", ALTA, "unknown Alta entity type `emial`", "emailThread"),
    (f"alta {U1} Prime", ALTA, "missing the Alta entity type", None),
    (f"cc contcts {U1} VIP", CC, "unknown Constant Contact scope `contcts`", "contacts"),
    ("cc delete-tag VIP", CC, "unknown Constant Contact scope", "delete-tags"),
    ("cc", CC, "missing the Constant Contact scope", None),
    # ids
    ("zoho Leads", ZOHO, "missing the record id", None),
    ("zoho Leads 1234 Prime", ZOHO, "`1234` is not a valid Zoho CRM id: expected", None),
    ("zoho Leads Prime", ZOHO, "`Prime` is not a valid Zoho CRM id", None),
    (f"zoho Leads {ZID},abc Prime", ZOHO, "`abc` is not a valid Zoho CRM id", None),
    (f"zoho Leads {ZID}, Prime", ZOHO, "`Prime` is not a valid Zoho CRM id", None),
    (f"zoho Leads {'1' * 26} Prime", ZOHO, "5–25 digits", None),
    (f"zoho Leads {ZID}.5 Prime", ZOHO, "is not a valid Zoho CRM id", None),
    ("bigin Contacts 12 x", BIGIN, "`12` is not a valid Bigin id", None),
    ("fernand 0 Prime", FERNAND, "`0` is not a valid Fernand id", None),
    ("fernand -1 Prime", FERNAND, "`-1` is not a valid Fernand id", None),
    ("fernand 1.5 Prime", FERNAND, "`1.5` is not a valid Fernand id", None),
    (f"fernand {2**63} Prime", FERNAND, "is not a valid Fernand id", None),
    ("fernand Prime", FERNAND, "`Prime` is not a valid Fernand id", None),
    ("fernand", FERNAND, "missing the conversation id", None),
    ("alta thread 12345 Prime", ALTA, "`12345` is not a valid Alta id: expected a UUID", None),
    (f"alta thread {U1},{U2[:-1]} Prime", ALTA, f"`{U2[:-1]}` is not a valid Alta id", None),
    (f"alta thread {U1} {U2[:-1]} Prime", ALTA, "is not a valid Alta id", None),
    ("cc contacts 12345 VIP", CC, "not a valid Constant Contact id", None),
    # record links
    (
        f"zoho Contacts {ZOHO_URL} Prime",
        ZOHO,
        f"the link to record `{ZID}` is in Leads, but the command says Contacts",
        "Leads",
    ),
    (
        f"zoho Leads https://crm.zoho.com/crm/o/tab/Potentials/{ZID} Prime",
        ZOHO,
        "is in Deals, but the command says Leads",
        "Deals",
    ),
    (
        f"zoho Leads https://crm.zoho.com/crm/o/tab/Activities/{ZID} Prime",
        ZOHO,
        "is in Activities",
        None,
    ),
    (
        f"zoho https://crm.zoho.com/crm/o/tab/Activities/{ZID} Prime",
        ZOHO,
        "an Activities link; name the module (Tasks, Events or Calls)",
        None,
    ),
    (
        f"zoho https://crm.zoho.com/crm/o/tab/CustomModule1/{ZID} Prime",
        ZOHO,
        "a link to module `CustomModule1`, which untag does not handle",
        None,
    ),
    (
        f"zoho Leads {ZID} https://crm.zoho.com/crm/o/tab/Contacts/{ZID2} Prime",
        ZOHO,
        "is in Contacts, but the command says Leads",
        "Contacts",
    ),
    (f"zoho Leads https://example.com/{ZID} Prime", ZOHO, "is not a Zoho CRM record link", None),
    (
        f"zoho Leads https://crm.zoho.com.evil.example/crm/o/tab/Leads/{ZID} Prime",
        ZOHO,
        "is not a Zoho CRM record link",
        None,
    ),
    (f"zoho Leads {ZID} https://example.com Prime", ZOHO, "is not a Zoho CRM record link", None),
    (f"bigin Contacts {ZOHO_URL} Prime", BIGIN, "is a Zoho CRM link, not a Bigin one", None),
    (
        "bigin Contacts https://bigin.zoho.com/bigin/o/Home#/contacts Prime",
        BIGIN,
        "is not a Bigin record link",
        None,
    ),
    (
        f"cc contacts https://app.altahq.com/t/{U1} VIP",
        CC,
        "is an Alta link, not a Constant Contact one",
        None,
    ),
    # quoting
    (f'zoho Leads {ZID} "Attend First', ZOHO, 'unterminated quote: `"Attend First`', None),
    (f"zoho Leads {ZID} 'Attend First", ZOHO, "unterminated quote", None),
    (f"zoho Leads {ZID} “Attend First", ZOHO, "unterminated quote", None),
    (f"zoho Leads {ZID} ‘Attend First", ZOHO, "unterminated quote", None),
    (f'zoho Leads {ZID} "Attend First"Prime', ZOHO, "unterminated quote", None),
    ('"zoho Leads', None, "unterminated quote", None),
    (f'/untag zoho Leads {ZID} "x', ZOHO, "unterminated quote", None),
    # tags
    (f"zoho Leads {ZID}", ZOHO, "no tags given", None),
    (f"zoho Leads {ZID} , ,", ZOHO, "no tags given", None),
    (f"zoho Leads {ZID} {ZID2}", ZOHO, 'a tag that looks like an id must be quoted: "2024"', None),
    ("fernand 12 2024", FERNAND, "a tag that looks like an id must be quoted", None),
    (f"cc contacts {U1} {U2}", CC, "a tag that looks like an id must be quoted", None),
    ("cc delete-tags", CC, "no tags given", None),
    (f'zoho Leads {ZID} ""', ZOHO, 'tag "" is empty', None),
    (f"zoho Leads {ZID} '  '", ZOHO, 'tag "" is empty', None),
    (
        f"zoho Leads {ZID} {'x' * 26}",
        ZOHO,
        "is 26 characters long; Zoho CRM allows at most 25",
        None,
    ),
    (f"bigin Contacts {BID} {'x' * 26}", BIGIN, "Bigin allows at most 25", None),
    (f'bigin Contacts {BID} "a,b"', BIGIN, "tag `a,b` contains a comma", None),
    (f"bigin Contacts {BID} a,b", BIGIN, "tag `a,b` contains a comma", None),
    (f"fernand 12 {'x' * 51}", FERNAND, "Fernand allows at most 50", None),
    (f"cc contacts {U1} {'x' * 256}", CC, "Constant Contact allows at most 255", None),
    (f"cc contacts {U1} a&lt;b", CC, "tag `a<b` contains `<` or `>`", None),
    ("cc delete-tags a&gt;b", CC, "tag `a>b` contains `<` or `>`", None),
    (f"zoho Leads {ZID} a\x00b", ZOHO, "tag `a\\x00b` contains a control character", None),
    (f'alta thread {U1} "a\tb"', ALTA, "contains a control character", None),
    (f"alta thread {U1} a\ud800", ALTA, "tag `a\\ud800` contains an invalid character", None),
    # size
    ("zoho Leads " + "1" * MAX_TEXT_LENGTH, None, "characters long; the limit is 40,000", None),
]


@pytest.mark.parametrize(("text", "provider", "words", "suggestion"), INVALID)
def test_invalid_commands(
    text: str, provider: ProviderName | None, words: str, suggestion: str | None
) -> None:
    result = parse(text)
    assert isinstance(result, ParseError), result
    assert words in result.message
    assert result.usage == (GENERAL_USAGE if provider is None else USAGE[provider])
    assert result.suggestion == suggestion


@pytest.mark.parametrize("text", [case[0] for case in INVALID])
def test_error_messages_are_one_short_line(text: str) -> None:
    result = parse(text)
    assert isinstance(result, ParseError)
    assert "\n" not in result.message
    assert "\r" not in result.message
    assert 0 < len(result.message) <= 200
    assert result.message.isprintable()


@pytest.mark.parametrize(
    "text",
    [
        "zoho " + "L" * 100_000,
        "zoho Leads " + "9" * 30_000 + " Prime",
        "zoho Leads " + f"{ZID}," * 2000 + "x" * 10_000,
        f"zoho Leads {ZID} " + '"' + "a" * 30_000,
        "\x00" * 1000,
        "<http:" * 5000,
    ],
)
def test_huge_offending_text_is_shortened(text: str) -> None:
    result = parse(text)
    assert isinstance(result, ParseError)
    assert len(result.message) <= 200
    assert "…" in result.message or "characters long" in result.message


@pytest.mark.parametrize(
    "text",
    [
        "<http:" * 6600,  # unclosed Slack links
        "<http://x|" * 3900,
        '"a ' * 13000,  # unclosed quotes
        "“a " * 13000,
        "zoho Leads " + ",".join(str(10**17 + i) for i in range(2000)) + " Prime",
        "zoho Leads 12345 " + " ".join(f"t{i}" for i in range(6000)),
        "alta thread " + ("a" * 15 + "-") * 2400,
    ],
)
def test_hostile_text_near_the_limit_gets_an_answer(text: str) -> None:
    # How fast is a benchmark's business; here: an answer, never an exception.
    assert len(text) <= MAX_TEXT_LENGTH
    assert isinstance(parse(text), Action | ParseError)


def test_str_of_a_parse_error_carries_the_suggestion() -> None:
    result = parse(f"zoho Leeds {ZID} Prime")
    assert isinstance(result, ParseError)
    assert str(result) == "unknown Zoho CRM module `Leeds` (did you mean `Leads`?)"


def test_an_unexpected_failure_is_answered_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(text: str) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(parser, "_read", broken)
    result = parse("zoho Leads 12345 Prime")
    assert isinstance(result, ParseError)
    assert result.message == parser._UNEXPECTED
    assert result.usage == GENERAL_USAGE


# --------------------------------------------------------------------------- format_command

FORMATTED: list[tuple[Action, str]] = [
    (zoho("Leads", ZID), f"zoho Leads {ZID} Prime"),
    (zoho("Price_Books", ZID, ZID2), f"zoho Price_Books {ZID},{ZID2} Prime"),
    (zoho("Leads", ZID, tags=("Attend First", "Hot")), f'zoho Leads {ZID} "Attend First" Hot'),
    (zoho("Leads", ZID, tags=("12345",)), f'zoho Leads {ZID} "12345"'),
    (zoho("Leads", ZID, tags=("2024",)), f"zoho Leads {ZID} 2024"),
    (zoho("Leads", ZID, tags=("Prime,",)), f'zoho Leads {ZID} "Prime,"'),
    (zoho("Leads", ZID, tags=('say "hi" there',)), f"zoho Leads {ZID} 'say \"hi\" there'"),
    (zoho("Leads", ZID, tags=("R&D",)), f"zoho Leads {ZID} R&D"),
    (zoho("Leads", ZID, tags=("<b>",)), f"zoho Leads {ZID} &lt;b&gt;"),
    (zoho("Leads", ZID, tags=("&lt;",)), f"zoho Leads {ZID} &amp;lt;"),
    (action(FERNAND, None, ("12",), "VIP"), "fernand 12 VIP"),
    (action(ALTA, "emailThread", (U1, U2), "x"), f"alta emailThread {U1},{U2} x"),
    (action(CC, "contacts", (U1,), U2), f'constantcontact contacts {U1} "{U2}"'),
    (
        Action(provider=CC, operation=Operation.DELETE_TAGS, tags=("VIP", "Old one")),
        'constantcontact delete-tags VIP "Old one"',
    ),
]


@pytest.mark.parametrize(("action_", "text"), FORMATTED)
def test_format_command(action_: Action, text: str) -> None:
    assert format_command(action_) == text
    assert parse(text) == action_


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_format_command_round_trips_every_valid_example(text: str, expected: Action) -> None:
    assert parse(format_command(expected)) == expected


@pytest.mark.parametrize(
    "impossible",
    [
        zoho("leads", ZID),  # not the API name
        zoho("Custom", ZID),
        zoho("Leads", "12"),
        zoho("Leads"),  # no targets
        zoho("Leads", ZID, tags=("x" * 26,)),
        zoho("Leads", ZID, tags=("",)),
        zoho("Leads", ZID, tags=("a", "A")),
        zoho("Leads", ZID, tags=(" padded ",)),
        action(ALTA, "emailThread", (U1.upper(),), "x"),
        action(FERNAND, None, ("007",), "x"),
        action(FERNAND, "conversations", ("7",), "x"),
        zoho("Leads", ZID, tags=("a\" b' c” d’ e",)),  # no quote can hold it
    ],
)
def test_format_command_refuses_what_no_command_expresses(impossible: Action) -> None:
    with pytest.raises(ValueError, match=r"no command expresses|cannot be written"):
        format_command(impossible)
