"""``qor fixity audit`` (the Prefect flow), ``qor fixity report``, ``qor bag validate-stored``
and ``qor register rebuild-links`` end to end, on the embedded store and register."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from catalog_sync import register
from integrity.audit import bag_prefix
from qor import wiring
from qor.cli import app
from qor.settings import load_settings
from storage import FileStore
from tests.conftest import qor_environment
from tests.integrity.fixity_bags import make_stored_bag, register_bag
from tests.integrity.test_fixity_alert import webhook_server  # noqa: F401 - fixture

runner = CliRunner()


@pytest.fixture
def damaged_depository(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Two registered bags in the embedded store (no replica); one object of one is damaged."""
    with qor_environment(tmp_path / "data"):
        settings = load_settings()
        store = wiring.primary_store(settings)
        keyring = wiring.keyring(settings)
        bags = [make_stored_bag([store], bag_id=f"KZ-{i}-v1-x", inventory=f"KZ-{i}",
                                work=tmp_path / "w", keyring=keyring,
                                files={"access/doc.pdf": bytes([i]) * 30_000})
                for i in (1, 2)]
        with wiring.register_session(settings) as s:
            for made in bags:
                register_bag(s, made, store.uri)
        assert isinstance(store, FileStore)
        # Damage behind the store's back: the file on disk changes, the store's records do not.
        target = store.root / bag_prefix("KZ-2-v1-x") / "data/access/doc.pdf"
        target.chmod(0o644)
        data = bytearray(target.read_bytes())
        data[100] ^= 0xFF
        target.write_bytes(bytes(data))
        yield {"settings": settings, "store": store, "bags": bags, "tmp": tmp_path}


def test_failed_audit_exits_4_alerts_and_the_report_names_bag_and_file(
    prefect_server: None, damaged_depository: dict[str, Any],
    webhook_server: tuple[str, list[dict[str, Any]]],  # noqa: F811
) -> None:
    hook, received = webhook_server
    tmp = damaged_depository["tmp"]
    with qor_environment(tmp / "data", alert_webhook_url=hook):
        result = runner.invoke(app, ["fixity", "audit", "--json"])
        assert result.exit_code == 4, result.output
        data = json.loads(result.stdout)
        outcomes = {b["bag_id"]: b["outcome"] for b in data["bags"]}
        assert outcomes == {"KZ-1-v1-x": "success", "KZ-2-v1-x": "failure"}
        assert "not repaired" in result.stderr and "KZ-2-v1-x" in result.stderr

        (post,) = received
        assert "KZ-2-v1-x" in post["body"] and "data/access/doc.pdf" in post["body"]

        out = tmp / "report"
        rep = runner.invoke(app, ["fixity", "report", "--out", str(out), "--json"])
        assert rep.exit_code == 0, rep.output
        html = (out / "fixity-report.html").read_text()
        assert html.index("NOT REPAIRED") < html.index("<h2>Bags</h2>")  # failures first
        assert "data/access/doc.pdf" in html and "<svg" in html
        rows = list(csv.DictReader((out / "fixity-report.csv").open()))
        assert {r["bag_id"]: r["outcome"] for r in rows} == {"KZ-1-v1-x": "success",
                                                             "KZ-2-v1-x": "failure"}
        report = json.loads((out / "fixity-report.json").read_text())
        # One damaged file is one failure, however many of its checksums disagree.
        assert report["ok"] is False and report["totals"]["not_repaired"] == 1

        # The PREMIS events are in the register.
        with wiring.register_session(load_settings()) as s:
            events = register.copy_events(s, "KZ-2-v1-x")
            kinds = [(e.event_type, e.outcome) for e in events]
        # Found, and the repair attempt recorded too: no replica, so no good copy.
        assert kinds[-2:] == [("fixity check", "failure"), ("repair", "failure")]

        stored = runner.invoke(app, ["bag", "validate-stored",
                                     f"{damaged_depository['store'].uri}/bags/KZ-2-v1-x/"])
        assert stored.exit_code == 1 and "data/access/doc.pdf" in stored.stdout
        good = runner.invoke(app, ["bag", "validate-stored",
                                   f"{damaged_depository['store'].uri}/bags/KZ-1-v1-x"])
        assert good.exit_code == 0, good.output

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["fixity-report", "fixity-summary"])))
    assert {a.key for a in arts} == {"fixity-report", "fixity-summary"}


def test_quick_audit_of_intact_bags_exits_0(prefect_server: None, tmp_path: Path) -> None:
    with qor_environment(tmp_path / "data"):
        settings = load_settings()
        store = wiring.primary_store(settings)
        made = make_stored_bag([store], bag_id="KZ-7-v1-q", inventory="KZ-7", work=tmp_path / "w",
                               keyring=wiring.keyring(settings), files={"a.txt": b"a" * 999})
        with wiring.register_session(settings) as s:
            register_bag(s, made, store.uri)
        result = runner.invoke(app, ["fixity", "audit", "--mode", "quick"])
        assert result.exit_code == 0, result.output
        assert "all intact" in result.stdout


def test_rebuild_links_command_restores_the_register(tmp_path: Path) -> None:
    with qor_environment(tmp_path / "data"):
        settings = load_settings()
        store = wiring.primary_store(settings)
        make_stored_bag([store], bag_id="KZ-8-v1-r", inventory="KZ-8", work=tmp_path / "w",
                        keyring=wiring.keyring(settings), files={"a.txt": b"abc"})
        result = runner.invoke(app, ["register", "rebuild-links", "--json"])
        assert result.exit_code == 0, result.output
        (link,) = json.loads(result.stdout)
        assert link["action"] == "added" and link["inventory_number"] == "KZ-8"
        with wiring.register_session(settings) as s:
            assert register.find_copy(s, "KZ-8").bag_id == "KZ-8-v1-r"
