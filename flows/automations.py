"""Prefect automations that resume a digitise run whose worker died, without an operator.

A worker host that crashes (power, OOM, SIGKILL) cannot tell the Prefect server anything: the
run stays ``Running`` for ever. Prefect's own machinery handles it ("zombie flow runs" in
Prefect's documentation), and this module only declares it for Qor's deployment:

1. The deployment's flow-run processes emit a heartbeat event every
   ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` seconds (set in ``infra/prefect.yaml``'s job variables).
2. **Crash zombie runs** — a proactive trigger: after a heartbeat of one of the deployment's
   runs, if neither another heartbeat nor a final state arrives within ``expiry_seconds``, the
   server marks the run ``Crashed``.
3. **Resume crashed runs** — a reactive trigger on ``prefect.flow-run.Crashed`` of the
   deployment's runs: the run goes back to ``Scheduled`` and any worker of the pool picks it up
   (same flow run: persisted OCR results and the finished bag are reused; never a second copy).
   Bounded by Prefect's own attempt counter (the event's ``prefect.run-count`` label): a run that
   has already been attempted ``max_attempts`` times stays ``Crashed`` for an operator, so a
   batch that kills its worker every time does not loop for ever.

:func:`apply_digitise_automations` creates or updates both on the server (idempotent: matched by
name), after ``prefect deploy``; ``qor automations apply`` calls it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from qor.errors import ConfigurationError

if TYPE_CHECKING:
    from prefect.automations import AutomationCore
    from prefect.client.orchestration import SyncPrefectClient

logger = logging.getLogger(__name__)

#: The deployment the automations watch, as ``<flow name>/<deployment name>``.
DIGITISE_DEPLOYMENT = "digitise/digitise"
#: The job variable (flow-run environment) that makes a run emit heartbeats.
HEARTBEAT_VARIABLE = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"
#: Prefect refuses heartbeat frequencies below this (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` ≥ 30).
MIN_HEARTBEAT_SECONDS = 30
_FINAL_EVENTS = ("Completed", "Failed", "Cancelled", "Crashed")


@dataclass(frozen=True)
class ResumePolicy:
    """When a silent run counts as dead, and how often it is resumed automatically.

    ``expiry_seconds`` must exceed the deployment's heartbeat frequency (a run is declared dead
    after one missed heartbeat plus margin; three heartbeats' worth is Prefect's suggestion).
    ``max_attempts`` counts every attempt of the run, the first included: 3 means a crashed run
    is resumed at most twice.
    """

    expiry_seconds: int = 90
    max_attempts: int = 3

    def validate(self, *, heartbeat_seconds: int) -> None:
        """Raise :class:`ConfigurationError` if the policy cannot work with that heartbeat."""
        if heartbeat_seconds < MIN_HEARTBEAT_SECONDS:
            raise ConfigurationError(
                f"heartbeat every {heartbeat_seconds} s: Prefect emits flow-run heartbeats at "
                f"most every {MIN_HEARTBEAT_SECONDS} s; set {HEARTBEAT_VARIABLE} to "
                f"{MIN_HEARTBEAT_SECONDS} or more")
        if self.expiry_seconds <= heartbeat_seconds:
            raise ConfigurationError(
                f"expiry of {self.expiry_seconds} s is not longer than the heartbeat interval "
                f"({heartbeat_seconds} s): every healthy run would be marked Crashed; use at "
                f"least {heartbeat_seconds + 15} s")
        if self.max_attempts < 2:
            raise ConfigurationError(
                f"max_attempts={self.max_attempts}: at least 2 (the first attempt and one "
                "automatic resume), or do not apply the automations")


@dataclass(frozen=True)
class AppliedAutomation:
    """One automation as it now stands on the server."""

    name: str
    automation_id: UUID
    created: bool
    """``True`` if it was new, ``False`` if an existing one of that name was updated."""


def automation_names(deployment: str = DIGITISE_DEPLOYMENT) -> tuple[str, str]:
    """The names of the two automations of ``deployment`` (zombie detection, resume)."""
    return (f"qor: crash silent runs of {deployment}",
            f"qor: resume crashed runs of {deployment}")


def digitise_automations(
    deployment_id: UUID, *, deployment: str = DIGITISE_DEPLOYMENT, policy: ResumePolicy,
) -> list[AutomationCore]:
    """The two automations for the deployment with id ``deployment_id`` (not yet applied)."""
    from prefect.automations import AutomationCore, EventTrigger, Posture, ResourceSpecification
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState

    # Only this deployment's runs: other flows may emit heartbeats at Prefect's default
    # frequency (180 s), which a shorter expiry would wrongly declare dead.
    of_deployment = ResourceSpecification({
        "prefect.resource.id": f"prefect.deployment.{deployment_id}",
        "prefect.resource.role": "deployment",
    })
    crash_name, resume_name = automation_names(deployment)
    crash = AutomationCore(
        name=crash_name,
        description=(f"Marks a Running flow run of {deployment} Crashed when its heartbeats stop "
                     f"for {policy.expiry_seconds} s (worker host died). Applied by Qor."),
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat",
                    *(f"prefect.flow-run.{s}" for s in _FINAL_EVENTS)},
            match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
            match_related=of_deployment,
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=policy.expiry_seconds),
        ),
        actions=[ChangeFlowRunState(
            state=StateType.CRASHED, name=None, force=False,
            message=f"no heartbeat for {policy.expiry_seconds} s: the worker or its host died",
        )],
    )
    resume = AutomationCore(
        name=resume_name,
        description=(f"Puts a Crashed flow run of {deployment} back to Scheduled so another "
                     f"worker resumes it, while it has had fewer than {policy.max_attempts} "
                     "attempts. Applied by Qor."),
        trigger=EventTrigger(
            expect={"prefect.flow-run.Crashed"},
            match=ResourceSpecification({
                "prefect.resource.id": "prefect.flow-run.*",
                # Prefect's own attempt counter (the state's run count): no home-made tally.
                "prefect.run-count": [str(n) for n in range(1, policy.max_attempts)],
            }),
            match_related=of_deployment,
            for_each={"prefect.resource.id"},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[ChangeFlowRunState(
            # not forced: Prefect's rules still refuse to reschedule a run without deployment
            state=StateType.SCHEDULED, name=None, force=False,
            message="resumed automatically after the run crashed (docs/operations.md)",
        )],
    )
    return [crash, resume]


def heartbeat_seconds(job_variables: dict[str, Any] | None) -> int | None:
    """The heartbeat frequency a deployment's job variables give its runs, if any."""
    env = (job_variables or {}).get("env") or {}
    value = env.get(HEARTBEAT_VARIABLE) if isinstance(env, dict) else None
    if value is None or str(value).strip() == "":
        return None
    try:
        return int(str(value))
    except ValueError as e:
        raise ConfigurationError(
            f"{HEARTBEAT_VARIABLE}={value!r} in the deployment's job variables is not a whole "
            "number of seconds") from e


