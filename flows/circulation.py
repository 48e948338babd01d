"""Daily and weekly circulation flows: overdue reminders (R16), the legal-deposit watch (R7) and
the selection of items for digitisation (R13). Thin Prefect wrappers over
:mod:`catalog_sync.debts`, :mod:`catalog_sync.legal_deposit` and :mod:`catalog_sync.selection`;
each builds its clients from settings and commits once at the end.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger

from catalog_sync import debts, legal_deposit, selection
from catalog_sync.calendar_kz import load_calendar
from catalog_sync.mail import SmtpMailer
from qor.settings import load_settings
from qor.wiring import register_session


@flow(name="overdue-reminders", retries=1, retry_delay_seconds=600)
def overdue_reminders(today: date | None = None) -> dict[str, object]:
    """R16, daily: send due reminders, block readers past the threshold, record each step."""
    settings = load_settings()
    day = today or date.today()
    mailer = SmtpMailer(settings.smtp_url) if settings.smtp_url else None
    with register_session(settings) as session:
        report = debts.run_debt_steps(
            session,
            today=day,
            mailer=mailer,
            sender=settings.mail_sender,
            library=settings.library_name,
            policy=debts.DebtPolicy(
                reminder_steps=tuple(settings.reminder_steps),
                block_after_days=settings.block_after_days,
            ),
            calendar=load_calendar(session),
        )
        session.commit()
    get_run_logger().info("debt run %s", report.as_dict())
    return report.as_dict()


@flow(name="legal-deposit-watch")
def legal_deposit_watch(today: date | None = None, out_dir: str | None = None) -> list[str]:
    """R7, daily: write claim letters (kk, ru; HTML and PDF) for overdue obligations."""
    settings = load_settings()
    day = today or date.today()
    target = Path(out_dir) if out_dir else settings.data_dir / "deposit-claims"
    with register_session(settings) as session:
        claims = legal_deposit.write_claims(
            session, today=day, out_dir=target, library=settings.library_name,
            actor="qor legal-deposit-watch",
        )
        session.commit()
        paths = [c.pdf_path for c in claims]
    get_run_logger().info("%d claim letter(s) written to %s", len(paths), target)
    return paths


@flow(name="digitisation-selection")
def digitisation_selection(top: int = 50, out: str | None = None, today: date | None = None) -> str:
    """R13, weekly: rank not-yet-digitised items and write the operators' work list (CSV, or
    JSON for any other suffix); returns its path."""
    settings = load_settings()
    day = today or date.today()
    path = Path(out) if out else settings.data_dir / f"worklist-{day.isoformat()}.csv"
    with register_session(settings) as session:
        ranked = selection.rank_for_digitisation(session, today=day, top=top)
    path.parent.mkdir(parents=True, exist_ok=True)
    selection.write_work_list(ranked, path)
    get_run_logger().info("work list of %d item(s) written to %s", len(ranked), path)
    return str(path)
