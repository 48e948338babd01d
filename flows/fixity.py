"""The fixity audit flow: check stored bags, repair from the replica, record, report, alert.

``fixity_audit`` is the Prefect flow (schedule it daily: with ``mode="deep"`` and no bag ids it
deep-checks today's share of the bags, so each is checked at least every
``fixity_deep_every_days`` days). ``qor fixity audit`` runs the same flow. The work itself is
:func:`audit_with_settings`, plain Python, usable without Prefect.

The flow publishes a progress artifact while it runs and, at the end, a table artifact
(``fixity-report``: one row per bag) and a markdown artifact (``fixity-summary``) under those
stable keys. A run that leaves any bag damaged calls the configured alert (e-mail and/or
webhook) and ends **Failed** (:class:`~integrity.errors.FixityAuditFailed`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from uuid import UUID

from prefect import flow
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from flows import progress
from integrity.alert import Alert, AlertFailed, send_alert
from integrity.audit import AuditMode, AuditRun, BagAudit, run_audit
from integrity.errors import FixityAuditFailed
from integrity.records import audit_targets, fixity_events, record_bag_audit
from integrity.report import FixityReport, build_report
from integrity.schedules import due_bags
from qor import wiring
from qor.settings import QorSettings, load_settings
from storage.store import ObjectStore

logger = logging.getLogger(__name__)

AGENT = "qor fixity audit"
REPORT_TABLE_KEY = "fixity-report"
REPORT_MARKDOWN_KEY = "fixity-summary"


def journal_dir(settings: QorSettings) -> Path:
    """Where audit checkpoints are kept (``<data_dir>/fixity/journal``)."""
    return settings.data_dir / "fixity" / "journal"


def audit_with_settings(
    settings: QorSettings,
    *,
    mode: AuditMode = "deep",
    bag_ids: Sequence[str] | None = None,
    scheduled: bool = False,
    repair: bool = True,
    resume: bool = True,
    workers: int | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> AuditRun:
    """Audit the registered bags (all, ``bag_ids``, or — ``scheduled`` — today's share).

    Each bag's result is recorded in the register as PREMIS events as soon as it is known.
    Orphans (bags in the primary store the register does not know) are listed in the result.
    """
    with wiring.register_session(settings) as session:
        targets = audit_targets(session, bag_ids=bag_ids)
        if bag_ids is not None:
            known = {t.bag_id for t in targets}
            missing = [b for b in bag_ids if b not in known]
            if missing:
                from catalog_sync.errors import DigitalCopyNotFound

                raise DigitalCopyNotFound(f"no digital copy with bag id {missing[0]!r}")
        if scheduled and bag_ids is None:
            # Each storage location at its own interval (qor fixity schedule), the others
            # at fixity_deep_every_days.
            due = set(due_bags(session, default_every_days=settings.fixity_deep_every_days))
            targets = [t for t in targets if t.bag_id in due]

    def record(result: BagAudit, run_id: str) -> None:
        with wiring.register_session(settings) as s:
            record_bag_audit(s, result, run_id=run_id, actor=AGENT)

    def opener(uri: str) -> ObjectStore:
        return wiring.store_for_uri(settings, uri)

    primary = wiring.primary_store(settings)
    return run_audit(
        targets, mode=mode, open_store=opener, journal_dir=journal_dir(settings),
        replica=wiring.replica_store(settings), repair=repair, resume=resume, workers=workers,
        orphan_stores=[primary] if bag_ids is None else [], on_bag=record,
        on_progress=on_progress,
    )


def report_from_register(settings: QorSettings, *, days: int | None = None,
                         title: str | None = None) -> FixityReport:
    """The fixity report over the last ``days`` days (all history if None)."""
    since = datetime.now(UTC) - timedelta(days=days) if days else None
    with wiring.register_session(settings) as session:
        events = fixity_events(session, since=since)
    return build_report(events, title=title or f"Fixity report — {settings.library_name}")


def alert_for(run: AuditRun) -> Alert:
    """The alert a failed run sends: every damaged bag and file, named."""
    lines = [f"Fixity audit {run.run_id} ({run.mode}) left {len(run.failed)} bag(s) damaged "
             "with no good copy to repair them from.", ""]
    for bag in run.failed:
        lines.append(f"bag {bag.bag_id} (item {bag.inventory_number or '?'}) in {bag.store_uri}:")
        for f in bag.remaining:
            lines.append(f"  - {f.message}")
        for r in bag.repairs:
            if not r.restored:
                lines.append(f"  repair of {r.path} not possible: {r.detail}")
    return Alert(subject=f"[Qor] FIXITY FAILURE: {len(run.failed)} bag(s) damaged",
                 body="\n".join(lines), data=run.as_dict())


def raise_alarm(settings: QorSettings, run: AuditRun) -> str | None:
    """Send the alert for a failed run; return why it failed to send, or None if it was sent."""
    emails = [a.strip() for a in (settings.alert_email_to or "").split(",") if a.strip()]
    try:
        send_alert(
            alert_for(run),
            smtp_url=settings.alert_smtp_url.get_secret_value() if settings.alert_smtp_url
            else None,
            email_to=emails, email_from=settings.alert_email_from,
            webhook_url=settings.alert_webhook_url.get_secret_value()
            if settings.alert_webhook_url else None,
        )
    except AlertFailed as e:
        logger.error("%s", e.message)
        return e.message
    return None


def failure_message(run: AuditRun) -> str:
    first = run.failed[0]
    f = first.remaining[0] if first.remaining else None
    what = f" — e.g. {f.message}" if f is not None else ""
    return (f"fixity audit {run.run_id}: {len(run.failed)} bag(s) damaged and not repaired "
            f"(bag {first.bag_id}){what}")


def _publish(report: FixityReport, run: AuditRun) -> None:
    create_table_artifact(key=REPORT_TABLE_KEY, table=report.table_rows()
                          or [{"bag": "(no bag checked yet)"}],
                          description="Fixity: one row per bag, latest check")
    head = (f"**Run {run.run_id}** ({run.mode}{', resumed' if run.resumed else ''}): "
            f"{len(run.bags)} bag(s), {run.files_checked} object(s), {run.bytes_checked} bytes; "
            f"{'all intact' if run.ok else f'{len(run.failed)} bag(s) DAMAGED'}"
            f"{f'; {len(run.orphans)} unregistered bag(s) in the store' if run.orphans else ''}"
            "\n\n")
    create_markdown_artifact(key=REPORT_MARKDOWN_KEY, markdown=head + report.markdown(),
                             description="Fixity audit summary and failures")


@flow(name="fixity-audit", log_prints=False, validate_parameters=True)
def fixity_audit(
    mode: str = "deep",
    bag_ids: list[str] | None = None,
    scheduled: bool = True,
    repair: bool = True,
    resume: bool = True,
    workers: int | None = None,
) -> dict[str, Any]:
    """Audit stored bags (deep: re-hash everything; quick: compare store checksums and sizes).

    ``scheduled`` (deep, no ``bag_ids``): only today's share of the bags. Returns the run as a
    dict; raises :class:`~integrity.errors.FixityAuditFailed` (flow Failed) after alerting if
    any bag stays damaged.
    """
    if mode not in ("deep", "quick"):
        raise ValueError(f"mode must be 'deep' or 'quick', not {mode!r}")
    settings = load_settings()
    progress_id = cast(UUID, create_progress_artifact(progress=0.0,
                                                      description="Fixity audit: bags checked"))

    def on_progress(stage: str, done: int, total: int) -> None:
        progress.report(f"fixity-{stage}", done, total)
        if stage == "bags" and total:
            update_progress_artifact(progress_id, progress=100.0 * done / total)

    run = audit_with_settings(settings, mode=cast(AuditMode, mode), bag_ids=bag_ids,
                              scheduled=scheduled and mode == "deep", repair=repair,
                              resume=resume, workers=workers, on_progress=on_progress)
    update_progress_artifact(progress_id, progress=100.0)
    _publish(report_from_register(settings, days=400), run)
    if not run.ok:
        alert_error = raise_alarm(settings, run)
        raise FixityAuditFailed(failure_message(run), result=run, alert_error=alert_error)
    return run.as_dict()


def run_fixity_audit(*, run_label: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """Run the flow in this process (``qor fixity audit``); ``run_label`` is added to the flow
    run's name (the CLI's pid, see :func:`flows.digitise.run_digitise`)."""
    configured = fixity_audit.with_options(
        flow_run_name=f"{kwargs.get('mode', 'deep')} audit · {run_label}" if run_label else None)
    result: dict[str, Any] = configured(**kwargs)
    return result
