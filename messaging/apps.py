from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"

    def ready(self) -> None:
        # Every verified user gets a notes-to-self conversation. Accounts cannot call messaging
        # (the dependency points messaging -> accounts), so it sends `user_verified` inside the
        # verification's transaction and messaging answers here. An in-process domain hook,
        # not a bus event: it runs synchronously, and its failure rolls the verification back.
        from accounts.signals import user_verified

        from .services import self_conversation_ensure

        def _self_conversation_for_verified_user(sender, *, user, **kwargs) -> None:
            self_conversation_ensure(user=user)

        user_verified.connect(
            _self_conversation_for_verified_user,
            weak=False,  # a local function: nothing else holds a reference to it
            dispatch_uid="messaging.self_conversation_ensure",
        )
