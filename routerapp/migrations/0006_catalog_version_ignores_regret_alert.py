# The regret alert's state (`Goal.regret_alert`) is written by the shadow worker after judged
# comparisons: learned state like `controller_state`, not configuration, so writing it must not
# make every process rebuild its catalog (0004_catalog_version explains the trigger).

from django.db import migrations

LEFT_OUT_BEFORE = ["controller_state", "controller_cursor"]
LEFT_OUT_NOW = [*LEFT_OUT_BEFORE, "regret_alert"]


def _trigger(columns: list[str]) -> list[str]:
    left_out = " ".join(f"- '{column}'" for column in columns)
    return [
        "DROP TRIGGER catalog_bump_update ON routerapp_goal",
        "CREATE TRIGGER catalog_bump_update AFTER UPDATE ON routerapp_goal FOR EACH ROW "
        f"WHEN ((to_jsonb(OLD) {left_out}) IS DISTINCT FROM (to_jsonb(NEW) {left_out})) "
        "EXECUTE FUNCTION routerapp_catalog_bump()",
    ]


class Migration(migrations.Migration):
    dependencies = [
        ("routerapp", "0005_rules_governance_shadows"),
    ]

    operations = [migrations.RunSQL(_trigger(LEFT_OUT_NOW), _trigger(LEFT_OUT_BEFORE))]
