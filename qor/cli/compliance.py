"""``qor compliance report``: clauses R1–R16, what Qor checks, the tests that prove it, and the
evidence from this register (сәйкестік есебі · отчёт о соответствии)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from qor.cli._common import JsonOpt, cli_settings, console, emit_json, fail
from qor.errors import QorError

app = typer.Typer(help="Compliance with the Rules of the library fund (R1–R16).",
                  no_args_is_help=True)


@app.command("report")
def compliance_report(
    out: Annotated[Path, typer.Option(help="Folder for the HTML, CSV and JSON files.")] = Path(),
    language: Annotated[list[str] | None, typer.Option(
        "--lang", "--language",
        help="Report language: kk, ru, en (repeat for several; default all three).")] = None,
    on: Annotated[str | None, typer.Option(
        "--date", help="Judge as of this day, YYYY-MM-DD (default today).")] = None,
    strict: Annotated[bool, typer.Option(
        help="Exit 1 when any clause fails (for monitoring).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """One row per clause: what Qor checks, the evidence, pass/fail; HTML and CSV per language,
    and JSON."""
    from catalog_sync import compliance
    from elibrary.compliance import CHECKS as ELIBRARY_CHECKS
    from qor import wiring

    languages = language or list(compliance.LANGUAGES)
    bad = [lang for lang in languages if lang not in compliance.LANGUAGES]
    if bad:
        raise typer.BadParameter(f"{', '.join(bad)}: one of {', '.join(compliance.LANGUAGES)}",
                                 param_hint="--lang")
    try:
        today = date.fromisoformat(on) if on else date.today()
    except ValueError as e:
        raise typer.BadParameter(f"{on!r} is not YYYY-MM-DD", param_hint="--date") from e
    try:
        with wiring.register_session(cli_settings()) as session:
            report = compliance.compliance_report(session, today=today, extra=ELIBRARY_CHECKS)
            session.rollback()  # read only
    except QorError as e:
        raise fail(e) from e
    out.mkdir(parents=True, exist_ok=True)
    stem = f"compliance-{today.isoformat()}"
    files = []
    for lang in languages:
        html = out / f"{stem}.{lang}.html"
        csv = out / f"{stem}.{lang}.csv"
        html.write_text(compliance.report_html(report, language=lang), encoding="utf-8")
        csv.write_text(compliance.report_csv(report, language=lang), encoding="utf-8")
        files += [str(html), str(csv)]
    data = out / f"{stem}.json"
    data.write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=2, default=str),
                    encoding="utf-8")
    files.append(str(data))
    if as_json:
        emit_json({"failing": list(report.failing), "files": files})
    else:
        for row in report.rows:
            console.print(f"{row.clause.code:>4} {row.status:<11} {row.clause.title['en']}"
                          + (f" — {row.result.violation_count} violation(s)"
                             if row.result.violation_count else ""), highlight=False)
        console.print(f"written: {', '.join(files)}", highlight=False)
    if strict and report.failing:
        raise typer.Exit(1)
