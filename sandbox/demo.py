"""Deterministic demo data loaded by ``Sandbox(seed_demo=True)``.

Small on purpose: enough to show every provider's remove, undo, partial failure and blast radius.

**Zoho CRM** (tags are per module; Leads tag ids match Zoho's documentation samples)

=========  ==================  ==========================================  =======
Module     Record id           Tags                                        Note
=========  ==================  ==========================================  =======
Leads      554023000000793002  Prime, Attend First, Nurture
Leads      554023000000792001  Prime, Nurturing Lead, web
Leads      554023000000791003  Attend First
Leads      554023000000799009  Prime                                       locked
Contacts   554023000000801001  Prime, VIP
Deals      554023000000810001  Prime, Q3 Pipeline
Deals      554023000000810002  Renewal
=========  ==================  ==========================================  =======

Removing ``Prime`` and ``Attend First`` from the first two Leads reproduces Zoho's sample response
(remaining ``Nurture`` / ``Nurturing Lead, web``); adding the locked lead to the batch gives HTTP
207 with ``RECORD_LOCKED`` for it.

**Zoho Bigin**: Contacts 2445013000000402006 (From Email, In Progress, Hot Deal) and
2445013000000141005 (From Webforms, Negotiation); Accounts (UI "Companies") 2445013000000500001
(Partner, Hot Deal).

**Fernand**: catalogue ``VIP Customer`` (id 1, slug ``vip-customer``), ``billing`` (5, ``billing``),
``Needs Follow-up`` (7, ``needs-follow-up``), ``urgent`` (12, ``urgent``). Conversations 12345
"Question about billing" (VIP Customer, billing, urgent), 12346 "Invoice copy request" (billing),
12347 "Demo follow-up" (Needs Follow-up).

**Alta**: emailThread 3f2b9c1e-5a7d-4e21-9b6a-0c8d2e4f6a10 (Hot Lead, Follow Up);
linkedinConversation 7d1e4c2a-9b3f-4a56-8e7d-1f2a3b4c5d6e (Warm).

**Constant Contact**: tags

- ``Newsletter`` 5bbf758c-d8ce-11e9-8d3a-fa163e56c9b0
- ``VIP`` c6915956-fde3-4081-977e-c3b8d1b068a7
- ``Spring Promo 2026`` 00e4429c-3beb-11eb-9f34-fa163e56c9b9
- ``Do Not Mail`` 04fe9a97-a579-43c5-bb1a-58ed29bf0a6a (on nobody)

and contacts

- 1618ae62-4752-11e9-9c8a-fa163e6b01c1 Debora Lang (VIP, Newsletter)
- 2a9d3c44-4752-11e9-9c8a-fa163e6b01c1 Marcus Webb (Newsletter, Spring Promo 2026)
- 3b1e5d66-4752-11e9-9c8a-fa163e6b01c1 Priya Raman (Spring Promo 2026)
- 4c2f7e00-4752-11e9-9c8a-fa163e6b01c1 … 4c2f7e13-4752-11e9-9c8a-fa163e6b01c1: 20 more contacts
  carrying ``Spring Promo 2026``, so deleting that tag account-wide touches 22 contacts.
"""

from __future__ import annotations

from sandbox.state import SandboxState

ZOHO_LEAD_A = "554023000000793002"
ZOHO_LEAD_B = "554023000000792001"
ZOHO_LEAD_C = "554023000000791003"
ZOHO_LOCKED_LEAD = "554023000000799009"
ZOHO_CONTACT = "554023000000801001"
BIGIN_CONTACT_A = "2445013000000402006"
BIGIN_CONTACT_B = "2445013000000141005"
BIGIN_COMPANY = "2445013000000500001"
FERNAND_CONVERSATIONS = (12345, 12346, 12347)
ALTA_EMAIL_THREAD = "3f2b9c1e-5a7d-4e21-9b6a-0c8d2e4f6a10"
ALTA_LINKEDIN = "7d1e4c2a-9b3f-4a56-8e7d-1f2a3b4c5d6e"
CC_TAGS = {
    "Newsletter": "5bbf758c-d8ce-11e9-8d3a-fa163e56c9b0",
    "VIP": "c6915956-fde3-4081-977e-c3b8d1b068a7",
    "Spring Promo 2026": "00e4429c-3beb-11eb-9f34-fa163e56c9b9",
    "Do Not Mail": "04fe9a97-a579-43c5-bb1a-58ed29bf0a6a",
}
CC_CONTACT_A = "1618ae62-4752-11e9-9c8a-fa163e6b01c1"
CC_CONTACT_B = "2a9d3c44-4752-11e9-9c8a-fa163e6b01c1"
CC_CONTACT_C = "3b1e5d66-4752-11e9-9c8a-fa163e6b01c1"
CC_PROMO_CONTACTS = tuple(f"{0x4C2F7E00 + i:08x}-4752-11e9-9c8a-fa163e6b01c1" for i in range(20))
_CREATED = "2025-11-03T09:15:00Z"
_FIRST_NAMES = (
    "Aiko",
    "Bruno",
    "Chloe",
    "Dmitri",
    "Esme",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Kira",
    "Luca",
    "Maya",
    "Nils",
    "Olga",
    "Pavel",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
)


