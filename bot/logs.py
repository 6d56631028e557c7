"""Logging set-up: one redaction filter, installed before anything logs.

Libraries leak: bolt logs a whole request body on a bad signature, slack_sdk
at DEBUG logs parameters, httpx at INFO logs query strings.  So every handler
on the root logger gets :class:`RedactingFilter`, which masks the configured
secret values themselves and the shapes secrets take (Slack tokens, bearer and
Zoho tokens, OAuth form fields, response URLs).
"""

from __future__ import annotations

import logging
import queue
import re
from collections.abc import Iterable
from logging.handlers import QueueHandler, QueueListener

__all__ = [
    "BackgroundHandler",
    "RedactingFilter",
    "configure_logging",
    "protect",
    "redact",
    "write_in_background",
]

MASK = "[redacted]"

_PATTERNS = [
    re.compile(r"xox[abposr]-[A-Za-z0-9-]+"),
    re.compile(r"xapp-[A-Za-z0-9-]+"),
    re.compile(r"(?i)(bearer|zoho-oauthtoken)\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"https://hooks\.slack\.com/\S+"),
    re.compile(
        r"(?i)\b(client_secret|refresh_token|access_token|trigger_id|api_key|x-api-key|token)"
        r"(\"?\s*[=:]\s*\"?)[^\s&\"',}]+"
    ),
]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask known secret values and secret-shaped substrings in ``text``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(_mask_match, text)
    return text


def _mask_match(match: re.Match[str]) -> str:
    if match.re.groups >= 2 and match.group(2) is not None:  # key=value: keep the key
        return f"{match.group(1)}{match.group(2)}{MASK}"
    if match.re.groups == 1:  # scheme token: keep the scheme
        return f"{match.group(1)} {MASK}"
    return MASK


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (arguments merged in) with secrets masked."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        cleaned = redact(message, self.secrets)
        record.msg, record.args = cleaned, None
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        return True


_installed: list[RedactingFilter] = []


def protect(secrets: Iterable[str]) -> None:
    """Teach every installed redaction filter these secret values (known once settings load)."""
    values = [s for s in secrets if s]
    for redactor in _installed:
        redactor.secrets.extend(v for v in values if v not in redactor.secrets)


def configure_logging(level: int = logging.INFO, secrets: Iterable[str] = ()) -> RedactingFilter:
    """Log to stderr through the redaction filter; quiet the chatty HTTP loggers."""
    root = logging.getLogger()
    redactor = RedactingFilter(secrets)
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    for existing in root.handlers:
        existing.addFilter(redactor)
    _installed.append(redactor)
    root.setLevel(level)
    _skip_unused_record_fields()
    for name in ("httpx", "httpcore", "slack_sdk", "slack_bolt.middleware"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    return redactor


def _skip_unused_record_fields() -> None:
    """Stop gathering what no log line here shows: the caller's frame and thread.

    Every request logs a line, so this is per-request work (a stack walk among it).  These are
    the switches the Logging HOWTO gives for it ("Optimization"); a handler a deployment adds
    with ``%(filename)s`` or ``%(thread)d`` in its format would see placeholders instead.
    The process id stays: gunicorn's own lines show it.
    """
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False


class BackgroundHandler(QueueHandler):
    """Hands each record, redacted and formatted, to a thread that writes it with ``target``.

    Under load a server thread would otherwise hold the handler's lock across a write to
    stderr, a system call that lets go of the GIL and then waits to get it back while every
    other thread that logs queues up behind the lock: measured under ``bench.ack``, the two
    lines per command cost about 1 ms of the worker's CPU per command, a third of it.  Here a
    thread only queues the record; the writer thread waits for the GIL alone, and a stderr that
    blocks (a slow log collector) no longer holds up Slack's answers either.  What is queued is
    written at exit (``logging.shutdown`` closes the handler).
    """

    def __init__(self, target: logging.Handler) -> None:
        self.records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        super().__init__(self.records)
        self.target = target
        self._writer: QueueListener | None = QueueListener(
            self.records, target, respect_handler_level=True
        )
        self._writer.start()

    def close(self) -> None:
        writer, self._writer = self._writer, None  # logging.shutdown holds our lock here
        if writer is not None:
            writer.stop()  # writes what is queued, then ends the thread
            self.target.close()
        super().close()


def write_in_background() -> None:
    """Root's stream handlers write from a thread of their own (:class:`BackgroundHandler`).

    For ``untag serve``'s workers and ``untag socket``, where many threads log; called in
    the process that will log, after any fork, since a forked child has none of the
    parent's threads.  The redaction filters move to the new handler: records are redacted
    before they are queued.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler) is not logging.StreamHandler:
            continue  # pytest's capture, a file a deployment added, one already in background
        background = BackgroundHandler(handler)
        for kept in list(handler.filters):
            background.addFilter(kept)
            handler.removeFilter(kept)
        root.addHandler(background)
        root.removeHandler(handler)
