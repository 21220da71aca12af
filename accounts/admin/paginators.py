"""A changelist paginator that never counts a whole large table row by row."""

from django.contrib.admin.views.main import ALL_VAR, ORDER_VAR, PAGE_VAR
from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

# Below this many estimated rows an exact count is cheap, and exact.
ESTIMATE_ABOVE = 10_000


class EstimatedCountPaginator(Paginator):
    """Counts exactly, except an unfiltered PostgreSQL table, which it estimates.

    `unfiltered` says the list shows the whole table; EstimatedCountMixin sets it from
    the changelist's request.

    COUNT(*) over a million rows scans them all on PostgreSQL (MVCC keeps no row
    count), and the admin counts on every changelist page. For the unfiltered list
    the planner's estimate (pg_class.reltuples, kept by autovacuum/ANALYZE) is enough
    to paginate; filtered and searched lists, and other databases, count exactly.
    """

    def __init__(self, *args, unfiltered: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.unfiltered = unfiltered

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        connection = connections[queryset.db]
        if connection.vendor != "postgresql" or not self.unfiltered:
            return super().count
        table = connection.ops.quote_name(queryset.model._meta.db_table)
        # One round trip: the estimate when the table is large, else an exact count.
        # The COUNT(*) subquery is an InitPlan that PostgreSQL runs only if its
        # CASE branch is taken. reltuples is -1 before the first ANALYZE.
        # The table name is the model's, quoted: no user input reaches this SQL.
        sql = (
            "SELECT CASE WHEN reltuples >= %s THEN reltuples::bigint "  # noqa: S608
            f"ELSE (SELECT COUNT(*) FROM {table}) END "
            "FROM pg_class WHERE oid = %s::regclass"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [ESTIMATE_ABOVE, table])
            return int(cursor.fetchone()[0])


# Query parameters that change neither which rows a changelist shows nor how many.
NOT_FILTERS = frozenset({ORDER_VAR, PAGE_VAR, ALL_VAR})


class EstimatedCountMixin:
    """A ModelAdmin whose changelist pages with EstimatedCountPaginator."""

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        """Estimate the count only while no filter or search narrows the list."""
        return EstimatedCountPaginator(
            queryset,
            per_page,
            orphans,
            allow_empty_first_page,
            unfiltered=not set(request.GET) - NOT_FILTERS,
        )