def apply_digitise_automations(
    *, policy: ResumePolicy, deployment: str = DIGITISE_DEPLOYMENT,
    client: SyncPrefectClient | None = None,
) -> list[AppliedAutomation]:
    """Create or update the automations of ``deployment`` on the Prefect server (idempotent).

    Run after ``prefect deploy``: the deployment must exist, and its job variables must set
    ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` below ``policy.expiry_seconds``. Raises
    :class:`ConfigurationError` (naming the server and the deployment) otherwise.
    """
    from prefect.client.orchestration import get_client

    if client is None:
        with get_client(sync_client=True) as own:
            return apply_digitise_automations(policy=policy, deployment=deployment, client=own)
    dep = _read_deployment(client, deployment)
    beat = heartbeat_seconds(dep.job_variables)
    if beat is None:
        raise ConfigurationError(
            f"deployment {deployment} sets no {HEARTBEAT_VARIABLE} in its job variables, so its "
            "runs emit no heartbeats and a dead run could never be detected; add it to "
            "infra/prefect.yaml and re-deploy")
    policy.validate(heartbeat_seconds=beat)
    applied: list[AppliedAutomation] = []
    for automation in digitise_automations(UUID(str(dep.id)), deployment=deployment,
                                           policy=policy):
        existing = client.read_automations_by_name(automation.name)
        if existing:
            client.update_automation(existing[0].id, automation)
            for extra in existing[1:]:  # a name is one automation: drop duplicates
                client.delete_automation(extra.id)
            applied.append(AppliedAutomation(automation.name, existing[0].id, created=False))
        else:
            applied.append(AppliedAutomation(automation.name,
                                             client.create_automation(automation), created=True))
        logger.info("automation %r applied", automation.name)
    return applied


def remove_digitise_automations(
    *, deployment: str = DIGITISE_DEPLOYMENT, client: SyncPrefectClient | None = None,
) -> int:
    """Delete the automations of ``deployment``; returns how many were deleted."""
    from prefect.client.orchestration import get_client

    if client is None:
        with get_client(sync_client=True) as own:
            return remove_digitise_automations(deployment=deployment, client=own)
    removed = 0
    for name in automation_names(deployment):
        for automation in client.read_automations_by_name(name):
            client.delete_automation(automation.id)
            removed += 1
    return removed


def _read_deployment(client: SyncPrefectClient, deployment: str) -> Any:
    from prefect.exceptions import ObjectNotFound

    try:
        return client.read_deployment_by_name(deployment)
    except ObjectNotFound as e:
        raise ConfigurationError(
            f"deployment {deployment} is not on the Prefect server at {client.api_url}: deploy "
            "infra/prefect.yaml first (docs/operations.md)") from e
    except Exception as e:  # httpx errors: the server is down or the URL is wrong
        raise ConfigurationError(
            f"cannot read deployment {deployment} from the Prefect server at {client.api_url}: "
            f"{type(e).__name__}: {e}. Is the server running and PREFECT_API_URL right?") from e
