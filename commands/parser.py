"""Command text → :class:`Action`, :class:`HelpRequest` or :class:`ParseError`, and back.

The language (see ``docs/design.md``)::

    zoho <Module> <id>[,<id>…] <tag> [<tag>…]
    bigin <Module> <id>[,<id>…] <tag> [<tag>…]
    alta <emailThread|linkedinConversation> <uuid>[,<uuid>…] <tag> [<tag>…]
    fernand <conversation-id>[,<id>…] <tag> [<tag>…]
    constantcontact contacts <contact-uuid>[,…] <tag> [<tag>…]
    constantcontact delete-tags <tag> [<tag>…]
    help [provider]

Reading goes in four steps: undo Slack's escaping, split into words (quoted
words may hold spaces), read the provider and its scope, then the ids (while
words look like ids or record links) and finally the tags.  Internally each
step raises :class:`ParseError`; :func:`parse` returns it instead, so that bad
input is an ordinary answer and never a traceback.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from commands.actions import Action, HelpRequest, Operation, ProviderName
from commands.errors import ParseError
from commands.grammar import (
    DISPLAY_NAMES,
    EXPECTED_ID,
    GENERAL_USAGE,
    QUOTES,
    USAGE,
    ZOHO_ACTIVITY_MODULES,
    RecordLink,
    canonical_id,
    id_error,
    is_delete_tags,
    is_fernand_scope_word,
    is_help_word,
    looks_like_link,
    looks_like_target,
    recognise_record_url,
    resolve_provider,
    resolve_scope,
    resolve_zoho_link_module,
    suggest_provider,
    suggest_scope,
    tag_error,
)

__all__ = ["MAX_TEXT_LENGTH", "format_command", "parse", "replace_tags"]

log = logging.getLogger(__name__)

MAX_TEXT_LENGTH = 40_000
"""Longest command text read (Slack's own message limit); longer text is refused unread."""

_MAX_MESSAGE = 200
_SHOWN = 40  # characters of user text quoted in an error message
_UNEXPECTED = "untag could not read this command (internal parser error)"

# --------------------------------------------------------------------------- errors


def _show(text: str, limit: int = _SHOWN) -> str:
    """User text made safe to quote in a one-line message: escaped, no backticks, shortened."""
    shown: list[str] = []
    size = 0
    for char in text:
        piece = char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        piece = piece.replace("`", "'")  # a backtick would end the Slack code span around it
        if size + len(piece) > limit:
            shown.append("…")
            break
        shown.append(piece)
        size += len(piece)
    return "".join(shown)


def _error(
    message: str, provider: ProviderName | None, suggestion: str | None = None
) -> ParseError:
    """A ParseError with ``provider``'s usage line (the whole language's when ``None``)."""
    line = " ".join(message.split())  # one line, whatever slipped in
    if len(line) > _MAX_MESSAGE:
        line = line[: _MAX_MESSAGE - 1] + "…"
    usage = GENERAL_USAGE if provider is None else USAGE[provider]
    return ParseError(line, usage=usage, suggestion=suggestion)


# --------------------------------------------------------------------------- Slack text

# Slack wraps links it recognised as <url> or <url|label>.  Typed angle brackets
# arrive escaped, so a raw "<" inside is a new wrapper: stopping there keeps the
# scan linear on hostile input full of unclosed "<http:".
_SLACK_LINK = re.compile(r"<((?:https?|mailto):[^|<>\s]*)(?:\|([^<>]*))?>", re.I)
_SLACK_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}


def _unwrap_link(match: re.Match[str]) -> str:
    url, label = match.group(1), match.group(2)
    # Slack also links bare words it takes for domains ("acme.io" becomes
    # <http://acme.io|acme.io>): then the label is what the person typed.
    if label and "/" not in label and url.split(":", 1)[1].lstrip("/") == label:
        return label
    return url


def _unslack(text: str) -> str:
    """Undo Slack's markup: unwrap ``<url|label>`` links, then ``&amp;`` ``&lt;`` ``&gt;``.

    Links first, because their angle brackets are real while typed ones arrive
    escaped; one pass over the entities, so ``&amp;lt;`` stays ``&lt;``.
    """
    text = _SLACK_LINK.sub(_unwrap_link, text)
    return _SLACK_ENTITY.sub(lambda m: _ENTITIES[m.group(1)], text)


def _slack_escape(text: str) -> str:
    """The inverse of :func:`_unslack` for text without links, escaping only what is ambiguous."""
    text = re.sub(r"&(?=(?:amp|lt|gt);)", "&amp;", text)
    return text.replace("<", "&lt;").replace(">", "&gt;")


# --------------------------------------------------------------------------- words


@dataclass(frozen=True)
class _Word:
    text: str
    quoted: bool = False


