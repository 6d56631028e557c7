"""Local simulators of the five provider HTTP APIs untag talks to, served over HTTP on loopback.

Used by the demo console, the end-to-end tests and the benchmarks. Standard library only; nothing
here imports the rest of untag. Facts about the real APIs live in ``docs/providers.md``.

Usage::

    from sandbox import Sandbox, Credentials, Limits, Fault

    with Sandbox(port=0, seed_demo=True).start() as sb:
        os.environ.update(sb.env())          # point untag at it with the demo credentials
        ...
        sb.requests                          # what untag sent, exactly as received

URL layout (one server, one port; every prefix below is relative to ``sb.url``):

=======================================  =========================  ================================
Prefix                                   Simulates                  Recorded ``provider`` / ``path``
=======================================  =========================  ================================
``/alta/v1/...``                         Alta (api.altahq.com/v1)   ``alta``, path after ``/alta``
``/fernand/...``                         Fernand                    ``fernand``, after ``/fernand``
``/zoho-accounts/oauth/v2/token``        Zoho OAuth                 ``zoho-accounts``
``/zoho/crm/v7/...``                     Zoho CRM (api_domain)      ``zoho``, path after ``/zoho``
``/zoho/bigin/v2/...``                   Zoho Bigin (api_domain)    ``bigin``, path after ``/zoho``
``/cc-auth/oauth2/default/v1/token``     Constant Contact OAuth     ``constantcontact-token``
``/cc/v3/...``                           Constant Contact v3        ``constantcontact``, after /cc
``/_sandbox/...``                        control API (not logged)   —
=======================================  =========================  ================================

Endpoints per provider:

* Alta: ``POST /v1/tags/unassign``, ``POST /v1/tags/assign``.
* Fernand: ``GET /conversations/{id}``, ``GET /tags``,
  ``DELETE /conversations/{id}/tags/{name|slug}``, ``POST /conversations/{id}/tags``.
* Zoho CRM / Bigin: ``GET /{module}?ids=&fields=``, ``GET /{module}/{id}``,
  ``POST /{module}[/{id}]/actions/remove_tags`` (CRM: JSON body; Bigin: ``ids``, ``tag_names``),
  ``POST /{module}[/{id}]/actions/add_tags``, ``GET /settings/tags?module=``.
* Constant Contact: ``GET /v3/contacts/{id}?include=taggings``, ``GET /v3/contacts?tags=``,
  ``GET /v3/contact_tags``, ``POST /v3/activities/contacts_taggings_remove``,
  ``POST /v3/activities/contacts_taggings_add``, ``POST /v3/activities/contacts_tags_delete``,
  ``GET /v3/activities/{id}``.

Control API (no auth, never faulted): ``GET /_sandbox/health``, ``GET|DELETE /_sandbox/requests``
(``?since=`` a position in the log, ``?provider=``), ``GET /_sandbox/requests/summary`` (counts by
status and method, same parameters), ``GET|POST|DELETE /_sandbox/faults``,
``POST /_sandbox/expire-tokens``, ``GET /_sandbox/state``, ``POST /_sandbox/seed``,
``GET|POST /_sandbox/limits``, ``GET /_sandbox/token-requests``, ``GET|DELETE /_sandbox/in-flight``
(Zoho requests in flight and their peak), ``GET|POST /_sandbox/cc-activities`` (how fast
activities progress), ``GET /_sandbox/env``, ``POST /_sandbox/reset``.

Demo data: see ``sandbox.demo``.
"""

from sandbox.core import Clock, Credentials, Limits, ManualClock
from sandbox.faults import Fault
from sandbox.recording import RecordedRequest
from sandbox.server import Sandbox
from sandbox.state import SandboxState

__all__ = [
    "Clock",
    "Credentials",
    "Fault",
    "Limits",
    "ManualClock",
    "RecordedRequest",
    "Sandbox",
    "SandboxState",
]
