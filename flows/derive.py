"""The ``derive`` flow: access derivatives for copies stored without them (``qor copies derive``).

Thin: one task per copy calls :func:`flows.derivation.derive_copy` (plain Python); the flow
chooses the copies and reports progress. A copy already derived is reported as such and left
as it is, so the flow can be run again at any time (and resumes a run that died).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task

from flows import progress
from flows.derivation import DeriveResult, copies_to_derive, derive_copy
from qor.settings import load_settings


@task(name="derive copy", task_run_name="derive {bag_id}")
def derive_one(bag_id: str) -> dict[str, Any]:
    settings = load_settings()
    (facts,) = copies_to_derive(settings, bag_ids=[bag_id])

    def on_step(stage: str, done: int, total: int) -> None:
        progress.report(f"derive-{stage}", done, total)

    result: DeriveResult = derive_copy(settings, facts=facts, work=settings.work_dir / "derive",
                                       on_step=on_step)
    return result.as_dict()


@flow(name="derive", log_prints=False, validate_parameters=True)
def derive(inventory_numbers: list[str] | None = None, bag_ids: list[str] | None = None,
           every: bool = False) -> list[dict[str, Any]]:
    """Give the chosen copies (latest copy of each inventory number, each bag id, or with
    ``every`` all copies) their access derivatives; one result per copy, in bag id order."""
    settings = load_settings()
    chosen = copies_to_derive(settings, inventory_numbers=inventory_numbers or (),
                              bag_ids=bag_ids or (), every=every)
    results: list[dict[str, Any]] = []
    progress.report("derive-copies", 0, len(chosen))
    for done, facts in enumerate(chosen, start=1):
        results.append(derive_one(facts.bag_id))
        progress.report("derive-copies", done, len(chosen))
    return results


def run_derive(*, run_label: str | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    """Run the flow in this process (``qor copies derive``); ``run_label`` is added to the flow
    run's name (the CLI's pid, see :func:`flows.digitise.run_digitise`)."""
    configured = derive.with_options(
        flow_run_name=f"derive · {run_label}" if run_label else None)
    result: list[dict[str, Any]] = configured(**kwargs)
    return result
