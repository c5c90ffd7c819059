"""The operator's endpoints, mounted at the root by chatproject/urls.py. `ENDPOINTS` is also what
`middleware.ops_endpoints` serves ahead of the middleware chain: one list, two entry points."""

from django.urls import path

from .views import healthz, metrics_view, readyz

ENDPOINTS = {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics_view}

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
]
