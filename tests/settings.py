"""Test settings: the project's settings with fast hashing, mails in memory, generous throttles.

DATABASE_URL and REDIS_URL come from the environment exactly as in production, so CI runs the
suite on PostgreSQL and Redis and a laptop without them runs it on SQLite and in memory.
"""

import os

os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789")

from chatproject.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
# Generous limits so tests never trip each other's throttles; throttle tests lower them locally.
REST_FRAMEWORK = {  # noqa: F405
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {scope: "10000/min" for scope in REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]},  # noqa: F405
}

# Failed logins of one account never back off in tests (emails repeat across runs, and a shared
# Redis cache would remember them); the backoff's own tests lower it.
CHAT = {**CHAT, "LOGIN_FAILURES_FREE": 10**6}  # noqa: F405

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not memory: live server processes started by the tests open the same database.
    # One file per test run, so concurrent runs on one machine never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-{os.getpid()}.sqlite3")}  # noqa: F405
