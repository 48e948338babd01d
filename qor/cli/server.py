"""``qor server start|stop|status``: the resident local orchestration service.

On the embedded defaults Qor's flows report to one local Prefect server per data directory
(:mod:`qor.orchestration`). The first flow-running command starts it; these commands manage it by
hand (start it ahead of a batch, stop it after an upgrade, see where its UI is). With
``QOR_PREFECT_API_URL`` set, the configured server is used instead and these only report on it.
"""

from __future__ import annotations

import typer

from qor.cli._common import JsonOpt, cli_settings, console, emit_json, err_console, fail
from qor.errors import QorError

#: ``status`` exit code when the local server is not running (as ``systemctl status``).
EXIT_NOT_RUNNING = 3

app = typer.Typer(help="The local orchestration service (a Prefect server) that runs flows.",
                  no_args_is_help=True)


@app.command("start")
def start(as_json: JsonOpt = False) -> None:
    """Start the local Prefect server of this data directory, unless it is running already."""
    from qor import orchestration

    settings = cli_settings()
    try:
        orch = orchestration.ensure(
            settings, on_start=lambda: None if as_json else err_console.print(
                "Starting the local Prefect server…"))
    except QorError as e:
        raise fail(e) from e
    runner_pid = None
    if orch.mode == "local":
        from qor.cli import runner

        if runner.ensure_runner(settings, orch.api_url) is not None:
            state = runner.runner_state(settings)
            runner_pid = state.pid if state else None
    data = {"mode": orch.mode, "api_url": orch.api_url, "started": orch.started,
            "pid": orch.server.pid if orch.server else None, "runner_pid": runner_pid}
    if as_json:
        emit_json(data)
    elif orch.mode == "configured":
        console.print(f"A Prefect server is configured (QOR_PREFECT_API_URL={orch.api_url}) and "
                      "answers; Qor runs no local one.")
    else:
        assert orch.server is not None
        verb = "started" if orch.started else "already running"
        console.print(f"local Prefect server {verb}: pid {orch.server.pid}, API "
                      f"{orch.api_url}, UI {orch.server.ui_url}; flow runner pid "
                      f"{runner_pid or '— (not started: flows run in each command)'}")


@app.command("stop")
def stop(as_json: JsonOpt = False) -> None:
    """Stop the local Prefect server (its database stays; the next flow command starts it)."""
    from qor import orchestration
    from qor.cli import runner

    settings = cli_settings()
    runner.stop_runner(settings)
    try:
        stopped = orchestration.stop_local_server(settings)
    except QorError as e:
        raise fail(e) from e
    if as_json:
        emit_json({"stopped": stopped is not None, "pid": stopped.pid if stopped else None})
    elif stopped is None:
        console.print("no local Prefect server is running")
    else:
        console.print(f"stopped the local Prefect server (pid {stopped.pid})")


@app.command("status")
def status(as_json: JsonOpt = False) -> None:
    """Where flows are orchestrated and whether it answers. Exit 0 when it does, 3 when not."""
    from qor import orchestration

    settings = cli_settings()
    configured = orchestration.configured_api_url(settings)
    if configured is not None:
        url = configured[0]
        up = orchestration.healthy(url)
        data: dict[str, object] = {"mode": "configured", "api_url": url, "healthy": up}
    else:
        server, up = orchestration.local_status(settings)
        data = {"mode": "local", "healthy": up, "running": server is not None,
                "database": str(orchestration.server_dir(settings)
                                / orchestration.DATABASE_FILE),
                "log": str(orchestration.log_path(settings))}
        if server is not None:
            from qor.cli import runner

            state = runner.runner_state(settings)
            data.update(api_url=server.api_url, ui_url=server.ui_url, pid=server.pid,
                        started_at=server.started_at, prefect_version=server.prefect_version,
                        runner_pid=state.pid if state else None)
    if as_json:
        emit_json(data)
    elif data["mode"] == "configured":
        console.print(f"configured Prefect server {data['api_url']}: "
                      f"{'[green]answers[/]' if up else '[bold red]does not answer[/]'}")
    elif not data["running"]:
        console.print("local Prefect server: [yellow]not running[/] (the next flow command "
                      f"starts it; or `qor server start`); log {data['log']}")
    else:
        shown = "[green]running[/]" if up else "[yellow]starting or not answering[/]"
        console.print(f"local Prefect server: {shown}, pid {data['pid']}, Prefect "
                      f"{data['prefect_version']}, since {data['started_at']}\n"
                      f"  API {data['api_url']}\n  UI  {data['ui_url']}\n"
                      f"  flow runner pid {data['runner_pid'] or '— (starts with the next flow)'}\n"
                      f"  database {data['database']}\n  log {data['log']}", highlight=False)
    if not up:
        raise typer.Exit(EXIT_NOT_RUNNING)
