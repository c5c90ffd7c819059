from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from chatproject.ops.live import live_view
from gateway import registry
from messaging.apis import media_file

urlpatterns = [
    # /healthz, /readyz, /metrics (also answered ahead of the middleware, chatproject/ops/middleware.py).
    path("", include("chatproject.ops.urls")),
    # Admin > Live (chatproject/ops/live.py): staff only, read-only; before the admin's catch-all.
    path("admin/live/", admin.site.admin_view(live_view), name="ops-live"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api-auth/", include("rest_framework.urls")),
    path("api/", include("accounts.urls")),
    path("api/", include("messaging.urls")),
    path("api/", include("groups.urls")),
    path("api/", include("gateway.urls")),
    path("api/tenant/v1/", include("tenants.urls")),
    path("", include("chatproject.pages")),
]

# Each mounted protocol's own REST endpoints (the ExpressChat /signup, /login, ...), at the root.
urlpatterns += [path("", include(module)) for module in registry.url_modules()]

if settings.CHAT["SERVE_MEDIA"]:
    # Uploaded files from the local storage (messaging.apis.media_file), at MEDIA_URL.
    urlpatterns.append(path(settings.MEDIA_URL.lstrip("/") + "<path:name>", media_file, name="media-file"))
