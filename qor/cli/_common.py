"""What every ``qor`` command shares: consoles, settings, error output, JSON, orchestration.

Output rules (the operator's contract):

* a refusal or failure is **one line per problem** on stderr (``error: <thing>: <reason>``) and
  the error's ``exit_code``; a traceback only with ``qor --debug``;
* ``--json`` prints JSON only on stdout; progress and notices go to stderr;
* Prefect's own run logs (``Task run failed…`` with tracebacks) go to the orchestration server
  (``qor jobs``, the Prefect UI), never to the terminal unless ``--debug``.

Commands import heavy modules (Prefect, the register, boto3) inside their bodies, so a command
pays only for what it uses: ``qor copies show`` never imports Prefect.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from qor.errors import QorError

if TYPE_CHECKING:
    from qor.orchestration import Orchestration
    from qor.settings import QorSettings

console = Console()
err_console = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]
LangOpt = Annotated[str | None, typer.Option(
    "--lang", help="Language of the report's HTML: kk, ru or en (default: the report_language "
                   "setting, QOR_REPORT_LANGUAGE, or en). CSV and JSON keep English keys.")]


def report_language(lang: str | None, settings: QorSettings) -> str:
    """``--lang`` if given (checked), else the ``report_language`` setting."""
    if lang is None:
        return settings.report_language
    if lang not in ("kk", "ru", "en"):
        raise typer.BadParameter(f"{lang!r}: one of kk, ru, en", param_hint="--lang")
    return lang

#: Exit code of an unexpected error (a bug): ``EX_SOFTWARE`` of sysexits.h.
EXIT_INTERNAL = 70

QOR_LOGGERS = ("qor", "flows", "storage", "integrity", "catalog_sync", "elibrary")


class _Options:
    debug: bool = False
    verbosity: int = 0


options = _Options()


def configure_logging(*, verbosity: int, debug: bool) -> None:
    """Qor's loggers to stderr (warnings; ``-v`` info, ``-vv`` or ``--debug`` debug)."""
    from rich.logging import RichHandler

    options.verbosity, options.debug = verbosity, debug
    level = logging.DEBUG if debug else [logging.WARNING, logging.INFO, logging.DEBUG][
        min(verbosity, 2)]
    handler = RichHandler(console=err_console, show_path=False, show_time=debug)
    handler.set_name("qor-console")
    if verbosity == 0 and not debug:
        handler.addFilter(_outside_runs)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if h.get_name() != "qor-console"]
    root.addHandler(handler)
    root.setLevel(level)


def _outside_runs(record: logging.LogRecord) -> bool:
    """Drop records logged inside a flow or task run: they go to the run's log on the
    orchestration server (``qor jobs``, the UI), and what they report reaches the operator
    as the command's own result or error lines. ``-v`` shows them too."""
    context = sys.modules.get("prefect.context")
    if context is None:
        return True
    return context.FlowRunContext.get() is None and context.TaskRunContext.get() is None


def quiet_prefect() -> None:
    """After Prefect configured logging on import: its console handler off the root logger (ours
    stays), and run logs (``prefect.flow_runs``/``task_runs``) to the API only, unless debug."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if type(h).__name__ == "PrefectConsoleHandler":
            root.removeHandler(h)
    if not any(h.get_name() == "qor-console" for h in root.handlers):
        configure_logging(verbosity=options.verbosity, debug=options.debug)
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).propagate = options.debug
    # "Still processing items" while Prefect drains its event queue at exit is not the
    # operator's business (the events are delivered; the warning is about timing).
    for name in ("prefect._internal", "prefect.events", "EventsWorker", "APILogWorker"):
        logging.getLogger(name).setLevel(logging.DEBUG if options.debug else logging.ERROR)


def _prepare_environment(settings: QorSettings) -> None:
    """Point Prefect at Qor's data directory before it loads (never the user's own profile)."""
    from qor.orchestration import client_environment

    for key, value in client_environment(settings).items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")


def cli_settings() -> QorSettings:
    """The settings in force, or exit with the configuration error's one line."""
    from qor.settings import load_settings

    try:
        settings = load_settings()
    except QorError as e:
        raise fail(e) from e
    _prepare_environment(settings)
    return settings


