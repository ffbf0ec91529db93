# The alert's quote currency is called `quote` in the code, like everywhere else; the column keeps
# its name `vs` (db_column), so this migration changes only Django's state and runs no SQL: no
# rename a running release would trip over, no rebuild of the evaluation's index.

from django.db import migrations, models

STATE = [
    migrations.RemoveIndex(model_name="alert", name="alert_eval_active_idx"),
    migrations.AlterField(
        model_name="alert",
        name="vs",
        field=models.CharField(
            choices=[("usd", "usd"), ("eur", "eur"), ("gbp", "gbp")], db_column="vs", default="usd", max_length=3
        ),
    ),
    migrations.RenameField(model_name="alert", old_name="vs", new_name="quote"),
    migrations.AddIndex(
        model_name="alert",
        index=models.Index(
            condition=models.Q(("is_active", True)),
            fields=["quote", "symbol", "condition", "target_value"],
            name="alert_eval_active_idx",
        ),
    ),
]


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0003_alert_target_as_precise_as_a_price"),
    ]

    operations = [migrations.SeparateDatabaseAndState(state_operations=STATE)]
