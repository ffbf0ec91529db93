from django.db import migrations


def load(apps, schema_editor):
    from markets.catalogue import catalogue_load

    catalogue_load(asset_model=apps.get_model("markets", "Asset"))


class Migration(migrations.Migration):
    dependencies = [("markets", "0001_initial")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
