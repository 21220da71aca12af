"""Pagination for list endpoints whose body stays a bare JSON array."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.response import Response

from accounts.fields import query_errors
from accounts.schema import error

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_PAGE = 1_000_000


class PageQuerySerializer(serializers.Serializer):
    """`page` (from 1) and `limit` (1 to MAX_LIMIT), each optional."""

    page = serializers.IntegerField(
        min_value=1,
        max_value=MAX_PAGE,
        required=False,
        error_messages=query_errors("page", f"a whole number from 1 to {MAX_PAGE}"),
    )
    limit = serializers.IntegerField(
        min_value=1,
        max_value=MAX_LIMIT,
        required=False,
        error_messages=query_errors("limit", f"a whole number from 1 to {MAX_LIMIT}"),
    )


PARAMETERS = frozenset(PageQuerySerializer().fields)


class BareListPagination(BasePagination):
    """`?page=` and `?limit=` slice the list; the body stays a bare array.

    Without either parameter the whole list comes back (or the first page, where
    `always` is set). `limit` alone starts at page 1; `page` alone pages by
    DEFAULT_LIMIT. The total goes in `X-Total-Count` and the neighbouring pages in an
    RFC 8288 `Link` header; a page past the end is empty.
    """

    always = False

    def paginate_queryset(self, queryset, request, view=None):
        if not self.always and not PARAMETERS.intersection(request.query_params):
            return None  # the common case, without building a serializer
        query = PageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        self.request = request
        self.page = query.validated_data.get("page", 1)
        self.limit = query.validated_data.get("limit", DEFAULT_LIMIT)
        self.total = queryset.count()
        start = (self.page - 1) * self.limit
        return list(queryset[start : start + self.limit])

    def get_paginated_response(self, data):
        headers = {"X-Total-Count": str(self.total)}
        links = [
            f'<{self._page_url(number)}>; rel="{rel}"'
            for rel, number in (("prev", self.page - 1), ("next", self.page + 1))
            if 1 <= number <= max(1, -(-self.total // self.limit))
        ]
        if links:
            headers["Link"] = ", ".join(links)
        return Response(data, headers=headers)

    def _page_url(self, number: int) -> str:
        """This request's URL with another page, every other parameter kept."""
        params = self.request.query_params.copy()
        params["page"] = str(number)
        return self.request.build_absolute_uri(f"{self.request.path}?{params.urlencode()}")

    def get_schema_operation_parameters(self, view):
        def parameter(name: str, description: str, maximum: int) -> dict:
            schema = {"type": "integer", "minimum": 1, "maximum": maximum}
            return {
                "name": name,
                "in": "query",
                "required": False,
                "schema": schema,
                "description": description,
            }

        return [
            parameter(
                "page", f"Page number, from 1 (with no limit: {DEFAULT_LIMIT} a page).", MAX_PAGE
            ),
            parameter("limit", "Items per page (with no page: the first page).", MAX_LIMIT),
        ]


class PagedListPagination(BareListPagination):
    """BareListPagination that pages even when no parameter asks: for lists that only grow."""

    always = True


INVALID_PAGE = error(
    "`page` or `limit` is not a whole number in range (`invalid`, `min_value`, "
    "`max_value`); details under `fields`."
)

# The headers a paginated list answers with, for the schema of each list operation.
PAGE_HEADERS = [
    OpenApiParameter(
        "X-Total-Count",
        OpenApiTypes.INT,
        OpenApiParameter.HEADER,
        response=[200],
        description="Items matching the filters; sent when the list is paginated.",
    ),
    OpenApiParameter(
        "Link",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=[200],
        description='RFC 8288 rel="prev" and rel="next" pages, when there are any.',
    ),
]
