"""Fixity reports for preservation officers (сақтау жөніндегі маман / хранитель) and directors.

Built from the register's PREMIS events (:func:`integrity.records.fixity_events`), so a report
covers every audit ever run, not just the last one. Written as:

* **HTML** — failures first (still damaged, then repaired), a table of every bag, and a chart of
  bytes checked and failures per day (inline SVG: no plotting library, opens anywhere, prints);
* **CSV** — one row per fixity check event, for spreadsheets;
* **JSON** — everything, for scripts;
* **Markdown** and table rows — for the Prefect artifacts of the audit flow.
"""

from __future__ import annotations

import csv
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from catalog_sync.vocabulary import check_language
from integrity.records import FIXITY_EVENT, REPAIR_EVENT, FixityEvent

__all__ = ["BagLine", "DayLine", "FailureLine", "FixityReport", "build_report"]


@dataclass(frozen=True)
class FailureLine:
    """One failure found: the bag, the file, what, by which algorithm, and what became of it."""

    at: datetime
    bag_id: str
    inventory_number: str
    path: str
    problem: str
    algorithm: str | None
    expected: str | None
    found: str | None
    status: str
    """``repaired`` (restored from the replica), or ``NOT REPAIRED``."""
    message: str


@dataclass(frozen=True)
class BagLine:
    """A bag's fixity history in the period."""

    bag_id: str
    inventory_number: str
    checks: int
    last_check: datetime
    last_mode: str
    last_outcome: str
    bytes_checked: int
    failures: int
    repaired: int


@dataclass(frozen=True)
class DayLine:
    day: date
    bytes_checked: int
    checks: int
    failures: int


