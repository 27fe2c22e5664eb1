# An API key acts for its owner, so deactivating (or re-activating) a user changes what the
# cached keys may do (selectors/catalog_cache.py `ApiKeyRecord.owner_active`): that write bumps
# the catalog version like any configuration write (0004_catalog_version explains why triggers).

from django.conf import settings
from django.db import migrations

FORWARD = [
    "CREATE TRIGGER catalog_bump_user_active AFTER UPDATE ON auth_user FOR EACH ROW "
    "WHEN (OLD.is_active IS DISTINCT FROM NEW.is_active) "
    "EXECUTE FUNCTION routerapp_catalog_bump()",
]
BACKWARD = ["DROP TRIGGER catalog_bump_user_active ON auth_user"]


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("routerapp", "0007_goal_prior_strength_default"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
