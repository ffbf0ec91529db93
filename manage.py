#!/usr/bin/env python
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coinlink.settings")
    from django.core.management import execute_from_command_line
    from django.db import OperationalError

    try:
        execute_from_command_line(sys.argv)
    except OperationalError:
        from coinlink.db.startup import database_missing_hint

        hint = database_missing_hint()
        if hint is None:
            raise
        sys.exit(hint)


if __name__ == "__main__":
    main()
