"""An audit killed half-way (SIGKILL, no chance to clean up) resumes and checks only what was
left; the schedule spreads deep checks so none is ever overdue."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

from integrity.audit import AuditTarget, bag_prefix, plan_deep_checks, run_audit
from storage import FileStore, LocalKeyring
from tests.integrity.fixity_bags import RecordingStore, make_stored_bag, random_files

KILL_AFTER = 5

_KILLED_AUDIT = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from integrity.audit import AuditTarget, run_audit
    from storage import FileStore

    store_root, journal, bag, kill_after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    store = FileStore(Path(store_root))

    def on_progress(stage, done, total):
        if stage == "files" and done >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)   # a crash: nothing gets to clean up

    run_audit([AuditTarget(bag, store.uri)], mode="deep", open_store=lambda u: store,
              journal_dir=Path(journal), workers=1, on_progress=on_progress)
    sys.exit("the audit was supposed to be killed")
""")


def test_killed_audit_resumes_and_reads_only_the_objects_not_yet_checked(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store", create=True)
    made = make_stored_bag([store], bag_id="KZ-5-v1-kill", inventory="KZ-5", work=tmp_path / "w",
                           keyring=LocalKeyring(tmp_path / "keys"),
                           files=random_files(12, 20_000))
    journal = tmp_path / "journal"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_AUDIT, str(store.root), str(journal), made["bag_id"],
         str(KILL_AFTER)], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    (jfile,) = journal.glob("*.jsonl")
    records = [json.loads(x) for x in jfile.read_text().splitlines() if x]
    done_before = {r["path"] for r in records if r["type"] == "file"}
    assert len(done_before) == KILL_AFTER
    assert not any(r["type"] in ("bag", "end") for r in records)

    seen = RecordingStore(store)
    run = run_audit([AuditTarget(made["bag_id"], store.uri)], mode="deep",
                    open_store=lambda _u: seen, journal_dir=journal, workers=1)
    prefix = bag_prefix(made["bag_id"])
    all_hashed = {r.path for r in made["summary"].payload} | {
        r.path for r in made["summary"].tag_files}
    payload_read = {k[len(prefix):] for k in seen.reads if k.startswith(prefix + "data/")}
    # Exactly the payload objects that were not checked before the kill are read again.
    assert payload_read == {p for p in all_hashed if p.startswith("data/")} - done_before
    assert run.resumed and run.run_id == records[0]["run_id"]
    (result,) = run.bags
    assert result.ok and result.resumed_files == KILL_AFTER
    assert result.files_checked == len(all_hashed)

    # The run is closed: the next audit starts afresh and reads everything.
    fresh = RecordingStore(store)
    again = run_audit([AuditTarget(made["bag_id"], store.uri)], mode="deep",
                      open_store=lambda _u: fresh, journal_dir=journal, workers=1)
    assert not again.resumed and again.run_id != run.run_id
    assert len({k for k in fresh.reads if "/data/" in k}) == 12


def test_schedule_checks_every_bag_within_n_days_spread_evenly() -> None:
    every = 7
    start = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
    last = {f"bag-{i:03d}": start - timedelta(hours=i % 5) for i in range(70)}
    checked_on: dict[str, list[int]] = {b: [] for b in last}
    for day in range(1, 43):
        # A daily run at a slightly different time each day; one day is missed altogether.
        now = start + timedelta(days=day, minutes=(day * 37) % 180)
        if day == 20:
            continue
        due = plan_deep_checks(last, every_days=every, now=now)
        assert len(due) <= 10 + 12, "the daily share stays near n / every_days"
        for b in due:
            last[b] = now
            checked_on[b].append(day)
    for b, days in checked_on.items():
        for d1, d2 in zip([0, *days], days, strict=False):
            # Late only by the missed run itself, and caught up at the very next run.
            assert d2 - d1 <= (every + 1 if d1 < 20 < d2 else every), (b, days)
    per_day = [sum(1 for d in checked_on.values() if day in d) for day in range(8, 19)]
    assert min(per_day) >= 9 and max(per_day) <= 11, per_day


def test_schedule_refuses_a_nonsense_period() -> None:
    import pytest

    with pytest.raises(ValueError, match="at least 1"):
        plan_deep_checks({}, every_days=0)