@dataclass(frozen=True)
class FixityReport:
    title: str
    generated_at: datetime
    failures: tuple[FailureLine, ...]
    bags: tuple[BagLine, ...]
    days: tuple[DayLine, ...]
    events: tuple[FixityEvent, ...]

    @property
    def unrepaired(self) -> tuple[FailureLine, ...]:
        return tuple(f for f in self.failures if f.status != "repaired")

    @property
    def ok(self) -> bool:
        """Whether every bag's latest check left it intact (repaired counts as intact)."""
        return all(b.last_outcome != "failure" for b in self.bags)

    # -- outputs -------------------------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        def fl(f: FailureLine) -> dict[str, Any]:
            return {**f.__dict__, "at": f.at.isoformat()}

        return {
            "title": self.title, "generated_at": self.generated_at.isoformat(), "ok": self.ok,
            "totals": self.totals(),
            "failures": [fl(f) for f in self.failures],
            "bags": [{**b.__dict__, "last_check": b.last_check.isoformat()} for b in self.bags],
            "days": [{**d.__dict__, "day": d.day.isoformat()} for d in self.days],
            "events": [e.as_dict() for e in self.events],
        }

    def totals(self) -> dict[str, int]:
        return {
            "bags": len(self.bags), "checks": sum(b.checks for b in self.bags),
            "bytes_checked": sum(b.bytes_checked for b in self.bags),
            "failures": len(self.failures), "not_repaired": len(self.unrepaired),
            "repaired": len(self.failures) - len(self.unrepaired),
        }

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_dict(), ensure_ascii=False, indent=2, default=str),
                        encoding="utf-8")

    def write_csv(self, path: Path) -> None:
        """One row per fixity check event (failures summarised in the row)."""
        with path.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["at", "bag_id", "inventory_number", "mode", "outcome", "files_checked",
                        "bytes_checked", "failures", "not_repaired", "repaired_files",
                        "failed_files", "summary"])
            for e in self.events:
                if e.event_type != FIXITY_EVENT:
                    continue
                d = e.detail
                fails = d.get("failures", [])
                w.writerow([
                    e.at.isoformat(), e.bag_id, e.inventory_number, d.get("mode", ""),
                    e.outcome, d.get("files_checked", ""), d.get("bytes_checked", ""),
                    len(fails), len(d.get("remaining", [])), " ".join(d.get("repaired", [])),
                    " ".join(sorted({f"{x.get('path')}:{x.get('algorithm') or x.get('problem')}"
                                     for x in fails})),
                    e.summary,
                ])

    def write_html(self, path: Path, language: str = "en") -> None:
        """Write :meth:`html` in ``language`` to ``path``."""
        path.write_text(self.html(language), encoding="utf-8")

    def html(self, language: str = "en") -> str:
        """The report for people, its headings, labels and verdicts in ``language`` (kk, ru or
        en). Bag ids, paths, checksums and problem codes are identifiers, printed as they are;
        the figures are the same in every language."""
        w = _WORDS[check_language(language)]
        t = self.totals()
        esc = html.escape
        title = w["title"] if self.title == DEFAULT_TITLE else self.title

        def status(value: str) -> str:
            return w.get(f"status:{value}", value)

        parts = [
            f"<!DOCTYPE html><html lang='{language}'><head><meta charset='utf-8'>",
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{esc(title)}</h1>",
            "<p class='meta'>" + w["meta"].format(
                at=esc(self.generated_at.isoformat(timespec="seconds")), bags=t["bags"],
                checks=t["checks"], size=_human(t["bytes_checked"])) + "</p>",
        ]
        if self.unrepaired:
            parts.append("<p class='bad'>" + w["bad"].format(n=len(self.unrepaired)) + "</p>")
        elif self.failures:
            parts.append("<p class='warn'>" + w["warn"].format(n=len(self.failures)) + "</p>")
        else:
            parts.append(f"<p class='good'>{w['good']}</p>")
        parts.append(f"<h2>{w['failures']}</h2>")
        if self.failures:
            parts.append("<table><tr>" + "".join(f"<th>{w[k]}</th>" for k in (
                "when", "status", "inventory", "bag", "file", "problem", "algorithm",
                "expected", "found")) + "</tr>")
            for f in self.failures:
                cls = "repaired" if f.status == "repaired" else "bad"
                parts.append(
                    f"<tr class='{cls}'><td>{esc(f.at.isoformat(timespec='seconds'))}</td>"
                    f"<td>{esc(status(f.status))}</td><td>{esc(f.inventory_number)}</td>"
                    f"<td><code>{esc(f.bag_id)}</code></td><td><code>{esc(f.path)}</code></td>"
                    f"<td title='{esc(f.message)}'>{esc(f.problem)}</td>"
                    f"<td>{esc(f.algorithm or '')}</td><td><code>{esc(f.expected or '')}"
                    f"</code></td><td><code>{esc(f.found or '')}</code></td></tr>")
            parts.append("</table>")
        else:
            parts.append(f"<p>{w['none']}</p>")
        parts.append(f"<h2>{w['per_day']}</h2>")
        parts.append(_svg_chart(self.days, w))
        parts.append(f"<h2>{w['bags']}</h2><table><tr>" + "".join(f"<th>{w[k]}</th>" for k in (
            "inventory", "bag", "checks", "last_check", "mode", "outcome", "bytes_checked",
            "failures_col", "repaired")) + "</tr>")
        for b in self.bags:
            cls = {"failure": "bad", "repaired": "repaired"}.get(b.last_outcome, "")
            parts.append(
                f"<tr class='{cls}'><td>{esc(b.inventory_number)}</td>"
                f"<td><code>{esc(b.bag_id)}</code></td><td>{b.checks}</td>"
                f"<td>{esc(b.last_check.isoformat(timespec='seconds'))}</td>"
                f"<td>{esc(w.get(f'mode:{b.last_mode}', b.last_mode))}</td>"
                f"<td>{esc(status(b.last_outcome))}</td>"
                f"<td>{_human(b.bytes_checked)}</td><td>{b.failures}</td>"
                f"<td>{b.repaired}</td></tr>")
        parts.append("</table></body></html>")
        return "\n".join(parts)

    def markdown(self) -> str:
        """A short summary for the Prefect markdown artifact."""
        t = self.totals()
        lines = [f"# {self.title}", "",
                 f"{t['bags']} bag(s), {t['checks']} check(s), {_human(t['bytes_checked'])} "
                 f"checked; {t['failures']} failure(s), {t['repaired']} repaired, "
                 f"**{t['not_repaired']} not repaired**.", ""]
        if self.failures:
            lines += ["| status | inventory | bag | file | problem | algorithm |",
                      "|---|---|---|---|---|---|"]
            lines += [f"| {f.status} | {f.inventory_number} | `{f.bag_id}` | `{f.path}` | "
                      f"{f.problem} | {f.algorithm or ''} |" for f in self.failures]
        return "\n".join(lines)

    def table_rows(self) -> list[dict[str, Any]]:
        """One row per bag for the Prefect table artifact."""
        return [{"inventory": b.inventory_number, "bag": b.bag_id,
                 "last_check": b.last_check.isoformat(timespec="seconds"), "mode": b.last_mode,
                 "outcome": b.last_outcome, "bytes_checked": b.bytes_checked,
                 "failures": b.failures, "repaired": b.repaired} for b in self.bags]


DEFAULT_TITLE = "Fixity report"
"""The title :func:`build_report` gives; :meth:`FixityReport.html` prints it in the report's
language (a title the caller chose is printed as given)."""

