"""The vocabulary of the command language: names, aliases, usage, and id, tag and link rules.

Nothing here reads a whole command (that is :mod:`commands.parser`); these are
the facts each step of parsing looks up, kept in one place so that help texts,
the parser and the tests agree.  Rule functions return a short phrase saying
what is wrong, or ``None`` when the value is fine; the parser turns the phrase
into a :class:`~commands.errors.ParseError`.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from commands.actions import HelpRequest, ProviderName

__all__ = [
    "ALTA_ENTITY_TYPES",
    "BIGIN_MODULES",
    "DISPLAY_NAMES",
    "EXPECTED_ID",
    "GENERAL_USAGE",
    "HELP_USAGE",
    "HELP_WORDS",
    "PROVIDER_ALIASES",
    "QUOTES",
    "SCOPE_ALIASES",
    "USAGE",
    "ZOHO_ACTIVITY_MODULES",
    "ZOHO_MODULES",
    "RecordLink",
    "canonical_id",
    "help_text",
    "id_error",
    "is_delete_tags",
    "is_fernand_scope_word",
    "is_help_word",
    "looks_like_link",
    "looks_like_target",
    "normalise_key",
    "recognise_record_url",
    "resolve_provider",
    "resolve_scope",
    "resolve_zoho_link_module",
    "suggest",
    "suggest_provider",
    "suggest_scope",
    "tag_error",
]

# --------------------------------------------------------------------------- names

DISPLAY_NAMES: Mapping[ProviderName, str] = {
    ProviderName.ZOHO: "Zoho CRM",
    ProviderName.BIGIN: "Bigin",
    ProviderName.ALTA: "Alta",
    ProviderName.FERNAND: "Fernand",
    ProviderName.CONSTANT_CONTACT: "Constant Contact",
}
"""How each provider is named in messages."""

HELP_WORDS = frozenset({"help", "?", "-h", "--help"})
"""Words that ask for help instead of naming a provider."""


def normalise_key(word: str) -> str:
    """Fold a name for lookup: case-insensitive, and blind to ``-``, ``_`` and spaces.

    This is what lets ``Price Books``, ``price_books`` and ``PriceBooks`` (or
    ``zoho-crm`` and ``zoho_crm``) name the same thing.
    """
    return re.sub(r"[\s_-]+", "", word.lower())


PROVIDER_ALIASES: Mapping[str, ProviderName] = {
    "zoho": ProviderName.ZOHO,
    "crm": ProviderName.ZOHO,
    "zohocrm": ProviderName.ZOHO,
    "bigin": ProviderName.BIGIN,
    "zohobigin": ProviderName.BIGIN,
    "alta": ProviderName.ALTA,
    "fernand": ProviderName.FERNAND,
    "constantcontact": ProviderName.CONSTANT_CONTACT,
    "cc": ProviderName.CONSTANT_CONTACT,
}
"""Provider names people type, keyed by :func:`normalise_key` (so ``zoho-crm`` is ``zohocrm``)."""


def is_help_word(word: str) -> bool:
    """True for ``help`` and its usual spellings (``?``, ``-h``, ``--help``)."""
    return word.lower() in HELP_WORDS


def resolve_provider(word: str) -> ProviderName | None:
    """The provider a word names, case-insensitively and through aliases, or ``None``."""
    return PROVIDER_ALIASES.get(normalise_key(word))


# --------------------------------------------------------------------------- scopes

ZOHO_MODULES: tuple[str, ...] = (
    "Leads",
    "Accounts",
    "Contacts",
    "Deals",
    "Campaigns",
    "Tasks",
    "Cases",
    "Events",
    "Calls",
    "Solutions",
    "Products",
    "Vendors",
    "Price_Books",
    "Quotes",
    "Sales_Orders",
    "Purchase_Orders",
    "Invoices",
)
"""Zoho CRM modules by API name, the spelling the API and :class:`Action.scope` use."""

ZOHO_ACTIVITY_MODULES = frozenset({"Tasks", "Events", "Calls"})
"""Modules that Zoho's web app shows under one ``Activities`` tab, so its links do not say which."""

BIGIN_MODULES: tuple[str, ...] = (
    "Contacts",
    "Pipelines",
    "Accounts",
    "Products",
    "Tasks",
    "Events",
    "Calls",
)
"""Bigin modules by API name."""

