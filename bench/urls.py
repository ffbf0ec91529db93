"""The product's URLs plus the REST bench's baseline view (bench/rest_bench.py)."""

from django.urls import include, path

from bench.views import bench_constant
from coinlink.urls import handler400, handler403, handler404, handler500  # the contract's error pages

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

# First, so the baseline resolves in one step and the product's routes keep their own order behind it.
urlpatterns = [
    path("api/bench/constant", bench_constant, name="bench-constant"),
    path("", include("coinlink.urls")),
]
