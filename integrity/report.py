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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

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

    def write_html(self, path: Path) -> None:
        path.write_text(self.html(), encoding="utf-8")

    def html(self) -> str:
        t = self.totals()
        esc = html.escape
        parts = [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            f"<title>{esc(self.title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{esc(self.title)}</h1>",
            f"<p class='meta'>Generated {esc(self.generated_at.isoformat(timespec='seconds'))}"
            f" · {t['bags']} bag(s) · {t['checks']} check(s) · "
            f"{_human(t['bytes_checked'])} checked</p>",
        ]
        if self.unrepaired:
            parts.append(f"<p class='bad'>{len(self.unrepaired)} failure(s) NOT repaired: "
                         "no good copy was found. Act now.</p>")
        elif self.failures:
            parts.append(f"<p class='warn'>{len(self.failures)} failure(s) found, all repaired "
                         "from the replica.</p>")
        else:
            parts.append("<p class='good'>Every check passed: no failure in this period.</p>")
        parts.append("<h2>Failures</h2>")
        if self.failures:
            parts.append("<table><tr><th>when</th><th>status</th><th>inventory</th><th>bag</th>"
                         "<th>file</th><th>problem</th><th>algorithm</th><th>expected</th>"
                         "<th>found</th></tr>")
            for f in self.failures:
                cls = "repaired" if f.status == "repaired" else "bad"
                parts.append(
                    f"<tr class='{cls}'><td>{esc(f.at.isoformat(timespec='seconds'))}</td>"
                    f"<td>{esc(f.status)}</td><td>{esc(f.inventory_number)}</td>"
                    f"<td><code>{esc(f.bag_id)}</code></td><td><code>{esc(f.path)}</code></td>"
                    f"<td title='{esc(f.message)}'>{esc(f.problem)}</td>"
                    f"<td>{esc(f.algorithm or '')}</td><td><code>{esc(f.expected or '')}"
                    f"</code></td><td><code>{esc(f.found or '')}</code></td></tr>")
            parts.append("</table>")
        else:
            parts.append("<p>None.</p>")
        parts.append("<h2>Bytes checked and failures per day</h2>")
        parts.append(_svg_chart(self.days))
        parts.append("<h2>Bags</h2><table><tr><th>inventory</th><th>bag</th><th>checks</th>"
                     "<th>last check</th><th>mode</th><th>outcome</th><th>bytes checked</th>"
                     "<th>failures</th><th>repaired</th></tr>")
        for b in self.bags:
            cls = {"failure": "bad", "repaired": "repaired"}.get(b.last_outcome, "")
            parts.append(
                f"<tr class='{cls}'><td>{esc(b.inventory_number)}</td>"
                f"<td><code>{esc(b.bag_id)}</code></td><td>{b.checks}</td>"
                f"<td>{esc(b.last_check.isoformat(timespec='seconds'))}</td>"
                f"<td>{esc(b.last_mode)}</td><td>{esc(b.last_outcome)}</td>"
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


def _svg_chart(days: Sequence[DayLine]) -> str:
    """Bars: bytes checked per day; red dots: failures that day (right-hand scale)."""
    if not days:
        return "<p>No checks in this period.</p>"
    w, h, pad = 720, 240, 48
    n = len(days)
    top_b = max(d.bytes_checked for d in days) or 1
    top_f = max(d.failures for d in days) or 1
    bw = (w - 2 * pad) / n
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' role='img' "
           "aria-label='bytes checked and failures per day'>",
           f"<line x1='{pad}' y1='{h - pad}' x2='{w - pad}' y2='{h - pad}' stroke='#888'/>",
           f"<text x='4' y='{pad - 8}' font-size='11'>{html.escape(_human(top_b))}</text>",
           f"<text x='{w - pad + 4}' y='{pad - 8}' font-size='11' fill='#c00'>{top_f} "
           "failure(s)</text>"]
    for i, d in enumerate(days):
        x = pad + i * bw
        bh = (h - 2 * pad) * d.bytes_checked / top_b
        out.append(f"<rect x='{x + bw * 0.1:.1f}' y='{h - pad - bh:.1f}' width='{bw * 0.8:.1f}' "
                   f"height='{bh:.1f}' fill='#4a7bb7'><title>{d.day}: "
                   f"{html.escape(_human(d.bytes_checked))} in {d.checks} check(s), "
                   f"{d.failures} failure(s)</title></rect>")
        if d.failures:
            fy = h - pad - (h - 2 * pad) * d.failures / top_f
            out.append(f"<circle cx='{x + bw / 2:.1f}' cy='{fy:.1f}' r='5' fill='#c00'>"
                       f"<title>{d.day}: {d.failures} failure(s)</title></circle>")
        if n <= 31 or i % max(1, n // 12) == 0:
            out.append(f"<text x='{x + bw / 2:.1f}' y='{h - pad + 14}' font-size='10' "
                       f"text-anchor='middle'>{d.day.strftime('%m-%d')}</text>")
    out.append("</svg>")
    return "".join(out)


def build_report(
    events: Sequence[FixityEvent], *, title: str = "Fixity report",
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
