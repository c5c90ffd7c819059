"""drf-spectacular description of the tenant API's AppKey authentication (loaded in apps.ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class AppKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.AppKeyAuthentication"
    name = "appKeyAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`AppKey <app id>:<secret>`, with either of the app's two secrets. "
            "For tenant backends only; never send it from a browser.",
        }
