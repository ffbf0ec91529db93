from django.core.management.base import BaseCommand
from django.db import transaction

from markets.catalogue import catalogue_load


class Command(BaseCommand):
    help = "Load the shipped asset catalogue (idempotent). --update also refreshes ids, names and ranks."

    def add_arguments(self, parser):
        parser.add_argument("--update", action="store_true", help="refresh catalogue fields of existing assets")

    def handle(self, *args, update: bool = False, **options):
        with transaction.atomic():
            counts = catalogue_load(update=update)
        created, updated, total = counts["created"], counts["updated"], counts["total"]
        self.stdout.write(f"catalogue: {created} created, {updated} updated, {total} assets")