def flow_settings(*, quiet: bool = False) -> tuple[QorSettings, Orchestration]:
    """Settings for a command that runs a flow: the orchestration server found or started
    (with a note on stderr the first time, which takes a while), Prefect pointed at it."""
    from qor import orchestration

    settings = cli_settings()

    def starting() -> None:
        if not quiet:
            err_console.print("Starting Qor's local orchestration service (Prefect server, "
                              "first use only; about 10 s, longer on a busy machine)…",
                              highlight=False, soft_wrap=True)

    try:
        orch = orchestration.ensure(settings, on_start=starting)
    except QorError as e:
        raise fail(e) from e
    orchestration.apply_environment(orch)
    # Prefect makes its home on import and warns on stderr when it cannot (a fresh data dir).
    orchestration.server_dir(settings).mkdir(parents=True, exist_ok=True, mode=0o700)
    return settings, orch


def load_prefect() -> None:
    """Load Prefect in this process (to run a flow here) with its output quieted."""
    import prefect.main  # noqa: F401  (sets up Prefect's logging on import; quieted next)

    quiet_prefect()


@contextmanager
def flow_run_context() -> Iterator[None]:
    """Around a flow run from a command: no heartbeat thread (its shutdown costs up to a second;
    a dead command is told by the pid in its run's name, :func:`run_label`), and Prefect's
    queues drained before the command prints its result.

    No ``prefect.tags`` here: Prefect takes a concurrency slot per tag on every task run, one
    API round trip each.
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        try:
            yield
        finally:
            _drain_prefect()


@contextmanager
def stage_progress(labels: dict[str, str], *, hidden: bool) -> Iterator[
        Callable[[str, int, int], None]]:
    """A Rich progress bar on stderr, one line per stage, fed by the callback it yields
    (``on_progress(stage, done, total)``, as :mod:`flows.progress` reports). Not drawn when
    ``hidden`` (``--json``) or when stderr is no terminal; gone when the block ends."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, transient=True,
                  disable=hidden or not err_console.is_terminal) as bar:
        tasks: dict[str, Any] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(labels.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield on_progress


def run_label() -> str:
    """What a command adds to its flow run's name: ``pid 4242@host`` (``qor jobs`` reads it).

    The pid is the operator's command's, also when the resident runner's child runs it
    (``qor.cli.delegate``): that is the process the operator sees, and kills."""
    import socket

    from qor.cli.delegate import COMMAND_PID

    pid = os.environ.get(COMMAND_PID, "")
    return f"pid {pid if pid.isdigit() else os.getpid()}@{socket.gethostname()}"


def _drain_prefect() -> None:
    quiet_prefect()  # a flow run may have set Prefect's logging up again
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        EventsWorker.drain_all(timeout=10)
        APILogWorker.drain_all(timeout=10)
    except Exception:  # draining is best effort; Prefect drains again at exit
        logging.getLogger(__name__).debug("draining Prefect's queues failed", exc_info=True)


def fail(exc: QorError) -> typer.Exit:
    """Print ``exc`` as one line on stderr (with its traceback under ``--debug``); the exit to
    raise, carrying the error's exit code."""
    if options.debug:
        remote = getattr(exc, "remote_traceback", "")  # a job the resident runner ran
        err_console.print(remote or "".join(traceback.format_exception(exc)), highlight=False,
                          markup=False)
    for problem in exc.problem_lines():
        err_console.print(f"[bold red]error:[/] {_one_line(problem)}", highlight=False,
                          soft_wrap=True)
    return typer.Exit(exc.exit_code)


def fail_unexpected(exc: BaseException) -> int:
    """An error Qor did not raise on purpose: one line naming it, the traceback with --debug."""
    if options.debug:
        err_console.print("".join(traceback.format_exception(exc)), highlight=False,
                          markup=False)
        hint = ""
    else:
        hint = " (run again with `qor --debug …` for the traceback, and report it)"
    err_console.print(f"[bold red]internal error:[/] {type(exc).__name__}: "
                      f"{_one_line(str(exc))}{hint}", highlight=False, soft_wrap=True)
    return EXIT_INTERNAL


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " ".join(lines) if lines else "(no message)"


def emit_json(data: object) -> None:
    """``data`` as indented UTF-8 JSON on stdout (dates and paths as strings)."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def current_actor() -> str:
    """Who runs the command, for the register's records: ``QOR_ACTOR`` or the login name."""
    import getpass

    return os.environ.get("QOR_ACTOR") or getpass.getuser()


def problem_dict(problem: object) -> dict[str, object]:
    """A validation problem (a dataclass) as JSON: its kind, message and fields."""
    import dataclasses

    fields = (dataclasses.asdict(problem)
              if dataclasses.is_dataclass(problem) and not isinstance(problem, type) else {})
    return {"problem": type(problem).__name__, "message": str(problem), **fields}
