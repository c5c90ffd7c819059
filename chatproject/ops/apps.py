from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "chatproject.ops"
    label = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from .logs import install_server_log_redaction

        install_server_log_redaction()
