"""``qor settings``: the settings in force and where the data lives."""

from __future__ import annotations

from rich.table import Table

from qor.cli._common import (
    JsonOpt,
    cli_settings,
    console,
    emit_json,
)


def show_settings(as_json: JsonOpt = False) -> None:
    """Show the settings in force (secrets masked) and where the data lives."""
    settings = cli_settings()
    data = settings.redacted()
    data.update(effective_database_url=settings.effective_database_url,
                effective_store_uri=settings.effective_store_uri,
                effective_key_dir=str(settings.effective_key_dir))
    if as_json:
        emit_json(data)
        return
    table = Table(title="Qor settings (QOR_* variables, qor.toml)")
    table.add_column("setting")
    table.add_column("value")
    for k, v in data.items():
        table.add_row(k, "" if v is None else str(v))
    console.print(table)
