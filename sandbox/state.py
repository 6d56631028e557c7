"""The provider stores of one sandbox, grouped for inspection and seeding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.alta import AltaStore
from sandbox.constantcontact import CcStore
from sandbox.fernand import FernandStore
from sandbox.zoho import ZohoStore


@dataclass
class SandboxState:
    """Every simulated provider's data; mutate it directly to seed tests and benchmarks."""

    alta: AltaStore
    fernand: FernandStore
    zoho: ZohoStore
    bigin: ZohoStore
    constantcontact: CcStore

    def dump(self) -> dict[str, Any]:
        """JSON-ready snapshot of all stores."""
        return {
            "alta": self.alta.dump(),
            "fernand": self.fernand.dump(),
            "zoho": self.zoho.dump(),
            "bigin": self.bigin.dump(),
            "constantcontact": self.constantcontact.dump(),
        }

    def clear(self) -> None:
        """Empty every store."""
        self.alta.clear()
        self.fernand.clear()
        self.zoho.clear()
        self.bigin.clear()
        self.constantcontact.clear()
