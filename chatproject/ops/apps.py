from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "chatproject.ops"
    label = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from .logs import install_server_log_redaction, install_websocket_accepted_filter

        install_server_log_redaction()
        install_websocket_accepted_filter()