ALTA_ENTITY_TYPES: tuple[str, ...] = ("emailThread", "linkedinConversation")
"""Alta entity types, spelled as ``/tags/unassign`` wants them."""

_CC_CONTACTS_SCOPE = "contacts"
_DELETE_TAGS_KEY = "deletetags"  # delete-tags, delete_tags, deletetags


def _module_aliases(modules: Iterable[str], extra: Mapping[str, str]) -> dict[str, str]:
    """Every module under its folded name and its singular (all module names end in ``s``)."""
    aliases: dict[str, str] = {}
    for module in modules:
        key = normalise_key(module)
        aliases[key] = module
        aliases[key.removesuffix("s")] = module
    aliases.update(extra)
    return aliases


SCOPE_ALIASES: Mapping[ProviderName, Mapping[str, str]] = {
    # "Potentials" is Deals' old name and is still what Zoho's own links say.
    ProviderName.ZOHO: _module_aliases(ZOHO_MODULES, {"potentials": "Deals", "potential": "Deals"}),
    # Bigin's UI says "Companies" and "Deals" where the API says Accounts and Pipelines.
    ProviderName.BIGIN: _module_aliases(
        BIGIN_MODULES,
        {"deals": "Pipelines", "deal": "Pipelines", "companies": "Accounts", "company": "Accounts"},
    ),
    ProviderName.ALTA: {
        "emailthread": "emailThread",
        "emailthreads": "emailThread",
        "thread": "emailThread",
        "threads": "emailThread",
        "email": "emailThread",
        "linkedinconversation": "linkedinConversation",
        "linkedinconversations": "linkedinConversation",
        "linkedin": "linkedinConversation",
        "li": "linkedinConversation",
    },
    ProviderName.CONSTANT_CONTACT: {"contacts": _CC_CONTACTS_SCOPE, "contact": _CC_CONTACTS_SCOPE},
}
"""Scope words per provider, keyed by :func:`normalise_key`, mapped to the API name."""

_FERNAND_SCOPE_WORDS = frozenset({"conversation", "conversations"})


def resolve_scope(provider: ProviderName, word: str) -> str | None:
    """The API name of the module or entity type ``word`` names for ``provider``, or ``None``."""
    return SCOPE_ALIASES.get(provider, {}).get(normalise_key(word))


def is_delete_tags(word: str) -> bool:
    """True for Constant Contact's account-wide ``delete-tags`` (or ``delete_tags``)."""
    return normalise_key(word) == _DELETE_TAGS_KEY


def is_fernand_scope_word(word: str) -> bool:
    """True for ``conversations``: Fernand has one kind of record, but people may still name it."""
    return normalise_key(word) in _FERNAND_SCOPE_WORDS


# --------------------------------------------------------------------------- suggestions

# Beyond this, a word is not a typo of a short name, and difflib would only cost time.
_MAX_SUGGESTIBLE = 40


def suggest(word: str, aliases: Mapping[str, str]) -> str | None:
    """The canonical name whose alias is closest to ``word`` (difflib), or ``None``."""
    key = normalise_key(word)
    if not key or len(key) > _MAX_SUGGESTIBLE:
        return None
    close = difflib.get_close_matches(key, list(aliases), n=1, cutoff=0.6)
    return aliases[close[0]] if close else None


def suggest_provider(word: str) -> str | None:
    """The provider name (or ``help``) closest to ``word``, for "did you mean …?"."""
    names = {alias: str(provider) for alias, provider in PROVIDER_ALIASES.items()}
    names["help"] = "help"
    return suggest(word, names)


# Words that are not accepted (they would guess at the user's meaning) but
# deserve a better suggestion than difflib's nearest spelling ("Campaigns").
_SUGGESTION_ONLY: Mapping[ProviderName, Mapping[str, str]] = {
    ProviderName.ZOHO: {"companies": "Accounts", "company": "Accounts"},
    ProviderName.BIGIN: {"leads": "Contacts", "lead": "Contacts"},  # Bigin keeps leads as contacts
}


