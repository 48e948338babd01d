"""``qor jobs``: the flow runs the orchestration server knows, running ones first."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from qor.cli._common import JsonOpt, cli_settings, console, emit_json, fail
from qor.errors import QorError


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def jobs(
    limit: Annotated[int, typer.Option(help="How many runs to list.", min=1, max=200)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """List running and recent flow runs (digitise, fixity audits…) with state, progress and
    duration. Does not start the local orchestration service: if it is not running, no job is."""
    from qor import orchestration

    settings = cli_settings()
    configured = orchestration.configured_api_url(settings)
    if configured is not None:
        api_url = configured[0]
    else:
        server, up = orchestration.local_status(settings)
        if server is None or not up:
            if as_json:
                emit_json([])
            else:
                console.print("no job: the local orchestration service is not running (the "
                              "next flow command starts it)")
            return
        api_url = server.api_url
    try:
        runs = orchestration.recent_runs(api_url, limit=limit)
    except QorError as e:
        raise fail(e) from e
    if as_json:
        emit_json([r.as_dict() for r in runs])
        return
    if not runs:
        console.print("no job yet")
        return
    colours = {"COMPLETED": "green", "RUNNING": "cyan", "FAILED": "bold red",
               "CRASHED": "bold red", "CANCELLED": "yellow", "PENDING": "cyan"}
    table = Table(title=f"Jobs ({api_url})")
    table.add_column("flow", no_wrap=True)
    table.add_column("run", overflow="fold")
    for col in ("state", "progress", "started (UTC)", "duration"):
        table.add_column(col, no_wrap=True)
    for r in runs:
        colour = "bold red" if r.state == "Crashed?" else colours.get(r.state_type, "white")
        started = (r.started or "—").replace("T", " ")[:16]
        table.add_row(r.flow, r.name, f"[{colour}]{r.state}[/]",
                      "—" if r.progress is None else f"{r.progress:.0f} %", started,
                      _duration(r.duration_s))
    console.print(table)
    crashed = [r for r in runs if r.state == "Crashed?"]
    if crashed:
        console.print(f"[bold red]{len(crashed)} run(s) marked Running whose command is gone[/]"
                      " (killed or crashed): rerun the same command to resume")
