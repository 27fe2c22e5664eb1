# The catalog version: one number every configuration write changes, in the writer's own
# transaction, so each process can tell with one cheap query whether its cached copy of goals,
# paths, providers, prices and API keys is still current (routerapp/selectors/catalog_cache.py).
#
# Bumped by triggers rather than by Python signals: a trigger sees every write path (model
# saves, QuerySet.update()/delete() and bulk writes that send no signal, the many-to-many table
# of a key's goals, cascades, the Django admin, raw SQL and psql) and runs inside the writer's
# transaction, so a reader sees the new version exactly when it sees the change. Writes made on
# the request path (the controller's fold of `controller_state`/`controller_cursor`, a key's
# `last_used_at`) are not configuration and do not bump it.
#
# The value comes from a sequence, whose numbers are never handed out twice even when the
# writing transaction rolls back: a cache built inside a transaction that rolled back (tests)
# can never be mistaken for a later state with the same number.

from django.db import migrations

ANY_CHANGE = ["routerapp_path", "routerapp_provider", "routerapp_modelprice",
              "routerapp_apikey_allowed_goals"]
# Tables also written on the request path: an UPDATE bumps only when another column changed.
ROW_CHANGE = {
    "routerapp_goal": ["controller_state", "controller_cursor"],
    "routerapp_apikey": ["last_used_at"],
}

FORWARD = [
    "CREATE SEQUENCE routerapp_catalog_version_seq",
    """CREATE TABLE routerapp_catalog_version (
        id smallint PRIMARY KEY CHECK (id = 1),
        version bigint NOT NULL
    )""",
    "INSERT INTO routerapp_catalog_version VALUES (1, nextval('routerapp_catalog_version_seq'))",
    """CREATE FUNCTION routerapp_catalog_bump() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO routerapp_catalog_version AS v (id, version)
        VALUES (1, nextval('routerapp_catalog_version_seq'))
        ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version;
        RETURN NULL;
    END $$""",
]
for table in ANY_CHANGE:
    FORWARD.append(
        f"CREATE TRIGGER catalog_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION routerapp_catalog_bump()"
    )
for table, request_path_columns in ROW_CHANGE.items():
    left_out = " ".join(f"- '{column}'" for column in request_path_columns)
    FORWARD += [
        f"CREATE TRIGGER catalog_bump AFTER INSERT OR DELETE OR TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION routerapp_catalog_bump()",
        f"CREATE TRIGGER catalog_bump_update AFTER UPDATE ON {table} FOR EACH ROW "
        f"WHEN ((to_jsonb(OLD) {left_out}) IS DISTINCT FROM (to_jsonb(NEW) {left_out})) "
        "EXECUTE FUNCTION routerapp_catalog_bump()",
    ]

BACKWARD = [
    *(f"DROP TRIGGER catalog_bump ON {table}" for table in [*ANY_CHANGE, *ROW_CHANGE]),
    *(f"DROP TRIGGER catalog_bump_update ON {table}" for table in ROW_CHANGE),
    "DROP FUNCTION routerapp_catalog_bump()",
    "DROP TABLE routerapp_catalog_version",
    "DROP SEQUENCE routerapp_catalog_version_seq",
]


class Migration(migrations.Migration):
    dependencies = [
        ("routerapp", "0003_controller_log"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