def suggest_scope(provider: ProviderName, word: str) -> str | None:
    """The module, entity type or Constant Contact scope closest to ``word``."""
    names = {**SCOPE_ALIASES.get(provider, {}), **_SUGGESTION_ONLY.get(provider, {})}
    if provider is ProviderName.CONSTANT_CONTACT:
        names[_DELETE_TAGS_KEY] = "delete-tags"
    return suggest(word, names)


# --------------------------------------------------------------------------- usage

USAGE: Mapping[ProviderName, str] = {
    ProviderName.ZOHO: "/untag zoho <Module> <id>[,<id>…] <tag> [<tag>…]",
    ProviderName.BIGIN: "/untag bigin <Module> <id>[,<id>…] <tag> [<tag>…]",
    ProviderName.ALTA: (
        "/untag alta <emailThread|linkedinConversation> <uuid>[,<uuid>…] <tag> [<tag>…]"
    ),
    ProviderName.FERNAND: "/untag fernand <conversation-id>[,<id>…] <tag> [<tag>…]",
    ProviderName.CONSTANT_CONTACT: (
        "/untag constantcontact contacts <contact-uuid>[,…] <tag> [<tag>…]\n"
        "/untag constantcontact delete-tags <tag> [<tag>…]"
    ),
}
"""The usage line of each provider (Constant Contact has two forms, one per line)."""

HELP_USAGE = "/untag help [provider]"

GENERAL_USAGE = "\n".join([*USAGE.values(), HELP_USAGE])
"""Every form of the language, one per line."""


def help_text(
    request: HelpRequest, enabled: Sequence[ProviderName], *, extra: str | None = None
) -> str:
    """Usage for one provider, or the whole language plus the enabled providers."""
    if request.provider is not None:
        return USAGE[request.provider]
    names = ", ".join(enabled) or "none (set provider credentials; see README)"
    text = f"{GENERAL_USAGE}\n\nEnabled providers: {names}"
    return f"{text}\n{extra}" if extra else text


QUOTES: Mapping[str, str] = {
    '"': '"',
    "'": "'",
    # Slack on macOS and iOS turns typed quotes into typographic ones; a line
    # edited by hand may end up with one of each, so the plain quote also closes.
    "“": '”"',
    "‘": "’'",
}
"""Opening quote → the characters that may close it (at the end of a word)."""

# --------------------------------------------------------------------------- ids

