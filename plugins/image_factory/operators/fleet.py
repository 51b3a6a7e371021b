"""The fleet rebuild's one operator: start an image's DAG run and wait for it in the triggerer."""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator


class RebuildImageOperator(TriggerDagRunOperator):
    """TriggerDagRunOperator that waits deferred; a failed image run fails it for good.

    The image run's own tasks already retried what could heal, so a retry here would only build the
    image again from scratch: retries cover trouble starting the run, not a build that failed.
    """

    def execute_complete(self, context: Any, event: Any) -> Any:
        from airflow.sdk.exceptions import AirflowException, AirflowFailException

        try:
            return super().execute_complete(context, event)
        except AirflowFailException:
            raise
        except AirflowException as exc:
            raise AirflowFailException(f"{exc} (see that run's failed task)") from exc
