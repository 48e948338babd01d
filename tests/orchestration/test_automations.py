"""What ``qor automations apply`` refuses: settings under which the automations could not work.

The automations themselves are proven on the real server in test_deployment.py (a killed worker's
run resumed by another; a run that keeps crashing left Crashed after its last attempt).
"""

from __future__ import annotations

import pytest

from flows.automations import ResumePolicy, apply_digitise_automations, heartbeat_seconds
from qor.errors import ConfigurationError
from tests.orchestration.conftest import Orchestra


def test_an_expiry_not_longer_than_the_heartbeat_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="every healthy run would be marked Crashed"):
        ResumePolicy(expiry_seconds=30).validate(heartbeat_seconds=30)
    ResumePolicy(expiry_seconds=45).validate(heartbeat_seconds=30)


def test_a_heartbeat_faster_than_prefect_emits_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="PREFECT_FLOWS_HEARTBEAT_FREQUENCY"):
        ResumePolicy().validate(heartbeat_seconds=5)


def test_fewer_than_two_attempts_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="max_attempts=1"):
        ResumePolicy(max_attempts=1).validate(heartbeat_seconds=30)


def test_the_heartbeat_is_read_from_the_deployment_job_variables() -> None:
    assert heartbeat_seconds({"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}}) == 30
    assert heartbeat_seconds({"env": {"PREFECT_LOGGING_LEVEL": "INFO"}}) is None
    assert heartbeat_seconds(None) is None
    with pytest.raises(ConfigurationError, match="not a whole number"):
        heartbeat_seconds({"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "half a minute"}})


def test_applying_for_a_deployment_not_on_the_server_names_it(orchestra: Orchestra) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: orchestra.api_url}), \
            pytest.raises(ConfigurationError, match="digitise/never-deployed is not on"):
        apply_digitise_automations(policy=ResumePolicy(), deployment="digitise/never-deployed")
