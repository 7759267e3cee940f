"""Answer a waiting release approval from a terminal: Approve or Reject, recorded by name.

The usual answer is Airflow's UI or its API server (``PATCH …/hitlDetails``). Where neither
runs — ``airflow dags test`` on a laptop or in CI — this does what the API's handler does,
against the same metadata database: it fills the task's HITL detail (choice, who, when) and
submits its resume event, so the ApprovalOperator continues exactly as after a UI answer.

Run with Airflow's venv and the same AIRFLOW_HOME as the DAG run:
``.venv-airflow/bin/python orchestrate/airflow/respond.py --dag-id D --choice Approve --by NAME``
(``--wait S``: poll until an approval of that DAG waits, up to S seconds).
"""

from __future__ import annotations

import argparse
import sys
import time


def respond(dag_id: str, choice: str, by: str, wait_s: float) -> str:
    """Answer the first approval of ``dag_id`` waiting for input; its task id."""
    from airflow._shared.timezones import timezone
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import handle_event_submit
    from airflow.triggers.base import TriggerEvent
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    deadline = time.monotonic() + wait_s
    while True:
        with create_session() as session:
            ti = session.scalars(
                select(TaskInstance).where(
                    TaskInstance.dag_id == dag_id,
                    TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
                )
            ).first()
            detail = (
                session.scalars(select(HITLDetail).where(HITLDetail.ti_id == ti.id)).first()
                if ti is not None
                else None
            )
            if ti is not None and detail is not None:
                if choice not in (detail.options or []):
                    raise SystemExit(f"{choice!r} is not one of {detail.options}")
                detail.responded_by = {"id": by, "name": by}
                detail.responded_at = timezone.utcnow()
                detail.chosen_options = [choice]
                detail.params_input = {}
                session.add(detail)
                handle_event_submit(
                    TriggerEvent(detail.as_resume_event_payload()),
                    task_instance=ti,
                    session=session,
                )
                return ti.task_id
        if time.monotonic() > deadline:
            raise SystemExit(f"no approval of {dag_id} waiting after {wait_s:g} s")
        time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dag-id", required=True)
    parser.add_argument("--choice", required=True, choices=["Approve", "Reject"])
    parser.add_argument("--by", required=True, help="who answers (recorded with the answer)")
    parser.add_argument("--wait", type=float, default=0, metavar="S")
    args = parser.parse_args(argv)
    task = respond(args.dag_id, args.choice, args.by, args.wait)
    print(f"{args.choice}: {args.dag_id} {task} (by {args.by})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