class _UnterminatedQuote(Exception):
    def __init__(self, fragment: str) -> None:
        super().__init__(fragment)
        self.fragment = fragment


_SPACE = re.compile(r"\s+")
# A quote closes only where a word ends, so "Bob's list" needs no escaping.
_CLOSERS = {
    opener: re.compile(f"[{re.escape(closers)}](?=\\s|\\Z)") for opener, closers in QUOTES.items()
}


def _split_words(text: str) -> list[_Word]:
    """Whitespace-separated words; a word opening with a quote runs to its closing quote."""
    words: list[_Word] = []
    position = _skip_space(text, 0)
    while position < len(text):
        closer = _CLOSERS.get(text[position])
        if closer is None:
            space = _SPACE.search(text, position)
            end = space.start() if space else len(text)
            words.append(_Word(text[position:end]))
            position = end
        else:
            closing = closer.search(text, position + 1)
            if closing is None:
                raise _UnterminatedQuote(text[position:])
            words.append(_Word(text[position + 1 : closing.start()], quoted=True))
            position = closing.end()
        position = _skip_space(text, position)
    return words


def _skip_space(text: str, position: int) -> int:
    space = _SPACE.match(text, position)
    return space.end() if space else position


# --------------------------------------------------------------------------- the command


# Text pasted from the console or a message may still start with the command.
_SLASH_COMMAND = re.compile(r"\A\s*/untag(?=\s|\Z)", re.IGNORECASE)


def _read(text: str) -> Action | HelpRequest:
    """Parse ``text``, raising ParseError; :func:`parse` is the non-raising wrapper."""
    if len(text) > MAX_TEXT_LENGTH:
        raise _error(
            f"the command is {len(text):,} characters long; the limit is {MAX_TEXT_LENGTH:,}", None
        )
    text = _SLASH_COMMAND.sub("", _unslack(text), count=1)
    try:
        words = _split_words(text)
    except _UnterminatedQuote as problem:
        raise _error(
            f"unterminated quote: `{_show(problem.fragment)}` (close it with the same quote)",
            _provider_named_first(text),
        ) from None
    if not words:
        return HelpRequest()
    head, rest = words[0], words[1:]
    if is_help_word(head.text):
        return _read_help(rest)
    provider = _read_provider(head)
    if len(rest) == 1 and is_help_word(rest[0].text):
        return HelpRequest(provider=provider)
    return _READERS[provider](rest)


def _provider_named_first(text: str) -> ProviderName | None:
    first = text.split(None, 1)
    return resolve_provider(first[0]) if first else None


def _read_help(rest: Sequence[_Word]) -> HelpRequest:
    if not rest:
        return HelpRequest()
    if len(rest) > 1:
        raise _error("`help` takes at most one provider name, e.g. `help zoho`", None)
    return HelpRequest(provider=_read_provider(rest[0]))


def _read_provider(word: _Word) -> ProviderName:
    provider = resolve_provider(word.text)
    if provider is None:
        raise _error(
            f"unknown provider `{_show(word.text)}`: "
            "use zoho, bigin, alta, fernand or constantcontact",
            None,
            suggest_provider(word.text),
        )
    return provider


def _read_zoho(words: Sequence[_Word]) -> Action:
    module, rest = _read_zoho_module(words)
    return _removal(ProviderName.ZOHO, module, rest)


def _read_bigin(words: Sequence[_Word]) -> Action:
    module, rest = _read_scope(ProviderName.BIGIN, words)
    return _removal(ProviderName.BIGIN, module, rest)


def _read_alta(words: Sequence[_Word]) -> Action:
    entity, rest = _read_scope(ProviderName.ALTA, words)
    return _removal(ProviderName.ALTA, entity, rest)


def _read_fernand(words: Sequence[_Word]) -> Action:
    if words and not words[0].quoted and is_fernand_scope_word(words[0].text):
        words = words[1:]
    return _removal(ProviderName.FERNAND, None, words)


def _read_constant_contact(words: Sequence[_Word]) -> Action:
    provider = ProviderName.CONSTANT_CONTACT
    if words and is_delete_tags(words[0].text):
        tags = _read_tags(provider, words[1:])
        return Action(provider=provider, operation=Operation.DELETE_TAGS, tags=tags)
    scope, rest = _read_scope(provider, words)
    return _removal(provider, scope, rest)


_READERS: Mapping[ProviderName, Callable[[Sequence[_Word]], Action]] = {
    ProviderName.ZOHO: _read_zoho,
    ProviderName.BIGIN: _read_bigin,
    ProviderName.ALTA: _read_alta,
    ProviderName.FERNAND: _read_fernand,
    ProviderName.CONSTANT_CONTACT: _read_constant_contact,
}


