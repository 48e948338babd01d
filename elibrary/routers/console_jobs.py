"""The operator's digitisation queue: launch ``qor digitise`` on a scans folder of the server,
watch runs progress live, read each run's per-page results and flagged pages.

The runs listed are ``qor jobs``' (:func:`qor.orchestration.recent_runs`); a launch runs the
operator's own command (:mod:`elibrary.launches`), and its page shows what that command's
``--json`` summary reports. Launching is recorded in the hash-chained audit log
(``digitise.launch``, actor ``staff:<name>``). The pages poll small JSON answers for their live
figures (``/static/console-jobs.js``; no script from elsewhere).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from catalog_sync import audit, register
from catalog_sync.errors import ItemNotFound
from elibrary import console
from elibrary.accounts import Principal
from elibrary.console import OPERATOR, form_text
from elibrary.context import Elibrary, Lib, Visitor
from elibrary.errors import InvalidParameter, ScanFolderRefused
from elibrary.launches import (
    CommandLauncher,
    Launch,
    LaunchStatus,
    launch_digitise,
    launch_status,
    new_launch_id,
    recent_launches,
    scan_folder,
    scan_folders,
)
from qor.errors import QorError

router = APIRouter()
ROLES = (OPERATOR,)


def _(message: str) -> str:  # marks a message for extraction; translated when shown
    return message


#: What the page says for each kind of refused folder (R10: nothing outside the scans root).
REFUSALS = {
    "empty": _("Give a folder under the scans root {root}."),
    "root": _("The scans root {root} cannot be read on the server."),
    "outside": _("The folder {folder} is outside the scans root {root}: only folders under "
                 "it can be digitised from the console."),
    "symlink": _("The folder {folder} is a symbolic link out of the scans root {root}: "
                 "refused."),
    "entry_symlink": _("{entry} in the folder {folder} is a symbolic link out of the scans "
                       "root {root}: refused."),
    "missing": _("There is no folder {folder} under the scans root {root}."),
}


#: The states of a launched run, as the pages name them.
STATES = (_("running"), _("completed"), _("failed"), _("stopped"))


def _runs(lib: Elibrary) -> tuple[list[Any], str | None]:
    from qor import orchestration

    api = lib.config.jobs_api_url
    if not api:
        return [], None
    try:
        return orchestration.recent_runs(api, limit=50), None
    except QorError as e:
        return [], e.message


def _jobs_page(request: Request, lib: Elibrary, visitor: Visitor, session: Session, *,
               status: int = 200, error: str | None = None,
               asked: tuple[str, str] = ("", "")) -> Response:
    runs, api_error = _runs(lib)
    launcher = lib.config.launcher
    root = launcher.scans_root if launcher is not None else None
    return console.render(
        request, lib, visitor, session, "console_jobs.html", status=status, runs=runs,
        api=lib.config.jobs_api_url, api_error=api_error, error=error, scans_root=root,
        folders=scan_folders(root) if root else [],
        launches=recent_launches(launcher) if launcher else [], asked=asked)


@router.get("/staff/jobs", response_class=HTMLResponse)
def jobs(request: Request, lib: Lib) -> Response:
    def show(session: Session, visitor: Visitor, _who: Principal) -> Response:
        return _jobs_page(request, lib, visitor, session)

    return console.page(request, lib, ROLES, show)


def _run_json(lib: Elibrary, status: LaunchStatus, *, ended_too: bool = True) -> dict[str, Any]:
    """A launch's live figures: its state, and its flow run's state and progress (asked of the
    orchestration server only for a running launch unless ``ended_too``)."""
    ask = ended_too or status.state == "running"
    run = _flow_run(lib, status.launch) if ask else None
    progress = 100.0 if status.state == "completed" else (
        run.progress if run is not None else None)
    return {"id": status.launch.id, "state": status.state,
            "flow_state": run.state if run is not None else None,
            "progress": None if progress is None else round(progress, 1),
            "done": status.state != "running"}


@router.get("/staff/jobs/live.json")
def jobs_live(request: Request, lib: Lib) -> Response:
    """The jobs page's live figures: every listed run's state and progress."""
    def show(session: Session, visitor: Visitor, _who: Principal) -> Response:
        runs, api_error = _runs(lib)
        launcher = lib.config.launcher
        launches = recent_launches(launcher) if launcher else []
        return JSONResponse({
            "runs": [{"id": r.id, "flow": r.flow, "name": r.name, "state": r.state,
                      "progress": r.progress, "started": (r.started or "")[:19]}
                     for r in runs],
            "launches": [_run_json(lib, s, ended_too=False) for s in launches],
            "error": api_error})

    return console.page(request, lib, ROLES, show)


def _flow_run(lib: Elibrary, launch: Launch) -> Any:
    """The flow run of ``launch`` on the orchestration server (its name ends with the
    command's ``pid N@host``), or None when none is known (yet)."""
    from qor import orchestration

    api = lib.config.jobs_api_url
    if not api:
        return None
    try:
        runs = orchestration.recent_runs(api, limit=5, name_like=launch.run_label)
    except QorError:
        return None
    mine = [r for r in runs if r.name.endswith(launch.run_label)
            and r.name.startswith(launch.inventory_number)
            and (r.started or "9999") >= launch.started_at[:19]]
    return mine[0] if mine else None


def _launcher(lib: Elibrary) -> CommandLauncher:
    if lib.config.launcher is None:
        raise InvalidParameter("run", "this server launches no command")
    return lib.config.launcher


def _scans_root(launcher: CommandLauncher) -> Path:
    if launcher.scans_root is None:
        raise InvalidParameter("folder", "no scans root is configured (elibrary_scans_root)")
    return launcher.scans_root


def _launch(request: Request, lib: Elibrary, form: Any) -> Response:
    def act(session: Session, visitor: Visitor, who: Principal) -> Response:
        t = lib.gettext(visitor.lang)
        launcher = _launcher(lib)
        scans_root = _scans_root(launcher)
        inv = form_text(form, "inventory", limit=64)
        asked = form_text(form, "folder", limit=1024)
        root = str(scans_root)

        def refuse(message: str) -> Response:
            session.rollback()
            return _jobs_page(request, lib, visitor, session, status=400, error=message,
                              asked=(inv, asked))

        try:
            folder = scan_folder(scans_root, asked)
        except ScanFolderRefused as e:
            # R10: the server reads nothing outside the scans root for the console.
            return refuse(t(REFUSALS[e.kind]).format(folder=asked, root=root,
                                                     entry=e.entry or ""))
        if not inv:
            return refuse(t("Give the item's inventory number."))
        try:
            register.get_item(session, inv)
        except ItemNotFound:
            return refuse(t("There is no item {inv} in the register.").format(inv=inv))
        launch_id = new_launch_id()
        shown = str(folder.relative_to(scans_root.resolve()))
        audit.append(session, actor=console.actor(who), action="digitise.launch",
                     entity="item", key=inv, before=None,
                     after={"inventory_number": inv, "scans": shown, "run": launch_id})
        try:
            launch_digitise(launcher, folder=folder, shown_as=shown, inventory_number=inv,
                            actor=console.actor(who), launch_id=launch_id)
        except OSError as e:
            return refuse(t("The digitise command could not be started: {reason}").format(
                reason=e))
        session.commit()
        return RedirectResponse(f"/staff/jobs/runs/{launch_id}", status_code=303)

    return console.post(request, lib, form, ROLES, act)


@router.post("/staff/jobs/digitise")
async def launch(request: Request, lib: Lib) -> Response:
    """Launch ``qor digitise`` on a folder under the scans root for an inventory number."""
    form = await request.form()
    return await anyio.to_thread.run_sync(lambda: _launch(request, lib, form))


def _status(lib: Elibrary, launch_id: str) -> LaunchStatus:
    return launch_status(_launcher(lib), launch_id[:32])


def _run_page(request: Request, lib: Elibrary, launch_id: str) -> Response:
    def show(session: Session, visitor: Visitor, _who: Principal) -> Response:
        status = _status(lib, launch_id)
        live = _run_json(lib, status)
        return console.render(request, lib, visitor, session, "console_run.html",
                              run=status, live=live, summary=status.summary or {})

    return console.page(request, lib, ROLES, show)


def _run_live(request: Request, lib: Elibrary, launch_id: str) -> Response:
    def show(session: Session, visitor: Visitor, _who: Principal) -> Response:
        return JSONResponse(_run_json(lib, _status(lib, launch_id)))

    return console.page(request, lib, ROLES, show)


@router.get("/staff/jobs/runs/{launch_id}.json")
def run_live(request: Request, lib: Lib, launch_id: str) -> Response:
    """A launched run's state and progress (the run page polls it)."""
    return _run_live(request, lib, launch_id)


@router.get("/staff/jobs/runs/{launch_id}", response_class=HTMLResponse)
def run_page(request: Request, lib: Lib, launch_id: str) -> Response:
    """A launched run: its state and progress, then its summary and per-page results."""
    return _run_page(request, lib, launch_id)
