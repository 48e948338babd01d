"""The one place where Qor's processing steps start external programs."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from flows.errors import ToolFailed, ToolMissing, ToolTimeout

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToolVersion:
    """An external program found on this machine: its name, launcher path and version string."""

    name: str
    path: Path
    version: str


@dataclass(frozen=True)
class Completed:
    """What a finished program returned (``returncode`` 0 unless ``check=False`` was given)."""

    args: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: str
    seconds: float


def run(
    args: Sequence[str | Path],
    *,
    tool: str,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    input_bytes: bytes | None = None,
    cwd: Path | None = None,
    check: bool = True,
) -> Completed:
    """Run ``args`` and return its output; log the command line and whatever it wrote to stderr.

    ``env`` entries are added to this process's environment. A missing program raises
    :class:`ToolMissing`, running past ``timeout`` seconds :class:`ToolTimeout` (the process is
    killed), a non-zero exit :class:`ToolFailed` carrying stderr (unless ``check`` is false).
    """
    argv = tuple(str(a) for a in args)
    full_env = {**os.environ, **env} if env else None
    logger.debug("running %s", shlex.join(argv))
    started = time.monotonic()
    try:
        proc = subprocess.run(
            argv,
            input=input_bytes,
            capture_output=True,
            timeout=timeout,
            env=full_env,
            cwd=cwd,
            check=False,
        )
    except FileNotFoundError as e:
        raise ToolMissing(f"{tool} not found: {argv[0]} ({e.strerror})") from e
    except subprocess.TimeoutExpired as e:
        stderr = (e.stderr or b"").decode("utf-8", "replace")
        raise ToolTimeout(tool, f"ran past its {timeout:g} s limit", stderr=stderr) from e
    seconds = time.monotonic() - started
    stderr = proc.stderr.decode("utf-8", "replace")
    if stderr.strip():
        logger.debug("%s stderr: %s", tool, stderr.strip()[-2000:])
    if check and proc.returncode != 0:
        raise ToolFailed(tool, f"exited with status {proc.returncode}", stderr=stderr)
    return Completed(argv, proc.returncode, proc.stdout, stderr, seconds)
