"""The shipped asset catalogue (markets/data/catalogue.json) and its idempotent loader."""

from __future__ import annotations

import json
from pathlib import Path

CATALOGUE_PATH = Path(__file__).resolve().parent / "data" / "catalogue.json"
FIELDS = ("name", "coingecko_id", "coinbase_product", "coinbase_quotes", "rank", "is_stablecoin")


def catalogue_entries() -> list[dict]:
    return json.loads(CATALOGUE_PATH.read_text())["assets"]


def catalogue_load(*, asset_model=None, update: bool = False) -> dict[str, int]:
    """Create the catalogue assets that are missing; with `update`, refresh catalogue fields of the others.

    Never touches `is_active`: enabling and disabling is the staff's call in the admin.
    `asset_model` lets the data migration pass its historical model.
    """
    if asset_model is None:
        from markets.models import Asset as asset_model
    existing = {a.symbol: a for a in asset_model.objects.all()}
    created = updated = 0
    for entry in catalogue_entries():
        values = {f: entry[f] for f in FIELDS}
        asset = existing.get(entry["symbol"])
        if asset is None:
            asset_model.objects.create(symbol=entry["symbol"], is_active=True, **values)
            created += 1
        elif update and any(getattr(asset, f) != v for f, v in values.items()):
            for f, v in values.items():
                setattr(asset, f, v)
            asset.save(update_fields=list(FIELDS))
            updated += 1
    return {"created": created, "updated": updated, "total": len(existing) + created}