#: The report's fixed words (тұтастықты тексеру есебі · отчёт о проверке целостности).
_WORDS: Mapping[str, Mapping[str, str]] = {
    "kk": {
        "title": "Тұтастықты тексеру есебі",
        "meta": "Жасалған уақыты {at} · {bags} пакет · {checks} тексеру · {size} тексерілді",
        "bad": "{n} ақау қалпына КЕЛТІРІЛМЕДІ: сау көшірме табылмады. Дереу шара қолданыңыз.",
        "warn": "{n} ақау табылды, бәрі резервтік көшірмеден қалпына келтірілді.",
        "good": "Барлық тексеру сәтті өтті: бұл кезеңде ақау жоқ.",
        "failures": "Ақаулар", "none": "Жоқ.",
        "per_day": "Күн сайын тексерілген байттар мен ақаулар", "bags": "Пакеттер",
        "when": "уақыты", "status": "күйі", "inventory": "инвентарлық нөмір", "bag": "пакет",
        "file": "файл", "problem": "ақау", "algorithm": "алгоритм", "expected": "күтілген",
        "found": "табылған", "checks": "тексерулер", "last_check": "соңғы тексеру",
        "mode": "режим", "outcome": "нәтиже", "bytes_checked": "тексерілген көлем",
        "failures_col": "ақаулар", "repaired": "қалпына келтірілді",
        "status:repaired": "қалпына келтірілді",
        "status:NOT REPAIRED": "ҚАЛПЫНА КЕЛТІРІЛМЕДІ", "status:success": "сәтті",
        "status:failure": "ақау", "mode:deep": "толық", "mode:quick": "жылдам",
        "no_checks": "Бұл кезеңде тексеру болған жоқ.", "n_failures": "{n} ақау",
        "day": "{size}, {checks} тексеру, {failures} ақау",
    },
    "ru": {
        "title": "Отчёт о проверке целостности",
        "meta": "Составлен {at} · пакетов: {bags} · проверок: {checks} · проверено {size}",
        "bad": "Сбоев НЕ восстановлено: {n}; исправной копии не найдено. Примите меры немедленно.",
        "warn": "Найдено сбоев: {n}; все восстановлены из резервной копии.",
        "good": "Все проверки пройдены: сбоев за период нет.",
        "failures": "Сбои", "none": "Нет.",
        "per_day": "Проверено байт и сбоев по дням", "bags": "Пакеты",
        "when": "когда", "status": "состояние", "inventory": "инвентарный номер",
        "bag": "пакет", "file": "файл", "problem": "сбой", "algorithm": "алгоритм",
        "expected": "ожидалось", "found": "найдено", "checks": "проверок",
        "last_check": "последняя проверка", "mode": "режим", "outcome": "итог",
        "bytes_checked": "проверено", "failures_col": "сбоев", "repaired": "восстановлено",
        "status:repaired": "восстановлен", "status:NOT REPAIRED": "НЕ ВОССТАНОВЛЕН",
        "status:success": "успешно", "status:failure": "сбой", "mode:deep": "полная",
        "mode:quick": "быстрая", "no_checks": "За этот период проверок не было.",
        "n_failures": "сбоев: {n}", "day": "{size} за {checks} проверок, сбоев: {failures}",
    },
    "en": {
        "title": DEFAULT_TITLE,
        "meta": "Generated {at} · {bags} bag(s) · {checks} check(s) · {size} checked",
        "bad": "{n} failure(s) NOT repaired: no good copy was found. Act now.",
        "warn": "{n} failure(s) found, all repaired from the replica.",
        "good": "Every check passed: no failure in this period.",
        "failures": "Failures", "none": "None.",
        "per_day": "Bytes checked and failures per day", "bags": "Bags",
        "when": "when", "status": "status", "inventory": "inventory", "bag": "bag",
        "file": "file", "problem": "problem", "algorithm": "algorithm", "expected": "expected",
        "found": "found", "checks": "checks", "last_check": "last check", "mode": "mode",
        "outcome": "outcome", "bytes_checked": "bytes checked", "failures_col": "failures",
        "repaired": "repaired", "no_checks": "No checks in this period.",
        "n_failures": "{n} failure(s)", "day": "{size} in {checks} check(s), {failures} failure(s)",
    },
}


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0;font-size:.9em}"
    "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}tr.bad td{background:#fde2e2}tr.repaired td{background:#fff5d6}"
    "p.bad{color:#a00;font-weight:bold}p.warn{color:#850}p.good{color:#060}"
    ".meta{color:#666}code{font-size:.85em;word-break:break-all}"
)


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def _svg_chart(days: Sequence[DayLine], words: Mapping[str, str]) -> str:
    """Bars: bytes checked per day; red dots: failures that day (right-hand scale)."""
    if not days:
        return f"<p>{words['no_checks']}</p>"
    w, h, pad = 720, 240, 48
    n = len(days)
    top_b = max(d.bytes_checked for d in days) or 1
    top_f = max(d.failures for d in days) or 1
    bw = (w - 2 * pad) / n
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' role='img' "
           f"aria-label='{html.escape(words['per_day'])}'>",
           f"<line x1='{pad}' y1='{h - pad}' x2='{w - pad}' y2='{h - pad}' stroke='#888'/>",
           f"<text x='4' y='{pad - 8}' font-size='11'>{html.escape(_human(top_b))}</text>",
           f"<text x='{w - pad + 4}' y='{pad - 8}' font-size='11' fill='#c00'>"
           f"{html.escape(words['n_failures'].format(n=top_f))}</text>"]
    for i, d in enumerate(days):
        x = pad + i * bw
        bh = (h - 2 * pad) * d.bytes_checked / top_b
        out.append(f"<rect x='{x + bw * 0.1:.1f}' y='{h - pad - bh:.1f}' width='{bw * 0.8:.1f}' "
                   f"height='{bh:.1f}' fill='#4a7bb7'><title>{d.day}: " + html.escape(
                       words["day"].format(size=_human(d.bytes_checked), checks=d.checks,
                                           failures=d.failures)) + "</title></rect>")
        if d.failures:
            fy = h - pad - (h - 2 * pad) * d.failures / top_f
            out.append(f"<circle cx='{x + bw / 2:.1f}' cy='{fy:.1f}' r='5' fill='#c00'>"
                       f"<title>{d.day}: "
                       f"{html.escape(words['n_failures'].format(n=d.failures))}</title></circle>")
        if n <= 31 or i % max(1, n // 12) == 0:
            out.append(f"<text x='{x + bw / 2:.1f}' y='{h - pad + 14}' font-size='10' "
                       f"text-anchor='middle'>{d.day.strftime('%m-%d')}</text>")
    out.append("</svg>")
    return "".join(out)


def build_report(
    events: Sequence[FixityEvent], *, title: str = DEFAULT_TITLE,
    now: datetime | None = None,
) -> FixityReport:
    """Gather the register's fixity and repair events into a report."""
    failures: list[FailureLine] = []
    bags: dict[str, dict[str, Any]] = {}
    days: dict[date, list[int]] = {}
    for e in events:
        if e.event_type != FIXITY_EVENT:
            continue
        d = e.detail
        remaining = {(x.get("path"), x.get("problem"), x.get("algorithm"))
                     for x in d.get("remaining", [])}
        found = d.get("failures", [])
        for x in found:
            key = (x.get("path"), x.get("problem"), x.get("algorithm"))
            failures.append(FailureLine(
                at=e.at, bag_id=e.bag_id, inventory_number=e.inventory_number,
                path=str(x.get("path") or ""), problem=str(x.get("problem") or ""),
                algorithm=x.get("algorithm"), expected=x.get("expected"), found=x.get("found"),
                status="NOT REPAIRED" if key in remaining else "repaired",
                message=str(x.get("message") or "")))
        nbytes = int(d.get("bytes_checked") or 0)
        b = bags.setdefault(e.bag_id, {"inv": e.inventory_number, "checks": 0, "bytes": 0,
                                       "failures": 0, "repaired": 0})
        b["checks"] += 1
        b["bytes"] += nbytes
        b["failures"] += len(found)
        b["repaired"] += len(found) - len(remaining)
        b["last"] = e.at
        b["mode"] = str(d.get("mode", ""))
        b["outcome"] = ("success" if not found else "failure" if remaining else "repaired")
        day = days.setdefault(e.at.astimezone(UTC).date(), [0, 0, 0])
        day[0] += nbytes
        day[1] += 1
        day[2] += len(found)
    order = {"NOT REPAIRED": 0, "repaired": 1}
    failures.sort(key=lambda f: (order.get(f.status, 2), -f.at.timestamp(), f.bag_id, f.path))
    bag_lines = sorted(
        (BagLine(bag_id=k, inventory_number=v["inv"], checks=v["checks"], last_check=v["last"],
                 last_mode=v["mode"], last_outcome=v["outcome"], bytes_checked=v["bytes"],
                 failures=v["failures"], repaired=v["repaired"]) for k, v in bags.items()),
        key=lambda b: ({"failure": 0, "repaired": 1}.get(b.last_outcome, 2), b.inventory_number,
                       b.bag_id))
    day_lines = tuple(DayLine(k, v[0], v[1], v[2]) for k, v in sorted(days.items()))
    kept = tuple(e for e in events if e.event_type in (FIXITY_EVENT, REPAIR_EVENT))
    return FixityReport(title=title, generated_at=now or datetime.now(UTC),
                        failures=tuple(failures), bags=tuple(bag_lines), days=day_lines,
                        events=kept)
