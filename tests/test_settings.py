"""Settings: embedded defaults need no server; production values are plain settings; placeholder
secrets are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from qor.errors import ConfigurationError
from qor.settings import is_placeholder, load_settings
from tests.conftest import qor_environment


def test_embedded_defaults_live_in_the_data_dir(tmp_path: Path) -> None:
    with qor_environment(tmp_path / "d"):
        s = load_settings()
    assert s.effective_database_url == f"sqlite:///{tmp_path / 'd' / 'register.sqlite3'}"
    assert s.effective_store_uri == (tmp_path / "d" / "store").as_uri()
    assert s.effective_key_dir == tmp_path / "d" / "keys"
    assert s.ocr_languages == "kaz+rus+eng"
    assert s.workers >= 1


def test_xdg_data_home_is_the_default_data_dir(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with qor_environment(tmp_path):
        monkeypatch.delenv("QOR_DATA_DIR")
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
        assert load_settings().data_dir == tmp_path / "xdg" / "qor"


def test_toml_file_is_read_and_environment_wins(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "qor.toml"
    config.write_text('library_name = "Ұлттық академиялық кітапхана"\nworkers = 3\n'
                      'store_uri = "s3://depository/bags"\n', encoding="utf-8")
    with qor_environment(tmp_path / "d", config=str(config)):
        s = load_settings()
        assert (s.library_name, s.workers, s.effective_store_uri) == (
            "Ұлттық академиялық кітапхана", 3, "s3://depository/bags")
        monkeypatch.setenv("QOR_WORKERS", "1")
        assert load_settings().workers == 1


@pytest.mark.parametrize("value", ["changeme", "CHANGE-ME", "<secret>", "xxxx", "${SECRET}",
                                   "secret", "your-secret-key", ""])
def test_placeholder_secrets_are_refused(tmp_path: Path, value: str) -> None:
    with qor_environment(tmp_path, s3_access_key="AKIA5EXAMPLE2REAL", s3_secret_key=value), \
            pytest.raises(ConfigurationError) as err:
        load_settings()
    assert "QOR_S3_SECRET_KEY" in err.value.message
    assert err.value.exit_code == 3


def test_placeholder_database_password_is_refused(tmp_path: Path) -> None:
    url = "postgresql+psycopg://qor:changeme@db.example.org/qor"
    with qor_environment(tmp_path, database_url=url), pytest.raises(ConfigurationError):
        load_settings()


def test_real_secrets_pass_and_are_masked(tmp_path: Path) -> None:
    with qor_environment(tmp_path, s3_access_key="AKIA5Q3TRUEKEY", s3_secret_key="f9Kd0s8Zq2",
                         database_url="postgresql+psycopg://qor:Xk29sLq@db/qor"):
        shown = load_settings().redacted()
    assert "f9Kd0s8Zq2" not in str(shown) and "Xk29sLq" not in str(shown)
    assert shown["database_url"] == "postgresql+psycopg://qor:***@db/qor"


def test_invalid_values_are_named(tmp_path: Path) -> None:
    with qor_environment(tmp_path, workers="0", ocr_languages="kaz rus"), \
            pytest.raises(ConfigurationError) as err:
        load_settings()
    assert "workers" in err.value.message and "ocr_languages" in err.value.message


def test_is_placeholder_accepts_real_values() -> None:
    assert not is_placeholder("wJalrXUtnFEMI/K7MDENG/bPxRfiCY")
    assert is_placeholder("  TODO ")


def test_page_preparation_is_set_by_the_operator(tmp_path: Path) -> None:
    # Each preparation step can be switched off and tuned from settings, and the digitise flow
    # hands exactly those values to the capture engine.
    from flows.digitise import capture_options

    with qor_environment(tmp_path, orientation="false", osd_policy="always", deskew="false",
                         deskew_threshold_deg="0.5", ocr_skew_tolerance_deg="0",
                         clean_borders="true", confidence_gate="85", access_jpeg_quality="60",
                         pdf_raster_dpi="400", page_timeout_s="90"):
        options = capture_options(load_settings())
    assert (options.orientation, options.osd_policy, options.deskew) == (False, "always", False)
    assert (options.deskew_threshold_deg, options.ocr_skew_tolerance_deg) == (0.5, 0.0)
    assert options.clean_borders and options.confidence_gate == 85.0
    assert (options.access_jpeg_quality, options.pdf_raster_dpi) == (60, 400)
    assert options.page_timeout_s == 90.0


def test_page_preparation_settings_out_of_range_are_named(tmp_path: Path) -> None:
    with qor_environment(tmp_path, osd_policy="sometimes", confidence_gate="150"), \
            pytest.raises(ConfigurationError) as err:
        load_settings()
    assert "osd_policy" in err.value.message and "confidence_gate" in err.value.message
