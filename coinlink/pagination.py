from django.core.paginator import Page, Paginator
from rest_framework.pagination import PageNumberPagination as _Base

# LIMIT/OFFSET are 64-bit in PostgreSQL and SQLite: a page beyond that cannot exist, and asking the
# database for it fails (a 500). Django's own path counts first and refuses it with a 404.
_SQL_BIGINT_MAX = 2**63 - 1


class PartialPageCountPaginator(Paginator):
    """Django's paginator, without its COUNT query when the page itself tells the total.

    A page that is not full is the last one, so the total is the rows before it plus the rows on
    it. Only a full page (or one past the end) needs the separate COUNT. Most users' lists fit on
    one page, so most list requests save a query (docs/performance.md, "Mixed workload").
    """

    def page(self, number):
        if "count" in self.__dict__ or self.orphans:
            return super().page(number)
        try:
            index = int(number)
        except (TypeError, ValueError):
            return super().page(number)  # Django's own error for a page that is not a number
        bottom = (index - 1) * self.per_page
        if index < 1 or bottom + self.per_page > _SQL_BIGINT_MAX:
            return super().page(number)
        rows = list(self.object_list[bottom : bottom + self.per_page])
        if len(rows) < self.per_page and (rows or index == 1):
            self.count = bottom + len(rows)  # Paginator.count is a cached_property: this is its value
        elif not rows:
            return super().page(number)  # past the end: Django counts, then refuses the page
        return Page(rows, self.validate_number(number), self)


class PageNumberPagination(_Base):
    """`?page=` and `?page_size=` (capped at 100), as the contract says."""

    django_paginator_class = PartialPageCountPaginator
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
