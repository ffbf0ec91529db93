"""Expand step of dropping Preferences' four unused notification switches (docs/operations.md).

The release before this one still names the columns in its SELECTs and INSERTs, so they stay; each
gets a database default, so this release's INSERTs, which leave them out, still fill them. Only the
model state forgets them. A later release (the contract step) drops the columns.
"""

from django.db import migrations, models

# The defaults the model had, which the previous release still writes.
SWITCHES = {"notifications_enabled": True, "email_alerts": False, "price_alerts": True, "news_notifications": False}


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_account_token"),
    ]

    operations = [
        *(
            migrations.AlterField("preferences", name, models.BooleanField(default=on, db_default=on))
            for name, on in SWITCHES.items()
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.RemoveField("preferences", name) for name in SWITCHES],
        ),
    ]
