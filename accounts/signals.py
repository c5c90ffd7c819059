"""In-process domain hooks of the accounts app, for apps that build on it.

Accounts depends on no other app; an app that must act when something happens to an account
(messaging gives every verified user a notes-to-self conversation) connects a receiver here in
its `AppConfig.ready()`. These are synchronous calls inside the sending service's transaction,
not bus events: nothing leaves the process, and a receiver's error rolls the change back.
"""

import django.dispatch

# Sent by the verification services once `user.email_verified` is saved, inside their
# transaction. Arguments: `user` (the verified User).
user_verified = django.dispatch.Signal()
