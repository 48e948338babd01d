"""``qor doctor`` against the real services: all well, then each component stopped in turn.

"Stopped" means configured to a place where nothing answers (a free loopback port, a missing
key folder or launcher), the state an operator meets when that service is down; the shared test
services themselves are never stopped, other tests use them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from storage import LocalKeyring
from tests.orchestration.conftest import REPO, VENV_BIN, Depository

COMPONENTS = ("database", "store", "keys", "permissions", "tesseract", "verapdf", "alto-schema",
              "prefect")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def doctor(env: dict[str, str]) -> tuple[int, dict[str, dict[str, object]]]:
    done = subprocess.run([str(VENV_BIN / "qor"), "doctor", "--json"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    report = json.loads(done.stdout)
    return done.returncode, {c["component"]: c for c in report["checks"]}


@pytest.fixture(scope="module")
def healthy_env(
    depository: Depository, prefect_api_url: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """A host configured for the session's depository, with a key-encryption key and Prefect."""
    data_dir = tmp_path_factory.mktemp("doctor") / "qor"
    LocalKeyring(data_dir / "keys").create_key()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("QOR_") or k.startswith(("QOR_TEST_", "QOR_VERAPDF"))}
    env.update({f"QOR_{k.upper()}": v for k, v in depository.settings.items()})
    env.update(QOR_DATA_DIR=str(data_dir), QOR_PREFECT_API_URL=prefect_api_url)
    return env


def test_doctor_says_every_component_works_when_all_are_up(healthy_env: dict[str, str]) -> None:
    code, checks = doctor(healthy_env)
    assert code == 0, checks
    assert set(checks) == set(COMPONENTS)
    assert all(c["ok"] for c in checks.values()), checks
    assert "kaz+rus+eng+osd" in str(checks["tesseract"]["detail"])


def _stopped(component: str, tmp: Path) -> tuple[dict[str, str], str]:
    """Settings that make ``component`` unreachable, and what its report must name."""
    port = free_port()
    if component == "permissions":
        # Issue 15: an embedded register left readable by others (the folder is right).
        folder = tmp / "open-register"
        folder.mkdir(mode=0o700)
        register = folder / "register.sqlite3"
        register.touch()
        register.chmod(0o644)
        return {"QOR_DATABASE_URL": f"sqlite:///{register}"}, f"{register} is 0644"
    return {
        "database": ({"QOR_DATABASE_URL": f"postgresql+psycopg://qor@127.0.0.1:{port}/qor"},
                     f"127.0.0.1:{port}"),
        "store": ({"QOR_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}"}, f"127.0.0.1:{port}"),
        "keys": ({"QOR_KEY_DIR": str(tmp / "lost-keys")}, "lost-keys"),
        "tesseract": ({"QOR_OCR_LANGUAGES": "kaz+rus+eng+xyz"}, "tesseract-ocr-xyz"),
        "verapdf": ({"QOR_VERAPDF": str(tmp / "no-verapdf")}, "QOR_VERAPDF"),
        "alto-schema": ({"QOR_ALTO_SCHEMA": str(tmp / "no-alto" / "alto-4-4.xsd")}, "no-alto"),
        "prefect": ({"QOR_PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}, f"127.0.0.1:{port}"),
    }[component]


def test_doctor_names_the_one_component_that_is_down_for_each_component(
    healthy_env: dict[str, str], tmp_path: Path
) -> None:
    def one_down(component: str) -> tuple[str, int, dict[str, dict[str, object]], str]:
        overrides, named = _stopped(component, tmp_path)
        return (component, *doctor({**healthy_env, **overrides}), named)

    # one doctor per stopped component, three at a time (each starts Python, Java and Tesseract)
    with ThreadPoolExecutor(max_workers=3) as pool:
        reports = list(pool.map(one_down, COMPONENTS))
    for component, code, checks, named in reports:
        assert code == 3, (component, checks)
        assert [name for name, c in checks.items() if not c["ok"]] == [component], checks
        assert named in str(checks[component]["detail"]), checks[component]
