"""The console's launcher comes from the settings: ``elibrary_scans_root`` must be an absolute
folder on the server (or unset: nothing can be digitised from the console); launches are
recorded under the data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from elibrary.config import load_elibrary_settings, make_config
from qor.errors import ConfigurationError
from qor.settings import load_settings
from tests.conftest import qor_environment


def test_the_scans_root_setting_makes_the_launcher(tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    with qor_environment(tmp_path / "data", elibrary_scans_root=str(scans),
                         elibrary_secret_key="a test secret of enough length"):
        config = make_config(load_settings(), load_elibrary_settings())
    assert config.launcher is not None
    assert config.launcher.scans_root == scans
    assert config.launcher.runs_dir == tmp_path / "data" / "console-runs"


def test_without_a_scans_root_the_console_digitises_nothing(tmp_path: Path) -> None:
    with qor_environment(tmp_path / "data",
                         elibrary_secret_key="a test secret of enough length"):
        config = make_config(load_settings(), load_elibrary_settings())
    assert config.launcher is not None and config.launcher.scans_root is None


@pytest.mark.parametrize("root", ["relative/scans", "/no/such/folder/anywhere"])
def test_a_scans_root_that_is_not_an_absolute_folder_is_refused(
    tmp_path: Path, root: str
) -> None:
    with qor_environment(tmp_path / "data", elibrary_scans_root=root,
                         elibrary_secret_key="a test secret of enough length"), \
            pytest.raises(ConfigurationError, match="elibrary_scans_root"):
        make_config(load_settings(), load_elibrary_settings())
