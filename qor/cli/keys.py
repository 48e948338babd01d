"""``qor keys …``: the key-encryption keys that protect every stored copy (R13)."""

from __future__ import annotations

from typing import Annotated

import typer

from qor.cli._common import (
    JsonOpt,
    cli_settings,
    console,
    current_actor,
    emit_json,
    fail,
)
from qor.errors import QorError

app = typer.Typer(help="Key-encryption keys that protect every stored copy (R13).",
                  no_args_is_help=True)

@app.command("init")
def keys_init(as_json: JsonOpt = False) -> None:
    """Create the local keyring (0700 folder, 0600 key file) if there is none; show the current key.

    Keep a copy of the key folder somewhere safe and separate: without it no copy can be read.
    """
    settings = cli_settings()
    from qor import wiring

    try:
        keyring = wiring.keyring(settings)
        current = keyring.current_kek_id
        ids = list(keyring.kek_ids())
    except QorError as e:
        raise fail(e) from e
    if as_json:
        emit_json({"key_dir": str(settings.effective_key_dir), "current": current, "keys": ids})
    else:
        console.print(f"keyring {settings.effective_key_dir}: current key [bold]{current}[/]"
                      f" ({len(ids)} key(s))")


@app.command("rotate")
def keys_rotate(
    retire_old: Annotated[bool, typer.Option(
        "--retire-old", help="Delete the old key files once every bag is re-wrapped.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Make a new key the current one and re-wrap every bag's data key under it.

    No stored object is rewritten (they may be under retention): only the wrapping of each
    bag's data key changes, in the register and as a key record beside the bags.
    """
    settings = cli_settings()
    from flows.keys import rotate_all

    try:
        report = rotate_all(settings, actor=current_actor(), retire_old=retire_old)
    except QorError as e:
        raise fail(e) from e
    if as_json:
        emit_json({"new_kek_id": report.new_kek_id, "rewrapped": list(report.rewrapped),
                    "already_current": list(report.already_current),
                    "retired": list(report.retired)})
        return
    console.print(f"new current key [bold]{report.new_kek_id}[/]; "
                  f"{len(report.rewrapped)} bag(s) re-wrapped; payloads untouched")
    if report.retired:
        console.print(f"retired: {', '.join(report.retired)}")