def _removal(provider: ProviderName, scope: str | None, words: Sequence[_Word]) -> Action:
    targets, rest = _read_targets(provider, scope, words)
    tags = _read_tags(provider, rest, after_ids=words[: len(words) - len(rest)])
    return Action(provider=provider, scope=scope, targets=targets, tags=tags)


# --------------------------------------------------------------------------- scope


# What the scope word is called per provider, and what it may be.
_SCOPE_NOUNS: Mapping[ProviderName, tuple[str, str]] = {
    ProviderName.ZOHO: ("module", "e.g. `Leads`"),
    ProviderName.BIGIN: ("module", "e.g. `Contacts`"),
    ProviderName.ALTA: ("entity type", "emailThread or linkedinConversation"),
    ProviderName.CONSTANT_CONTACT: ("scope", "`contacts` or `delete-tags`"),
}


def _read_scope(provider: ProviderName, words: Sequence[_Word]) -> tuple[str, Sequence[_Word]]:
    """The module or entity type, from one word or two (``Price Books``), and the words after it."""
    noun, choices = _SCOPE_NOUNS[provider]
    name = DISPLAY_NAMES[provider]
    if not words:
        raise _error(f"missing the {name} {noun} ({choices})", provider)
    scope = resolve_scope(provider, words[0].text)
    if scope is not None:
        return scope, words[1:]
    if len(words) > 1:
        scope = resolve_scope(provider, f"{words[0].text} {words[1].text}")
        if scope is not None:
            return scope, words[2:]
    word = words[0].text
    if looks_like_target(provider, word):
        raise _error(f"missing the {name} {noun} ({choices}) before `{_show(word)}`", provider)
    raise _error(
        f"unknown {name} {noun} `{_show(word)}`",
        provider,
        suggest_scope(provider, word),
    )


def _read_zoho_module(words: Sequence[_Word]) -> tuple[str, Sequence[_Word]]:
    """Zoho's module, which a record link in first place may stand in for."""
    if words and not words[0].quoted:
        link = recognise_record_url(words[0].text.split(",", 1)[0])
        if link is not None and link.provider is ProviderName.ZOHO and link.module is not None:
            return _module_of_link(link.module), words
    return _read_scope(ProviderName.ZOHO, words)


def _module_of_link(segment: str) -> str:
    module = resolve_zoho_link_module(segment)
    if module is None:
        if segment.lower() == "activities":
            detail = "an Activities link; name the module (Tasks, Events or Calls) before it"
        else:
            detail = f"a link to module `{_show(segment)}`, which untag does not handle"
        raise _error(f"that is {detail}", ProviderName.ZOHO)
    return module


# --------------------------------------------------------------------------- ids


def _read_targets(
    provider: ProviderName, scope: str | None, words: Sequence[_Word]
) -> tuple[tuple[str, ...], Sequence[_Word]]:
    """Record ids (or links) up to the first word that is not one, deduplicated in order.

    ``1,2,3`` is one word; ``1, 2, 3`` also works because a word ending in a
    comma continues the list.  The first id is required, so whatever stands
    there is read as an id and reported if it is not one.
    """
    targets: dict[str, None] = {}  # an ordered set
    continuing = True
    consumed = 0
    for word in words:
        if not continuing and (word.quoted or not looks_like_target(provider, word.text)):
            break
        for piece in word.text.split(","):
            if piece.strip():
                targets[_read_target(provider, scope, piece.strip())] = None
        continuing = word.text.endswith(",") or not targets
        consumed += 1
    if not targets:
        what = "conversation id" if provider is ProviderName.FERNAND else "record id"
        raise _error(f"missing the {what}: expected {EXPECTED_ID[provider]}", provider)
    return tuple(targets), words[consumed:]


def _read_target(provider: ProviderName, scope: str | None, piece: str) -> str:
    """One id, in its canonical spelling, from an id or a record link."""
    record_id = _id_from_link(provider, scope, piece) if looks_like_link(piece) else piece
    problem = id_error(provider, record_id)
    if problem is not None:
        raise _error(
            f"`{_show(record_id)}` is not a valid {DISPLAY_NAMES[provider]} id: {problem}",
            provider,
        )
    return canonical_id(provider, record_id)


def _a(name: str) -> str:
    return f"an {name}" if name[:1] in "AEIOU" else f"a {name}"


def _id_from_link(provider: ProviderName, scope: str | None, url: str) -> str:
    link = recognise_record_url(url)
    name = DISPLAY_NAMES[provider]
    if link is None:
        raise _error(f"`{_show(url)}` is not a {name} record link untag understands", provider)
    if link.provider is not provider:
        other = DISPLAY_NAMES[link.provider]
        raise _error(f"`{_show(url)}` is {_a(other)} link, not {_a(name)} one", provider)
    if link.module is not None and scope is not None:
        _check_link_module(scope, link)
    return link.record_id


