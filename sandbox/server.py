"""The HTTP server: one port, one prefix per provider, request log, faults and the control API."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import cast

from sandbox.alta import AltaApi, AltaStore
from sandbox.constantcontact import CcApi, CcStore, CcTokenApi
from sandbox.control import handle_control
from sandbox.core import (
    Clock,
    Context,
    Credentials,
    IdSource,
    Limits,
    ProviderApi,
    Request,
    Response,
    json_response,
)
from sandbox.demo import seed_demo as load_demo
from sandbox.faults import Fault, FaultBook
from sandbox.fernand import FernandApi, FernandStore
from sandbox.ratelimit import InFlight
from sandbox.recording import LogSummary, RecordedRequest, RequestLog
from sandbox.serving import QuietHandler, TrackingServer
from sandbox.state import SandboxState
from sandbox.tokens import TokenRegistry
from sandbox.zoho import BIGIN_MODULES, CRM_MODULES, ZohoAccountsApi, ZohoApi, ZohoStore

# Longest prefix first: "/zoho-accounts" must win over "/zoho", "/cc-auth" over "/cc".
PREFIXES = (
    ("/zoho-accounts", "zoho-accounts"),
    ("/cc-auth", "constantcontact-token"),
    ("/alta", "alta"),
    ("/fernand", "fernand"),
    ("/zoho", "zoho"),
    ("/cc", "constantcontact"),
)
CONTROL_PREFIX = "/_sandbox"


def route(raw_path: str) -> tuple[str, str] | None:
    """The provider and provider-relative path for a received path, or None."""
    for prefix, provider in PREFIXES:
        if raw_path == prefix or raw_path.startswith(prefix + "/"):
            rest = raw_path[len(prefix) :]
            if provider == "zoho" and (rest == "/bigin" or rest.startswith("/bigin/")):
                return "bigin", rest
            return provider, rest
    return None


@dataclass(frozen=True)
class Incoming:
    """A request as read off the wire, before routing."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes
    arrived: float