def seed_demo(state: SandboxState) -> None:
    """Load the demo data described in this module's docstring."""
    _seed_zoho(state)
    _seed_bigin(state)
    _seed_fernand(state)
    _seed_alta(state)
    _seed_constantcontact(state)


def _seed_zoho(state: SandboxState) -> None:
    crm = state.zoho
    for name, tag_id, color in (
        ("Prime", "554023000002555001", "#F17574"),
        ("Attend First", "554023000002555007", "#E7A826"),
        ("Nurture", "554023000002555018", "#57B1FD"),
        ("Nurturing Lead", "554023000002172011", "#57B1FD"),
        ("web", "554023000001180007", None),
    ):
        crm.add_tag("Leads", name, tag_id=tag_id, color_code=color)
    leads = (
        (ZOHO_LEAD_A, ["Prime", "Attend First", "Nurture"], "Kathy", "Tanaka", "Zylker"),
        (ZOHO_LEAD_B, ["Prime", "Nurturing Lead", "web"], "Omar", "Haddad", "Blue Fin"),
        (ZOHO_LEAD_C, ["Attend First"], "Lena", "Berg", "Nordvik"),
        (ZOHO_LOCKED_LEAD, ["Prime"], "Raj", "Patel", "Sunrise Labs"),
    )
    for record_id, tags, first, last, company in leads:
        fields = {
            "First_Name": first,
            "Last_Name": last,
            "Company": company,
            "Email": f"{first.lower()}@{company.lower().replace(' ', '')}.example",
        }
        crm.add_record("Leads", record_id, tags, fields=fields)
    crm.lock("Leads", ZOHO_LOCKED_LEAD)
    crm.add_tag("Contacts", "VIP", color_code="#D297EE")
    crm.add_record(
        "Contacts",
        ZOHO_CONTACT,
        ["Prime", "VIP"],
        fields={"First_Name": "Mia", "Last_Name": "Jensen"},
    )
    crm.add_record(
        "Deals",
        "554023000000810001",
        ["Prime", "Q3 Pipeline"],
        fields={"Deal_Name": "Zylker renewal 2026"},
    )
    crm.add_record(
        "Deals", "554023000000810002", ["Renewal"], fields={"Deal_Name": "Blue Fin upsell"}
    )


def _seed_bigin(state: SandboxState) -> None:
    bigin = state.bigin
    bigin.add_record(
        "Contacts",
        BIGIN_CONTACT_A,
        ["From Email", "In Progress", "Hot Deal"],
        fields={"First_Name": "Sofia", "Last_Name": "Marin"},
    )
    bigin.add_record(
        "Contacts",
        BIGIN_CONTACT_B,
        ["From Webforms", "Negotiation"],
        fields={"First_Name": "Theo", "Last_Name": "Okafor"},
    )
    bigin.add_record(
        "Accounts",
        BIGIN_COMPANY,
        ["Partner", "Hot Deal"],
        fields={"Account_Name": "Kestrel Outfitters"},
    )


def _seed_fernand(state: SandboxState) -> None:
    fernand = state.fernand
    fernand.add_tag("VIP Customer", tag_id=1, color="#8E4EC6")
    fernand.add_tag("billing", tag_id=5, color="#3E63DD")
    fernand.add_tag("Needs Follow-up", tag_id=7, color="#F76B15")
    fernand.add_tag("urgent", tag_id=12, color="#E5484D")
    fernand.add_conversation(
        12345,
        ["VIP Customer", "billing", "urgent"],
        subject="Question about billing",
        contact_id=789,
        agent_id=42,
    )
    fernand.add_conversation(12346, ["billing"], subject="Invoice copy request", contact_id=790)
    fernand.add_conversation(
        12347, ["Needs Follow-up"], subject="Demo follow-up", contact_id=791, agent_id=42
    )


def _seed_alta(state: SandboxState) -> None:
    state.alta.add_entity("emailThread", ALTA_EMAIL_THREAD, ["Hot Lead", "Follow Up"])
    state.alta.add_entity("linkedinConversation", ALTA_LINKEDIN, ["Warm"])


def _seed_constantcontact(state: SandboxState) -> None:
    cc = state.constantcontact
    for name, tag_id in CC_TAGS.items():
        cc.add_tag(name, tag_id=tag_id, created_at=_CREATED)
    named = (
        (CC_CONTACT_A, ["VIP", "Newsletter"], "Debora", "Lang"),
        (CC_CONTACT_B, ["Newsletter", "Spring Promo 2026"], "Marcus", "Webb"),
        (CC_CONTACT_C, ["Spring Promo 2026"], "Priya", "Raman"),
    )
    for contact_id, tags, first, last in named:
        cc.add_contact(
            contact_id,
            tags,
            email=f"{first.lower()}.{last.lower()}@example.com",
            first_name=first,
            last_name=last,
            created_at=_CREATED,
        )
    for contact_id, first in zip(CC_PROMO_CONTACTS, _FIRST_NAMES, strict=True):
        cc.add_contact(
            contact_id,
            ["Spring Promo 2026"],
            email=f"{first.lower()}@example.com",
            first_name=first,
            last_name="Promo",
            created_at=_CREATED,
        )