def _check_link_module(scope: str, link: RecordLink) -> None:
    """Refuse a Zoho link to another module than the command's: the id would not be found."""
    segment = link.module or ""
    if segment.lower() == "activities" and scope in ZOHO_ACTIVITY_MODULES:
        return  # Zoho links every activity through one tab
    module = resolve_zoho_link_module(segment)
    if module != scope:
        raise _error(
            f"the link to record `{_show(link.record_id)}` is in {_show(module or segment)}, "
            f"but the command says {scope}",
            ProviderName.ZOHO,
            module,
        )


# --------------------------------------------------------------------------- tags


def _read_tags(
    provider: ProviderName, words: Sequence[_Word], after_ids: Sequence[_Word] = ()
) -> tuple[str, ...]:
    """Tags, trimmed and checked against the provider's rules, deduplicated case-insensitively."""
    tags: dict[str, str] = {}  # casefolded → first spelling, in order
    for word in words:
        tag = _tag_of(provider, word)
        if tag is not None:
            tags.setdefault(tag.casefold(), tag)
    if not tags:
        hint = ""
        # "fernand 123 2024": the number was taken for a second id.
        if len(after_ids) > 1 and not after_ids[-2].text.endswith(","):
            hint = ' (a tag that looks like an id must be quoted: "2024")'
        raise _error(f"no tags given: list the tags to remove{hint}", provider)
    return tuple(tags.values())


def _tag_of(provider: ProviderName, word: _Word) -> str | None:
    """The tag a word names, or ``None`` for a bare comma between tags."""
    if word.quoted:
        tag = word.text.strip()
    else:
        # "Prime, Hot" lists two tags; a comma inside a word is kept (and quoting
        # keeps a trailing one), so tag names are never split blindly.
        tag = word.text.rstrip(",")
        if not tag:
            return None
    problem = tag_error(provider, tag)
    if problem is not None:
        shown = f"`{_show(tag)}`" if tag else '""'
        raise _error(f"tag {shown} {problem}", provider)
    return tag


# --------------------------------------------------------------------------- public


def parse(text: str) -> Action | HelpRequest | ParseError:
    """Read one command (the text after ``/untag``) into what it asks for.

    Returns an :class:`Action`, a :class:`HelpRequest` (``help``, ``help
    <provider>``, or empty text), or a :class:`ParseError` carrying a one-line
    message, the usage line and perhaps a suggestion.  Never raises.
    """
    try:
        return _read(text)
    except ParseError as problem:
        return problem
    except Exception:
        # The contract is "never raises": a bug here must not become a
        # traceback in Slack.  It is logged (without the text) so it gets fixed.
        log.exception("parser failed unexpectedly")
        return _error(_UNEXPECTED, None)


def _quote(tag: str) -> str:
    for opener, closers in QUOTES.items():
        if not re.search(f"[{re.escape(closers)}]\\s", tag):
            return f"{opener}{tag}{closers[0]}"
    raise ValueError(f"tag {tag!r} cannot be written in any quotes")


def _needs_quotes(provider: ProviderName, tag: str) -> bool:
    return (
        re.search(r"[\s,]", tag) is not None
        or tag[:1] in QUOTES
        or looks_like_target(provider, tag)
    )


def _write_tag(provider: ProviderName, tag: str) -> str:
    return _quote(tag) if _needs_quotes(provider, tag) else tag


def format_command(action: Action) -> str:
    """The canonical command text for ``action``, which :func:`parse` reads back as an equal action.

    The text is as Slack delivers it: ``&``, ``<`` and ``>`` are escaped where
    they would otherwise be read differently.  Raises ``ValueError`` for an
    action that no command can express (one :func:`parse` would never produce,
    such as an unknown module or an invalid id).
    """
    provider = action.provider
    words = [str(provider)]
    if action.operation is Operation.DELETE_TAGS:
        words.append("delete-tags")
    else:
        if action.scope is not None:
            words.append(action.scope)
        words.append(",".join(action.targets))
    words.extend(_write_tag(provider, tag) for tag in action.tags)
    text = _slack_escape(" ".join(words))
    if parse(text) != action:
        raise ValueError(f"no command expresses this action: {action.describe()}")
    return text


def replace_tags(action: Action, text: str) -> Action | ParseError:
    """``action`` with the tags typed in ``text`` (quoted as in a command), checked as a command.

    Used where a form lets the user edit only the tags: the result is parsed
    exactly like a full command, so every tag rule applies.
    """
    prefix = format_command(action.model_copy(update={"tags": ("x",)})).removesuffix("x")
    result = parse(prefix + text)
    if isinstance(result, Action) and result.targets != action.targets:
        return ParseError(
            "a tag that looks like a record id must be quoted",
            usage=USAGE[action.provider],
        )
    if isinstance(result, HelpRequest):
        return ParseError("give at least one tag", usage=USAGE[action.provider])
    return result