_ZOHO_ID = re.compile(r"[0-9]{5,25}")
_DIGITS = re.compile(r"[0-9]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_INT64_MAX = 2**63 - 1  # Fernand conversation ids are int64

EXPECTED_ID: Mapping[ProviderName, str] = {
    ProviderName.ZOHO: "a record id of 5–25 digits",
    ProviderName.BIGIN: "a record id of 5–25 digits",
    ProviderName.ALTA: "a UUID such as 123e4567-e89b-12d3-a456-426614174000",
    ProviderName.FERNAND: "a conversation id (a whole number from 1)",
    ProviderName.CONSTANT_CONTACT: "a contact UUID such as 123e4567-e89b-12d3-a456-426614174000",
}
"""What a valid id looks like, per provider, for error messages."""


def _fernand_id_ok(text: str) -> bool:
    if not _DIGITS.fullmatch(text):
        return False
    significant = text.lstrip("0")
    # Compare lengths before int(): int() of a huge digit string is slow or refused.
    return bool(significant) and len(significant) <= 19 and int(significant) <= _INT64_MAX


def id_error(provider: ProviderName, text: str) -> str | None:
    """Why ``text`` is not a valid record id for ``provider`` (the expected form), or ``None``."""
    if provider in (ProviderName.ZOHO, ProviderName.BIGIN):
        ok = _ZOHO_ID.fullmatch(text) is not None
    elif provider is ProviderName.FERNAND:
        ok = _fernand_id_ok(text)
    else:
        ok = _UUID.fullmatch(text) is not None
    return None if ok else f"expected {EXPECTED_ID[provider]}"


def canonical_id(provider: ProviderName, text: str) -> str:
    """The one spelling of a valid id: lowercase UUIDs, Fernand ids without leading zeros.

    Ids stay strings throughout: Zoho's 18-digit ids exceed 2**53.
    """
    if provider is ProviderName.FERNAND:
        return text.lstrip("0")
    if provider in (ProviderName.ALTA, ProviderName.CONSTANT_CONTACT):
        return text.lower()
    return text


# --------------------------------------------------------------------------- tags

_ZOHO_TAG_MAX = 25
_FERNAND_TAG_MAX = 50
_CC_TAG_MAX = 255


def _common_tag_error(tag: str) -> str | None:
    """Rules for every provider: not empty, and nothing a JSON body or URL cannot carry."""
    if not tag:
        return "is empty"
    for char in tag:
        category = unicodedata.category(char)
        if category == "Cc":
            return "contains a control character"
        if category == "Cs":  # a lone surrogate cannot be encoded as UTF-8
            return "contains an invalid character"
    return None


def _length_error(tag: str, limit: int, provider: ProviderName) -> str | None:
    if len(tag) > limit:
        return f"is {len(tag)} characters long; {DISPLAY_NAMES[provider]} allows at most {limit}"
    return None


def _zoho_tag_error(tag: str) -> str | None:
    return _length_error(tag, _ZOHO_TAG_MAX, ProviderName.ZOHO)


def _bigin_tag_error(tag: str) -> str | None:
    if "," in tag:
        # Bigin takes tag names as one comma-separated query parameter.
        return "contains a comma, which Bigin cannot remove (it separates tag names with commas)"
    return _length_error(tag, _ZOHO_TAG_MAX, ProviderName.BIGIN)


def _fernand_tag_error(tag: str) -> str | None:
    return _length_error(tag, _FERNAND_TAG_MAX, ProviderName.FERNAND)


def _constant_contact_tag_error(tag: str) -> str | None:
    if "<" in tag or ">" in tag:
        return "contains `<` or `>`, which Constant Contact does not allow in tag names"
    return _length_error(tag, _CC_TAG_MAX, ProviderName.CONSTANT_CONTACT)


def _alta_tag_error(tag: str) -> str | None:
    return None  # Alta documents no limit beyond "not empty"


_TAG_RULES: Mapping[ProviderName, Callable[[str], str | None]] = {
    ProviderName.ZOHO: _zoho_tag_error,
    ProviderName.BIGIN: _bigin_tag_error,
    ProviderName.FERNAND: _fernand_tag_error,
    ProviderName.CONSTANT_CONTACT: _constant_contact_tag_error,
    ProviderName.ALTA: _alta_tag_error,
}


def tag_error(provider: ProviderName, tag: str) -> str | None:
    """Why ``tag`` breaks ``provider``'s tag rules, as a phrase after "tag `x` …", or ``None``.

    Zoho: at most 25 characters.  Bigin: no commas, at most 25.  Fernand: at
    most 50.  Constant Contact: 1–255, no ``<`` or ``>``.  Alta: not empty.
    Every provider: no control characters.
    """
    return _common_tag_error(tag) or _TAG_RULES[provider](tag)


# --------------------------------------------------------------------------- record links


@dataclass(frozen=True)
class RecordLink:
    """A record link copied from a provider's web app.

    ``record_id`` is the id as found in the link, not yet validated; ``module``
    is the module segment of a Zoho CRM link as written there (``Leads``,
    ``Potentials``, ``Activities``), ``None`` for the other providers.
    """

    provider: ProviderName
    record_id: str
    module: str | None = None


_LINK_START = re.compile(r"https?://|[a-z0-9-]+(?:\.[a-z0-9-]+)+/", re.IGNORECASE)
_ZOHO_HOST = re.compile(r"crm\.(?:zoho\.[a-z]{2,3}(?:\.[a-z]{2})?|zohocloud\.ca)")
_BIGIN_HOST = re.compile(r"bigin\.(?:zoho\.[a-z]{2,3}(?:\.[a-z]{2})?|zohocloud\.ca)")
_ZOHO_PATH = re.compile(r"/crm/(?:[^/]+/)?tab/([A-Za-z0-9_]+)/([0-9]+)(?:/.*)?")
_UUID_ANYWHERE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def looks_like_link(text: str) -> bool:
    """True when ``text`` is shaped like a web address (``https://…`` or ``host.tld/…``)."""
    return _LINK_START.match(text) is not None


def _host_is(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def _segments(path: str) -> list[str]:
    return [segment for segment in path.split("/") if segment]


def _last_number(parts: Iterable[str], min_digits: int) -> str | None:
    numbers = [p for p in parts if _DIGITS.fullmatch(p) and len(p) >= min_digits]
    return numbers[-1] if numbers else None


def _last_uuid(text: str) -> str | None:
    found = _UUID_ANYWHERE.findall(text)
    return found[-1] if found else None


def _zoho_link(path: str) -> RecordLink | None:
    match = _ZOHO_PATH.fullmatch(path)
    if match is None:
        return None
    return RecordLink(ProviderName.ZOHO, match.group(2), module=match.group(1))


def _bigin_link(path: str, fragment: str) -> RecordLink | None:
    # Bigin is a single-page app: the record sits in the path or in the
    # fragment (``…/Home#/contacts/4876876000000123456?section=…``).
    route = fragment.split("?", 1)[0]
    record_id = _last_number([*_segments(path), *_segments(route)], min_digits=5)
    return RecordLink(ProviderName.BIGIN, record_id) if record_id else None


def _fernand_link(path: str, fragment: str) -> RecordLink | None:
    record_id = _last_number([*_segments(path), *_segments(fragment)], min_digits=1)
    return RecordLink(ProviderName.FERNAND, record_id) if record_id else None


def _uuid_link(provider: ProviderName, path: str, fragment: str, query: str) -> RecordLink | None:
    # The record is the most specific (last) uuid of the route; the query only
    # as a last resort, since it often carries other ids.
    record_id = _last_uuid(f"{path}#{fragment}") or _last_uuid(query)
    return RecordLink(provider, record_id) if record_id else None


def recognise_record_url(text: str) -> RecordLink | None:
    """The provider and record id in a record link from any of the five web apps, or ``None``.

    Zoho CRM: ``https://crm.zoho.<dc>/crm/<org>/tab/<Module>/<id>[/…][?…][#…]``
    (also ``crm.zohocloud.ca``).  Bigin: ``https://bigin.zoho.<dc>/…`` whose
    last numeric path or fragment segment of at least 5 digits is the id.
    Fernand: ``https://*.getfernand.com/…/<digits>``.  Alta and Constant
    Contact: ``https://*.altahq.com/…`` or ``https://*.constantcontact.com/…``
    containing a uuid.
    """
    if not looks_like_link(text):
        return None
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
    except ValueError:  # e.g. an unbalanced "[" read as an IPv6 address
        return None
    path, fragment, query = parts.path, parts.fragment, parts.query
    if _ZOHO_HOST.fullmatch(host):
        return _zoho_link(path)
    if _BIGIN_HOST.fullmatch(host):
        return _bigin_link(path, fragment)
    if _host_is(host, "getfernand.com"):
        return _fernand_link(path, fragment)
    if _host_is(host, "altahq.com"):
        return _uuid_link(ProviderName.ALTA, path, fragment, query)
    if _host_is(host, "constantcontact.com"):
        return _uuid_link(ProviderName.CONSTANT_CONTACT, path, fragment, query)
    return None


def resolve_zoho_link_module(segment: str) -> str | None:
    """The module named by a Zoho CRM link's ``tab/<segment>`` (``Potentials`` → ``Deals``)."""
    return resolve_scope(ProviderName.ZOHO, segment)


_NUMERIC_IDS = frozenset({ProviderName.ZOHO, ProviderName.BIGIN, ProviderName.FERNAND})
# Loose on purpose: a mistyped uuid in the id list should be reported as a bad
# id rather than silently taken for a tag; nobody names a tag like that.
_UUID_SHAPE = re.compile(r"(?=[0-9a-fA-F-]*-)[0-9a-fA-F-]{16,}")


def looks_like_target(provider: ProviderName, text: str) -> bool:
    """True when an (unquoted) word reads as more record ids or links of ``provider``.

    The parser keeps reading ids while words look like this, and the first word
    that does not starts the tags.  For numeric ids that means a valid id
    (``2024`` is a tag for Zoho, not a bad id); for uuids anything uuid-shaped;
    anything shaped like a web address is read as a record link.  A tag that
    looks like an id must therefore be quoted.
    """
    if text.startswith(","):
        return True  # "1 ,2": the comma continues the list
    first = next((piece for piece in text.split(",") if piece), "")
    if looks_like_link(first):
        return True
    if provider in _NUMERIC_IDS:
        return id_error(provider, first) is None
    return _UUID_SHAPE.fullmatch(first) is not None
