"""manifest.yml validates against Slack's manifest schema (v1, offline copy in ../shared)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = (
    ROOT.parent / "shared" / "specs" / "slack" / "manifest-schema" / "manifest.schema.1.0.0.json"
)


def test_manifest_validates_against_the_slack_schema() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(manifest, schema)
    assert manifest["features"]["slash_commands"][0]["command"] == "/untag"
