"""Issue 15 item 8: files holding personal data or keys are 0600 in 0700 folders, created so by
Qor itself, and ``qor doctor`` names any wrong mode (the CLI run as a subprocess)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from tests.test_cli import _env, qor


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_register_and_keys_are_created_private_and_doctor_names_a_wrong_mode(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "fresh" / "qor"
    env = _env(data_dir)
    qor("keys", "init", env=env)
    qor("items", "add", "KZ-000900", "--title", "Жеке деректер", env=env)
    register = data_dir / "register.sqlite3"
    keys = data_dir / "keys"
    assert _mode(data_dir) == 0o700 and _mode(register) == 0o600
    assert _mode(keys) == 0o700
    key_files = list(keys.iterdir())
    assert key_files and all(_mode(k) == 0o600 for k in key_files)

    def permissions() -> dict[str, object]:
        done = qor("doctor", "--json", env=env, check=False)
        (check,) = [c for c in json.loads(done.stdout)["checks"]
                    if c["component"] == "permissions"]
        return dict(check)

    assert permissions()["ok"] is True
    register.chmod(0o644)
    data_dir.chmod(0o755)
    found = permissions()
    assert found["ok"] is False
    assert f"{register} is 0644, must be 0600" in str(found["detail"])
    assert f"{data_dir} is 0755, must be 0700" in str(found["detail"])
