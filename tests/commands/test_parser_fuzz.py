"""Properties of the parser: it never raises, and format_command round-trips every valid action."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from commands import parser
from commands.actions import Action, HelpRequest, Operation, ProviderName
from commands.errors import ParseError
from commands.grammar import (
    ALTA_ENTITY_TYPES,
    BIGIN_MODULES,
    QUOTES,
    ZOHO_MODULES,
    tag_error,
)
from commands.parser import format_command, parse

BOUNDED = settings(max_examples=300, deadline=None)

ZID = "554023000000793002"
U1 = "123e4567-e89b-12d3-a456-426614174000"


def assert_answered(text: str) -> None:
    """parse returned one of its three types, and not through the safety net."""
    result = parse(text)
    assert isinstance(result, Action | HelpRequest | ParseError)
    if isinstance(result, ParseError):
        assert result.message != parser._UNEXPECTED, text
        assert "\n" not in result.message
        assert len(result.message) <= 200
        assert result.usage


# --------------------------------------------------------------------------- never raises

any_character = st.characters(exclude_categories=())  # includes lone surrogates and controls


@BOUNDED
@given(st.text())
def test_parse_answers_any_text(text: str) -> None:
    assert_answered(text)


@BOUNDED
@given(st.text(alphabet=any_character, max_size=200))
def test_parse_answers_text_with_surrogates_and_controls(text: str) -> None:
    assert_answered(text)


VOCABULARY = [
    *("zoho", "crm", "Zoho-CRM", "bigin", "zohobigin", "alta", "fernand", "constantcontact", "cc"),
    *("zoh", "fernad", "help", "HELP", "?", "/untag", "delete-tags", "deletetags", "contacts"),
    *("Leads", "leads", "lead", "Leeds", "Price", "Books", "Price_Books", "Sales", "Orders"),
    *("Companies", "Pipelines", "deals", "emailThread", "thread", "linkedin", "li", "Potentials"),
    *("conversations", "Activities", "Tasks", "CustomModule1"),
    *(ZID, "12345", "1234", "0", "007", "9" * 26, "2024", f"{ZID},", f"{ZID},12345", ",", ", "),
    *(U1, U1.upper(), U1[:-1], f"{U1},", "deadbeef-party"),
    *(f"https://crm.zoho.com/crm/org1/tab/Leads/{ZID}", f"https://crm.zoho.eu/crm/o/tab/X/{ZID}"),
    *(f"<https://crm.zoho.com/crm/org1/tab/Leads/{ZID}|lead>", "<http://acme.io|acme.io>"),
    *("https://bigin.zoho.com/bigin/o/Home#/contacts/4876876000000123456", "https://[::1"),
    *("https://app.getfernand.com/conversations/42", f"https://app.altahq.com/t/{U1}"),
    *(f"https://app.constantcontact.com/pages/contacts/ui#contact/{U1}", "https://example.com"),
    *("Prime", "prime", "Attend", "First", '"Attend', 'First"', '"Attend First"', '""', '"'),
    *("'", "“", "”", "‘", "’", "“Attend", "First”", "Bob's", "a,b", "Prime,", "x" * 300),
    *("R&amp;D", "&lt;b&gt;", "&amp;lt;", "<", ">", "\x00", "\ud800", "🔥", "\u200b", "\t", "\n"),
]


@st.composite
def command_texts(draw: st.DrawFn) -> str:
    """Text made of realistic words, joined by the separators people (and Slack) use."""
    words = draw(st.lists(st.sampled_from(VOCABULARY), max_size=10))
    separators = draw(
        st.lists(st.sampled_from([" ", "  ", "\t", ", ", ",", "\n", ""]), min_size=len(words))
    )
    return "".join(word + separator for word, separator in zip(words, separators, strict=False))


@BOUNDED
@given(command_texts())
def test_parse_answers_realistic_word_salad(text: str) -> None:
    assert_answered(text)


@BOUNDED
@given(st.sampled_from(VOCABULARY[:9]), command_texts())
def test_parse_answers_anything_after_a_provider(provider: str, rest: str) -> None:
    assert_answered(f"{provider} {rest}")


# --------------------------------------------------------------------------- round trip


def expressible(tag: str) -> bool:
    """Some quote can hold the tag: no closing quote of that kind is followed by a space in it.

    Every tag parse() produces is expressible (it came in some quote, or none).
    """
    return any(re.search(f"[{re.escape(closers)}]\\s", tag) is None for closers in QUOTES.values())


TAG_SHAPES = st.sampled_from(
    [
        *("Prime", "Attend First", "Bob's list", 'say "hi"', "“smart” one", "‘x’", "R&D"),
        *("&amp;", "&lt;", "a<b>", "<https://x.io>", "2024", "12345", ZID, U1, U1.upper()),
        *("https://crm.zoho.com/crm/o/tab/Leads/12345", "acme.io/x", ",lead", "trail,", "a,b"),
        *("help", "zoho", "delete-tags", "contacts", "/untag", "'", '"', "“", "x y  z", "🔥 hot"),
    ]
)
TAG_TEXT = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=24)


def tags_for(provider: ProviderName) -> st.SearchStrategy[tuple[str, ...]]:
    tag = (
        (TAG_SHAPES | TAG_TEXT)
        .map(str.strip)
        .filter(lambda t: tag_error(provider, t) is None and expressible(t))
    )
    return st.lists(tag, min_size=1, max_size=5, unique_by=str.casefold).map(tuple)


def ids_for(provider: ProviderName) -> st.SearchStrategy[tuple[str, ...]]:
    if provider in (ProviderName.ZOHO, ProviderName.BIGIN):
        one = st.from_regex(r"[0-9]{5,25}", fullmatch=True)
    elif provider is ProviderName.FERNAND:
        one = st.integers(min_value=1, max_value=2**63 - 1).map(str)
    else:
        one = st.uuids().map(str)
    return st.lists(one, min_size=1, max_size=5, unique=True).map(tuple)


SCOPES: dict[ProviderName, st.SearchStrategy[str | None]] = {
    ProviderName.ZOHO: st.sampled_from(ZOHO_MODULES),
    ProviderName.BIGIN: st.sampled_from(BIGIN_MODULES),
    ProviderName.ALTA: st.sampled_from(ALTA_ENTITY_TYPES),
    ProviderName.FERNAND: st.none(),
    ProviderName.CONSTANT_CONTACT: st.just("contacts"),
}


@st.composite
def actions(draw: st.DrawFn) -> Action:
    provider = draw(st.sampled_from(list(ProviderName)))
    tags = draw(tags_for(provider))
    if provider is ProviderName.CONSTANT_CONTACT and draw(st.booleans()):
        return Action(provider=provider, operation=Operation.DELETE_TAGS, tags=tags)
    scope = draw(SCOPES[provider])
    return Action(provider=provider, scope=scope, targets=draw(ids_for(provider)), tags=tags)


@BOUNDED
@given(actions())
def test_format_command_round_trips(action: Action) -> None:
    assert parse(format_command(action)) == action


@BOUNDED
@given(command_texts())
def test_every_parsed_action_formats_back_to_itself(text: str) -> None:
    result = parse(text)
    if isinstance(result, Action):
        assert parse(format_command(result)) == result