class Sandbox:
    """Local simulators of the five provider APIs on one loopback port.

    ``start()`` serves in a daemon thread and returns ``self``; ``serve_forever()`` serves in the
    calling thread. ``seed`` makes fault probabilities and generated ids reproducible;
    ``cc_items_per_second`` is how fast Constant Contact activities progress (0 or None: at once);
    ``clock`` may be a ``ManualClock`` to cross rate-limit windows and token expiry without
    sleeping.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: Credentials | None = None,
        seed_demo: bool = True,
        *,
        limits: Limits | None = None,
        seed: int = 0,
        zoho_token_ttl: float = 3600.0,
        cc_token_ttl: float = 86400.0,
        cc_items_per_second: float | None = 200.0,
        clock: Clock | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.credentials = credentials or Credentials()
        self.limits = limits or Limits()
        self.clock = clock or Clock()
        self.tokens = TokenRegistry(self.clock)
        self._cc_token_ttl = cc_token_ttl
        self._ctx = Context(
            self.clock, self.credentials, self.limits, IdSource(seed), lambda: self.url
        )
        self.state = SandboxState(
            alta=AltaStore(),
            fernand=FernandStore(),
            zoho=ZohoStore("crm", CRM_MODULES, 554023000003000000),
            bigin=ZohoStore("bigin", BIGIN_MODULES, 2445013000000600000),
            constantcontact=CcStore(self.clock, self._ctx.ids, cc_items_per_second),
        )
        self._build_apis(zoho_token_ttl)
        self._log = RequestLog()
        self._faults = FaultBook(seed)
        self._errors: list[str] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.tokens.add("constantcontact", self.credentials.cc_access_token, cc_token_ttl)
        if seed_demo:
            load_demo(self.state)

    def _build_apis(self, zoho_token_ttl: float) -> None:
        ctx, state = self._ctx, self.state
        in_flight = InFlight()
        self._in_flight = in_flight
        self._alta = AltaApi(state.alta, ctx)
        self._fernand = FernandApi(state.fernand, ctx)
        self._zoho_accounts = ZohoAccountsApi(ctx, self.tokens, zoho_token_ttl)
        self._cc = CcApi(state.constantcontact, ctx, self.tokens)
        self._cc_token = CcTokenApi(ctx, self.tokens, self._cc_token_ttl)
        self._apis: dict[str, ProviderApi] = {
            "alta": self._alta,
            "fernand": self._fernand,
            "zoho": ZohoApi(state.zoho, ctx, self.tokens, in_flight, bigin=False),
            "bigin": ZohoApi(state.bigin, ctx, self.tokens, in_flight, bigin=True),
            "zoho-accounts": self._zoho_accounts,
            "constantcontact": self._cc,
            "constantcontact-token": self._cc_token,
        }

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Bind, listen, and serve in a daemon thread. Returns ``self``."""
        if self._server is None:
            server = self._bind()
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.02},
                name=f"sandbox-{server.server_port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def serve_forever(self) -> None:
        """Serve until ``stop()`` is called from another thread, or until Ctrl-C."""
        self.start()
        try:
            while (thread := self._thread) is not None and thread.is_alive():
                thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def _bind(self) -> _Server:
        self._server = _Server((self.host, self.port), self)
        return self._server

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server is bound and serving."""
        return self._server is not None

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def base_urls(self) -> dict[str, str]:
        """Base URL of each provider API, as a client would configure it."""
        url = self.url
        return {
            "alta": f"{url}/alta/v1",
            "fernand": f"{url}/fernand",
            "zoho_api_domain": f"{url}/zoho",
            "zoho_accounts": f"{url}/zoho-accounts",
            "constantcontact": f"{url}/cc/v3",
            "constantcontact_token": f"{url}/cc-auth/oauth2/default/v1/token",
        }

    def env(self) -> dict[str, str]:
        """Environment variables pointing untag at this sandbox with the sandbox's credentials."""
        urls, c = self.base_urls(), self.credentials
        env = {
            "ALTA_API_TOKEN": c.alta_token,
            "ALTA_BASE_URL": urls["alta"],
            "FERNAND_API_KEY": c.fernand_key,
            "FERNAND_BASE_URL": urls["fernand"],
            "ZOHO_CLIENT_ID": c.zoho_client_id,
            "ZOHO_CLIENT_SECRET": c.zoho_client_secret,
            "ZOHO_REFRESH_TOKEN": c.zoho_refresh_token,
            "ZOHO_ACCOUNTS_URL": urls["zoho_accounts"],
            "ZOHO_API_DOMAIN": urls["zoho_api_domain"],
            "CONSTANT_CONTACT_ACCESS_TOKEN": c.cc_access_token,
            # After a rotation only the newest refresh token works, so export that one.
            "CONSTANT_CONTACT_REFRESH_TOKEN": self._cc_token.refresh_token,
            "CONSTANT_CONTACT_CLIENT_ID": c.cc_client_id,
            "CONSTANT_CONTACT_CLIENT_SECRET": c.cc_client_secret,
            "CONSTANT_CONTACT_BASE_URL": urls["constantcontact"],
            "CONSTANT_CONTACT_TOKEN_URL": urls["constantcontact_token"],
        }
        if c.alta_account_id is not None:
            env["ALTA_ACCOUNT_ID"] = c.alta_account_id
        return env

    # -- inspection and control ------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request that reached a provider route, in arrival order (a snapshot)."""
        return self._log.snapshot()

    def requests_since(self, since: int) -> list[RecordedRequest]:
        """The requests from position ``since`` of the log on (``len(requests)`` is a mark)."""
        return self._log.snapshot(since)

    def request_summary(self, since: int = 0, provider: str | None = None) -> LogSummary:
        """Counts of the requests from position ``since`` on, by status and method."""
        return self._log.summary(since, provider)

    def clear_requests(self) -> None:
        """Empty the request log."""
        self._log.clear()

    def add_fault(self, fault: Fault) -> None:
        """Activate a fault (see ``Fault``)."""
        self._faults.add(fault)

    def clear_faults(self) -> None:
        """Deactivate every fault."""
        self._faults.clear()

    @property
    def faults(self) -> list[tuple[Fault, int | None]]:
        """Active faults with how many applications each has left (None = unlimited)."""
        return self._faults.active()

    def expire_tokens(self) -> None:
        """Invalidate every Zoho and Constant Contact access token, the pre-issued one too."""
        self.tokens.expire_all()

    def token_requests(self, provider: str) -> int:
        """Token grants made so far by ``"zoho"`` or ``"constantcontact"``."""
        if provider not in ("zoho", "constantcontact"):
            raise ValueError("provider must be 'zoho' or 'constantcontact'")
        return self.tokens.grants(provider)

    def in_flight(self, api: str) -> int:
        """Zoho requests being served right now for ``"zoho"`` (CRM) or ``"bigin"``."""
        return self._in_flight.count("crm" if api == "zoho" else api)

    def peak_in_flight(self, api: str) -> int:
        """The most Zoho requests ``api`` had in flight at once since ``reset_in_flight_peaks``."""
        return self._in_flight.peak("crm" if api == "zoho" else api)

    def reset_in_flight_peaks(self) -> None:
        """Measure in-flight peaks from now on (from the requests being served now)."""
        self._in_flight.reset_peaks()

    @property
    def errors(self) -> list[str]:
        """Tracebacks of handler exceptions that were answered with a 500."""
        return list(self._errors)

    def reset(self, seed_demo: bool = True) -> None:
        """Empty every store (then reload the demo data), the request log, faults, rate windows
        and in-flight peaks.

        Issued tokens stay valid so connected clients keep working.
        """
        self.state.clear()
        if seed_demo:
            load_demo(self.state)
        self._log.clear()
        self._faults.clear()
        self._in_flight.reset_peaks()
        self._alta.window.clear()
        self._fernand.window.clear()
        self._zoho_accounts.window.clear()
        self._cc.per_second.clear()
        self._cc.per_day.clear()

    # -- request handling ------------------------------------------------------------------------

    def serve(self, incoming: Incoming) -> Response | None:
        """Answer one request; None means drop the connection without a response."""
        try:
            return self._serve(incoming)
        except Exception:
            self._errors.append(traceback.format_exc())
            return json_response(500, {"error": "internal_error"})

    def _serve(self, incoming: Incoming) -> Response | None:
        raw_path, _, query = incoming.target.partition("?")
        if raw_path == CONTROL_PREFIX or raw_path.startswith(CONTROL_PREFIX + "/"):
            return handle_control(self, incoming.method, raw_path, query, incoming.body)
        routed = route(raw_path)
        if routed is None:
            return json_response(
                404, {"error": "not_found", "message": f"no simulated provider serves {raw_path}"}
            )
        provider, path = routed
        req = Request(
            incoming.method,
            raw_path,
            path,
            query,
            incoming.headers,
            incoming.body,
            incoming.arrived,
        )
        entry = self._log.record(provider, req, self.clock.time())
        api = self._apis[provider]
        response = self._guarded(api, provider, req)
        entry.status = None if response is None else response.status
        return response

    def _guarded(self, api: ProviderApi, provider: str, req: Request) -> Response | None:
        try:
            return self._respond(api, provider, req)
        except Exception:
            # A crash must look like the provider's 500, never like a dropped connection.
            self._errors.append(traceback.format_exc())
            try:
                return api.error(500, req)
            except Exception:
                return json_response(500, {"error": "internal_error"})

    def _respond(self, api: ProviderApi, provider: str, req: Request) -> Response | None:
        fault = self._faults.pick(provider, req.method, req.raw_path)
        if fault is not None and fault.kind == "drop":
            return None
        if fault is not None and fault.kind == "status":
            return api.error(fault.status, req)
        if fault is not None and fault.kind == "expire_token":
            return api.expired(req)
        with api.admit(req) as refusal:
            if refusal is not None:
                return refusal
            if fault is not None:
                time.sleep(fault.seconds)
            return api.handle(req)


class _Server(TrackingServer):
    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        super().__init__(address, _Handler)


class _Handler(QuietHandler):
    server_version = "untag-sandbox/1.0"

    def _sandbox_server(self) -> _Server:
        return cast(_Server, self.server)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        sandbox = self._sandbox_server().sandbox
        arrived = sandbox.clock.monotonic()
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._write(json_response(400, {"error": "unreadable request body"}))
            return
        incoming = Incoming(self.command, self.path, self._headers(), body, arrived)
        response = sandbox.serve(incoming)
        if response is None:
            self.close_connection = True
            return
        self._write(response)

    def _headers(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return merged

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _write(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            if response.status != 204:
                self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if response.body and response.status != 204:
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
