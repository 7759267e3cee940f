"""Outlines of the five runbooks: (kind, source) cells, kind in md / parameters / code.

Markdown quotes the deployment plan; each code cell is one library call and its result.
"""

PARAMETERS = '''
env = "sandbox"
release = "v1.4.0"
previous_release = "v1.3.0"
params_file = "params/sandbox.yaml"
operator = ""
approvals = {}
execute = False
run_id = ""
'''

START = '''
import deploybook as db

run = db.start(
    "{name}", env=env, release=release, previous_release=previous_release,
    params_file=params_file, operator=operator, execute=execute, run_id=run_id,
)
run
'''

GATE = [
    ("md", "## Gate\n\nAny failed critical check above stops here: the record shows where and why."),
    ("code", "run.finish()"),
]


def start(name: str) -> tuple[str, str]:
    return ("code", START.replace("{name}", name))


OUTLINES = {
    "01-preconditions": [
        ("md", """
# 01 — Preconditions

Deployment plan sections **5 Schedule**, **6 Preconditions**, **8 Artifacts**,
**9 Configuration & secrets** and **10 Pre-deploy checklist**.

> *All Epic stories DONE, zero test failures, required secrets configured, external rate
> limits reviewed* — nothing is deployed until every critical check below passes.

This runbook changes nothing. Set the parameters below, or pass them with
`deploybook run 01-preconditions --env ENV --release vX.Y.Z -p NAME VALUE`.
"""),
        ("parameters", PARAMETERS + 'rate_limits_reviewed_by = ""\n'),
        start("01-preconditions"),
        ("md", """
## 6 — Required secrets configured

> *Secrets configured: DATABASE_URL, OPENAI_API_KEY, GEMINI_API_KEY, CHATMOCK_URL.*

Read from the environment only; reported as set / missing / placeholder / malformed,
never shown.
"""),
        ("code", "run.record(db.preconditions.secrets_configured(run.params))"),
        ("md", """
## 10 — Health endpoints answering

> *Pre-deploy checklist: health endpoints answering.*
"""),
        ("code", "run.record(db.preconditions.health_endpoints(run.params))"),
        *GATE,
    ],
    "02-migration-dry-run": [
        ("md", """
# 02 — Migration dry run

Deployment plan section **7 Migrations & backups**.

> *Full snapshot (`pg_dump`) verified by restoring it; Prisma migration status; dry run of
> the pending migrations and raw SQL inside a transaction that is rolled back; pgvector
> dimensions = 1536.*
"""),
        ("parameters", PARAMETERS),
        start("02-migration-dry-run"),
        *GATE,
    ],
    "03-rollout": [
        ("md", """
# 03 — Rollout

Deployment plan sections **11 Staging rollout**, **13 Production rollout**,
**17 Communications** and **18 Sign-offs**.

> *Staging: build, test, migrate, start services, smoke. Production: announce, scale up,
> apply migrations, deploy API/services, deploy web, flip flags, production smoke.*

Nothing changes unless `execute = True`.
"""),
        ("parameters", PARAMETERS),
        start("03-rollout"),
        *GATE,
    ],
    "04-smoke": [
        ("md", """
# 04 — Smoke tests and monitoring

Deployment plan sections **12 Smoke tests**, **14 Monitoring** and **15 Post-deploy
validation**.
"""),
        ("parameters", PARAMETERS),
        start("04-smoke"),
        *GATE,
    ],
    "05-rollback": [
        ("md", """
# 05 — Rollback

Deployment plan section **16 Rollback**.

> *If errors or SLAs stay breached for more than 10 minutes, roll back: revert web, API and
> services to the previous release, restore the database snapshot, announce, file the
> incident.*
"""),
        ("parameters", PARAMETERS),
        start("05-rollback"),
        *GATE,
    ],
}
