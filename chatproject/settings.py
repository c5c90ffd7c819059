"""Settings for the chat server.

Every knob comes from the environment (documented in .env.example). Defaults are safe for a
developer laptop: SQLite, the in-memory channel layer, mails written as files. Nothing secret
has a production default: with DEBUG off, SECRET_KEY must be set.
"""

import ipaddress
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    """The variable's value; unset or empty means the default."""
    import os

    return os.environ.get(name) or default


def env_bool(name: str, default: bool = False) -> bool:
    value = env_str(name, "")
    if not value:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = env_str(name, "")
    return int(value) if value.strip() else default


def env_json(name: str, default: object) -> object:
    """A JSON value from the environment (lists and objects of settings), else the default."""
    import json
    import os

    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be JSON.") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", default=False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    # Development only: a fixed, obviously non-secret key so sessions survive restarts.
    SECRET_KEY = "dev-insecure-key-do-not-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_ALLOW_CREDENTIALS = True
# Never for the tenant server API (/api/tenant/): it is called by tenant backends with an app
# secret, never from a browser, so no browser origin gets CORS headers for it.
CORS_URLS_REGEX = r"^/(?!api/tenant/).*$"
# Public base URL used in mails (verification links). Never derived from the request's Host.
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "chatproject.core",
    "chatproject.ops",
    "accounts",
    "messaging",
    "groups",
    "tenants",
    # CZ Messenger's room metadata (a protocol-owned app: gateway/protocols/czmessenger/store).
    "gateway.protocols.czmessenger.store",
    # Seed 002's rooms (a protocol-owned app: gateway/protocols/roomtoken/store).
    "gateway.protocols.roomtoken.store",
]

MIDDLEWARE = [
    # /healthz, /readyz, /metrics answered before anything that checks hosts or redirects.
    "chatproject.ops.middleware.ops_endpoints",
    # Legacy protocols' REST routes first on their own mount's host or port (/user of seed 001).
    "gateway.mount_urls.mount_urlconf",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chatproject.urls"
ASGI_APPLICATION = "chatproject.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "chatproject.core.context.media_origins",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
        # Persistent: the realtime layer runs all database work on one thread (asgiref's
        # thread-sensitive executor), so this is one reused connection, not one per thread.
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        # A reused connection is checked before its first use in each call: one the server
        # dropped while idle (a restart, a terminated backend) is replaced, not an error.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent readers with one writer: WAL, and wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    (BASE_DIR / "var").mkdir(exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
# Session logins (admin, browsable API) also require a verified email and no ban.
AUTHENTICATION_BACKENDS = ["accounts.backends.ChatModelBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
PASSWORD_HASHERS = env_list(
    "PASSWORD_HASHERS",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher,django.contrib.auth.hashers.ScryptPasswordHasher",
)

REDIS_URL = env_str("REDIS_URL")

# The channel layer is the one bus. Unset REDIS_URL: one process, in memory. Set: Redis pub/sub,
# shared by every process. The pub/sub layer keeps no per-channel queue in Redis, so nothing is
# dropped silently at a capacity limit; subscriptions vanish with a dead process's connection.
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "chatproject.bus.layer.BatchingPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env_str("CHANNEL_PREFIX", "chat")},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CHANNEL_PREFIX", "chat"),
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "var" / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "templates" / "static"]
# Static files (admin, Swagger UI, the web client) are served by the app itself: no CDN, and in
# development no collectstatic step (WhiteNoise finds files where they live).
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# Mail: development writes each mail as a file under var/mail so the verification link can be
# opened by hand. Production sets EMAIL_BACKEND to SMTP and the EMAIL_HOST_* variables.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "mail"))
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "chat@localhost")

# Uploaded media (messaging.Attachment) go through Django's storage API: a local folder by
# default, served by the app at MEDIA_URL (messaging/apis.py media_file, with the checks a
# file server would skip). Any django-storages backend works by setting STORAGE_BACKEND (and its
# own settings); then set CHAT_SERVE_MEDIA=0 and let the backend's URLs serve the files.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "var" / "media")))
MEDIA_URL = env_str("MEDIA_URL", "/media/")
STORAGES = {
    "default": {"BACKEND": env_str("STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage")},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Upload bodies above this many bytes are spooled to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_PERMISSIONS = 0o640

SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BYTES", 256 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ChatJWTAuthentication",
        "accounts.authentication.ChatCookieAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # JSON read with the body-size limit enforced on the stream (DRF's JSONParser reads
    # request.body whole first); forms for the browsable API.
    "DEFAULT_PARSER_CLASSES": [
        "accounts.http.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # How many reverse proxies stand in front (X-Forwarded-For is trusted only that deep).
    "NUM_PROXIES": env_int("NUM_PROXIES", 0) or None,
    "EXCEPTION_HANDLER": "chatproject.core.errors.drf_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "auth_login": env_str("THROTTLE_LOGIN", "10/min"),
        "auth_signup": env_str("THROTTLE_SIGNUP", "5/min"),
        "auth_verify": env_str("THROTTLE_VERIFY", "10/min"),
        "auth_resend": env_str("THROTTLE_RESEND", "5/min"),
        "auth_refresh": env_str("THROTTLE_REFRESH", "30/min"),
        "message_send": env_str("THROTTLE_MESSAGES", "600/min"),
        "upload": env_str("THROTTLE_UPLOADS", "30/min"),
        "tenant_api": env_str("THROTTLE_TENANT_API", "1200/min"),
        # Seed 001's unauthenticated lookups (GET /user/search, GET /user/<handle>), per client
        # address: the app searches at each pause in typing, so generous, but each one reads
        # the database.
        "privatechat_lookup": env_str("THROTTLE_PRIVATECHAT_LOOKUP", "600/min"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Chat server API",
    "DESCRIPTION": "REST API of the chat server. Realtime events are documented in docs/protocol.md.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI assets from the sidecar package, served locally (no CDN).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a `kind`; each choice set gets its own name.
    "ENUM_NAME_OVERRIDES": {
        "AttachmentKindEnum": "messaging.models.Attachment.Kind",
        "MessageKindEnum": "messaging.models.Message.Kind",
    },
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env_int("JWT_ACCESS_SECONDS", 15 * 60)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env_int("JWT_REFRESH_SECONDS", 30 * 24 * 3600)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env_str("JWT_SIGNING_KEY") or SECRET_KEY,
    "USER_ID_FIELD": "public_id",
    "USER_ID_CLAIM": "sub",
    "AUTH_HEADER_TYPES": ("Bearer",),
}

# The project's own limits and switches. Everything bounded lives here.
CHAT = {
    "MAX_MESSAGE_LENGTH": env_int("CHAT_MAX_MESSAGE_LENGTH", 4000),
    "MAX_NAME_LENGTH": 100,
    "MAX_PASSWORD_LENGTH": 128,
    "MAX_DESCRIPTION_LENGTH": 1000,
    "HISTORY_PAGE_SIZE": env_int("CHAT_HISTORY_PAGE_SIZE", 50),
    "HISTORY_MAX_PAGE_SIZE": env_int("CHAT_HISTORY_MAX_PAGE_SIZE", 200),
    "SEARCH_MAX_RESULTS": 20,
    # Friends (accounts.friends): at most this many per user.
    "FRIENDS_MAX": env_int("CHAT_FRIENDS_MAX", 1000),
    # Live id handles one user of an app keeps from username/password logins (accounts.app_logins).
    "APP_LOGIN_HANDLES_MAX": env_int("CHAT_APP_LOGIN_HANDLES_MAX", 10),
    "SEARCH_MIN_LENGTH": 1,
    "SEARCH_EXPOSE_EMAILS": env_bool("CHAT_SEARCH_EXPOSE_EMAILS", default=False),
    "VERIFICATION_CODE_TTL_SECONDS": 600,
    "VERIFICATION_MAX_ATTEMPTS": 5,
    "VERIFICATION_RESEND_COOLDOWN_SECONDS": env_int("CHAT_RESEND_COOLDOWN_SECONDS", 60),
    "GROUP_MAX_MEMBERS": env_int("CHAT_GROUP_MAX_MEMBERS", 1000),
    # Per-connection and per-user socket event budgets (token bucket: burst, refill per second).
    "SOCKET_RATE_BURST": env_int("CHAT_SOCKET_RATE_BURST", 60),
    "SOCKET_RATE_PER_SECOND": env_int("CHAT_SOCKET_RATE_PER_SECOND", 20),
    "USER_RATE_BURST": env_int("CHAT_USER_RATE_BURST", 120),
    "USER_RATE_PER_SECOND": env_int("CHAT_USER_RATE_PER_SECOND", 40),
    # One client event (packet or frame) may be this large; a larger one up to the transport
    # ceiling is answered with the protocol's payload_too_large error and the connection stays;
    # past the ceiling (Socket.IO's own default, 1 MiB) the transport drops the connection.
    "SOCKET_MAX_PAYLOAD_BYTES": env_int("CHAT_SOCKET_MAX_PAYLOAD_BYTES", 64 * 1024),
    "SOCKET_TRANSPORT_MAX_BYTES": env_int("CHAT_SOCKET_TRANSPORT_MAX_BYTES", 1024 * 1024),
    # Socket.IO binary events: attachments one event may carry (a binary event with more is
    # answered payload_too_large); the event and its attachments count as one payload above.
    "SOCKET_MAX_ATTACHMENTS": env_int("CHAT_SOCKET_MAX_ATTACHMENTS", 10),
    # Live connections one process accepts per user and per client address (every protocol and
    # transport together); past them a handshake is sent away to retry (too_many_connections).
    "SOCKET_MAX_PER_USER": env_int("CHAT_SOCKET_MAX_PER_USER", 50),
    # Failed logins of one account (any client address, any process: the shared cache): this many
    # are free, then each one doubles the wait before the next try, up to the maximum; the count
    # is forgotten WINDOW seconds after the last failure, or at a successful login.
    "LOGIN_FAILURES_FREE": env_int("CHAT_LOGIN_FAILURES_FREE", 5),
    "LOGIN_BACKOFF_MAX_SECONDS": env_int("CHAT_LOGIN_BACKOFF_MAX_SECONDS", 900),
    "LOGIN_FAILURE_WINDOW_SECONDS": env_int("CHAT_LOGIN_FAILURE_WINDOW_SECONDS", 3600),
    "SOCKET_MAX_PER_ADDRESS": env_int("CHAT_SOCKET_MAX_PER_ADDRESS", 1000),
    # Connections of a protocol whose clients present nothing at the handshake and name
    # themselves in a later event (seed 001, `Protocol.binds_late`): at most this many per client
    # address may wait unbound, and one still unbound this long after it opened is closed the
    # way clients reconnect from (the app's fresh socket binds within milliseconds; a socket
    # that socket.io-client reconnected by itself binds at the next event carrying the handle).
    "SOCKET_MAX_UNBOUND_PER_ADDRESS": env_int("CHAT_SOCKET_MAX_UNBOUND_PER_ADDRESS", 100),
    "SOCKET_UNBOUND_SECONDS": float(env_str("CHAT_SOCKET_UNBOUND_SECONDS", "120")),
    # An Engine.IO session that has joined no namespace this long after it opened is closed.
    "SOCKET_CONNECT_TIMEOUT_SECONDS": float(env_str("CHAT_SOCKET_CONNECT_TIMEOUT_SECONDS", "10")),
    # Tenants (docs/tenants.md). A tenant-signed token may expire at most this far ahead
    # (seconds), and may be at most this many bytes long; `iat` may be this far in the future.
    # CHAT SERVER's dashboard (docs/protocols/chatserver.md): its HS256 tokens are signed with a
    # secret of their own. No default: unset with DEBUG off, the dashboard routes answer 503
    # (with DEBUG on, one is derived from SECRET_KEY).
    "DASHBOARD_JWT_SECRET": env_str("CHAT_DASHBOARD_JWT_SECRET"),
    "DASHBOARD_JWT_SECONDS": env_int("CHAT_DASHBOARD_JWT_SECONDS", 3600),
    "TENANT_TOKEN_MAX_TTL_SECONDS": env_int("CHAT_TENANT_TOKEN_MAX_TTL_SECONDS", 24 * 3600),
    "TENANT_TOKEN_MAX_BYTES": env_int("CHAT_TENANT_TOKEN_MAX_BYTES", 2048),
    "TENANT_CLOCK_SKEW_SECONDS": env_int("CHAT_TENANT_CLOCK_SKEW_SECONDS", 60),
    # An app's verification URL: answer within this time (seconds) or the connection is refused;
    # answers (2xx or not) are remembered this long for at most CACHE_MAX tokens; at most
    # WORKERS calls run at once (their own threads, never the database thread).
    "TENANT_VERIFY_TIMEOUT_SECONDS": float(env_str("CHAT_TENANT_VERIFY_TIMEOUT_SECONDS", "2")),
    "TENANT_VERIFY_CACHE_SECONDS": env_int("CHAT_TENANT_VERIFY_CACHE_SECONDS", 30),
    "TENANT_VERIFY_CACHE_MAX": env_int("CHAT_TENANT_VERIFY_CACHE_MAX", 10000),
    "TENANT_VERIFY_WORKERS": env_int("CHAT_TENANT_VERIFY_WORKERS", 8),
    # The realtime layer checks its reused database connection (`SELECT 1`) at most this often
    # (seconds), not before every call (gateway/sync.py); 0: before every call, as Django does.
    "DB_HEALTH_CHECK_SECONDS": float(env_str("CHAT_DB_HEALTH_CHECK_SECONDS", "1")),
    # Threads (each with its own database connection) for the handshake's reads, beside the one
    # database thread that runs everything else (gateway/sync.py `call_read`); 0: none.
    "DB_READ_THREADS": env_int("CHAT_DB_READ_THREADS", 3),
    # On PostgreSQL, a first-party handshake's read runs on the event loop over at most
    # HANDSHAKE_READ_CONNECTIONS asynchronous connections of its own (gateway/reader.py), in
    # one round trip, not on the read threads. Off: the read threads (as on SQLite).
    "HANDSHAKE_READ_ON_LOOP": env_bool("CHAT_HANDSHAKE_READ_ON_LOOP", default=True),
    "HANDSHAKE_READ_CONNECTIONS": env_int("CHAT_HANDSHAKE_READ_CONNECTIONS", 3),
    # Those connections prepare the read's two statements once (PREPARE) and run them by name.
    # Off behind a pooler that does not keep a session's prepared statements; as CHAT
    # SEND_PREPARED unless set.
    "HANDSHAKE_READ_PREPARED": env_bool(
        "CHAT_HANDSHAKE_READ_PREPARED", default=env_bool("CHAT_SEND_PREPARED", default=True)
    ),
    # New connections are refused (the client retries after its backoff) while this many
    # handshakes are being authenticated and greeted in the process (gateway/asgi.py); 0: no limit.
    "HANDSHAKES_MAX_IN_FLIGHT": env_int("CHAT_HANDSHAKES_MAX_IN_FLIGHT", 0),
    # The cyclic garbage collector's first threshold (allocations between young collections) set
    # by the gateway at startup, which also freezes what start-up made (gateway/asgi.py); 0:
    # Python's defaults, nothing frozen.
    "GC_THRESHOLD": env_int("CHAT_GC_THRESHOLD", 10000),
    # The protocol registry (gateway/registry.py, docs/operations.md "Protocol mounts"): which
    # wire protocol serves which mount. One entry per mount: `protocol` (the package, which
    # exposes PROTOCOL), `transport` ("eio4": Socket.IO 3/4 clients, "eio3": Socket.IO 2
    # clients, "ws": plain WebSocket), `path` (Engine.IO path or WebSocket path), `namespace`
    # (Socket.IO), and optionally `host` (Host header name) or `port` (the listening port) where
    # two mounts would otherwise claim the same path and namespace; `realm` ("first_party", the
    # default, or "apps") and `credentials` (the forms accepted there, docs/tenants.md).
    "PROTOCOLS": env_json(
        "CHAT_PROTOCOLS",
        [
            {
                "protocol": "gateway.protocols.expresschat",
                "transport": "eio4",
                "path": "/socket.io/",
                "namespace": "/",
            },
            {"protocol": "gateway.protocols.expresschat", "transport": "ws", "path": "/ws/"},
            # The same protocol for the users of tenant apps, who present a tenant-signed token.
            {
                "protocol": "gateway.protocols.expresschat",
                "transport": "eio4",
                "path": "/socket.io/",
                "namespace": "/apps",
                "realm": "apps",
                "credentials": ["tenant_jwt", "registered_token", "id_handle"],
            },
            # Seed 003's CHAT SERVER for tenant apps (docs/protocols/chatserver.md): also "/" on
            # /socket.io/, so only on its own host name, and only when one is configured.
            *(
                [
                    {
                        "protocol": "gateway.protocols.chatserver",
                        "transport": "eio4",
                        "path": "/socket.io/",
                        "namespace": "/",
                        "host": env_str("CHAT_CHATSERVER_HOST"),
                        "realm": "apps",
                        "credentials": ["registered_token"],
                    }
                ]
                if env_str("CHAT_CHATSERVER_HOST")
                else []
            ),
            # CZ Messenger (Socket.IO 2 buyer/seller apps, docs/protocols/czmessenger.md): tenant
            # tokens of a marketplace app; the newer path and namespace, and the older pair.
            {
                "protocol": "gateway.protocols.czmessenger",
                "transport": "eio3",
                "path": "/v1/conversations/sockets/",
                "namespace": "/v1/conversations/events",
                "realm": "apps",
            },
            {
                "protocol": "gateway.protocols.czmessenger",
                "transport": "eio3",
                "path": "/socket.io/",
                "namespace": "/messenger",
                "realm": "apps",
            },
            # Seed 002's customer and artisan apps (Socket.IO 2, docs/protocols/roomtoken.md):
            # id handles as `userId`, or tenant tokens. Their heartbeat is the whole /socket.io/
            # Engine.IO 3 server's: 25 s pings and 60 s of patience, so a phone or a background
            # tab whose timers run once a minute is not dropped.
            *(
                {
                    "protocol": "gateway.protocols.roomtoken",
                    "transport": "eio3",
                    "path": "/socket.io/",
                    "namespace": namespace,
                    "realm": "apps",
                    "credentials": ["id_handle", "tenant_jwt"],
                    "ping_interval": 25,
                    "ping_timeout": 60,
                }
                for namespace in ("/customer", "/artisans")
            ),
            # Seed 001's private chat app (docs/protocols/privatechat.md): the users of one app,
            # bound by id handles; also "/" on /socket.io/, so on its own port or host name.
            *(
                [
                    {
                        "protocol": "gateway.protocols.privatechat",
                        "transport": "eio4",
                        "path": "/socket.io/",
                        "namespace": "/",
                        "port": env_int("CHAT_PRIVATECHAT_PORT", 0) or None,
                        "host": env_str("CHAT_PRIVATECHAT_HOST") or None,
                        "realm": "apps",
                        "credentials": ["id_handle"],
                        "apps": [env_str("CHAT_PRIVATECHAT_APP")],
                    }
                ]
                if env_str("CHAT_PRIVATECHAT_APP")
                else []
            ),
        ],
    ),
    # CZ Messenger REST (/v1/conversations): the request header holding the socket's token
    # ("Authorization" takes "Bearer <token>"; any other header the bare token).
    "CZMESSENGER_TOKEN_HEADER": env_str("CHAT_CZMESSENGER_TOKEN_HEADER", "Authorization"),
    "SOCKET_CORS_ALLOWED_ORIGINS": env_list("CHAT_SOCKET_CORS_ALLOWED_ORIGINS"),
    "SOCKET_PING_INTERVAL": env_int("CHAT_SOCKET_PING_INTERVAL", 25),
    "SOCKET_PING_TIMEOUT": env_int("CHAT_SOCKET_PING_TIMEOUT", 20),
    "CONVERSATION_LIST_LIMIT": env_int("CHAT_CONVERSATION_LIST_LIMIT", 500),
    # Resync (`sync`): a conversation with more changes than this since the client's position is
    # answered "reload from history"; one answer carries at most this many messages in all.
    "SYNC_MAX_CHANGES": env_int("CHAT_SYNC_MAX_CHANGES", 500),
    # At most this many socket sends are written in one transaction. With sends pipelined
    # (SEND_PIPELINE) a busy process has many queued: at direct saturation a batch of 100 took
    # ~35 ms of wall, a ceiling of ~2,800 sends/s with the core not busy (docs/operations.md,
    # bench/README.md session 6).
    "SEND_BATCH_MAX": env_int("CHAT_SEND_BATCH_MAX", 500),
    # Send batches in the database at once, each with its own database connection (gateway/
    # batching.py: batches in flight never share a conversation, nor a connection's sends); at
    # least 1 (0 counts as 1). On the event loop a writer beyond the first starts only behind a
    # backlog of queued sends (`EXTRA_WRITER_BACKLOG`): under load 2 keep the loop busy while a
    # batch is in PostgreSQL, and at a low rate the sends are not split into smaller batches.
    "SEND_WRITERS": env_int("CHAT_SEND_WRITERS", 2),
    # The send batch's statements as prepared statements on each writer connection
    # (messaging/services/storage.py): PostgreSQL then neither parses nor plans them for every
    # batch. Off for a pooler that does not keep a session's prepared statements (PgBouncer in
    # transaction mode).
    "SEND_PREPARED": env_bool("CHAT_SEND_PREPARED", default=True),
    # On PostgreSQL, a batch of plain sends (no reply, no upload) outside a transaction is probed
    # and stored by one statement, whole or not at all, its members read in the same round trip
    # (messaging/services/storage.py `_sends_write_sql`); a batch it does not store goes through
    # the probe and the write, which tell why. Off: every batch takes the two round trips.
    "SEND_ONE_STATEMENT": env_bool("CHAT_SEND_ONE_STATEMENT", default=True),
    # On PostgreSQL, the send batches run on the event loop over asynchronous connections of the
    # batcher's own (gateway/writer.py), not on writer threads: no thread waits for the GIL
    # behind the busy loop at each of its round trips. Off: writer threads (as on SQLite).
    "SEND_ON_LOOP": env_bool("CHAT_SEND_ON_LOOP", default=True),
    # A connection's sends in flight at once (gateway/lanes.py): its next send is read and
    # queued while its earlier ones wait for their batch, in order, for the protocols' send
    # events (`Protocol.pipelined`); 1: one at a time, the next read once the last is answered.
    "SEND_PIPELINE": env_int("CHAT_SEND_PIPELINE", 16),
    # Presence (gateway/presence.py): each process refreshes its connections' entries
    # every HEARTBEAT seconds; an entry not refreshed for TTL seconds is gone (a dead process's
    # users go offline within about TTL + HEARTBEAT). Changes are published at most once per
    # DEBOUNCE seconds per user. Seconds, fractions allowed.
    "PRESENCE_HEARTBEAT_SECONDS": float(env_str("CHAT_PRESENCE_HEARTBEAT_SECONDS", "5")),
    "PRESENCE_TTL_SECONDS": float(env_str("CHAT_PRESENCE_TTL_SECONDS", "12")),
    "PRESENCE_DEBOUNCE_SECONDS": float(env_str("CHAT_PRESENCE_DEBOUNCE_SECONDS", "1.5")),
    # Presence changes are pushed to members of direct chats and of groups up to this size;
    # members of larger groups pull it with `fetch-presence`.
    "PRESENCE_PUSH_GROUP_MAX": env_int("CHAT_PRESENCE_PUSH_GROUP_MAX", 50),
    # Typing: receivers drop an indicator TTL seconds after the last `typing` without a
    # `stop-typing`; a connection relays at most one `typing` per conversation per MIN_INTERVAL.
    "TYPING_TTL_SECONDS": float(env_str("CHAT_TYPING_TTL_SECONDS", "6")),
    "TYPING_MIN_INTERVAL_SECONDS": float(env_str("CHAT_TYPING_MIN_INTERVAL_SECONDS", "1")),
    # Distinct emoji one user may put on one message.
    "MAX_REACTIONS_PER_USER": env_int("CHAT_MAX_REACTIONS_PER_USER", 20),
    # A message of kind "emoji" holds only emoji, at most this many characters (code points).
    "EMOJI_MESSAGE_MAX_LENGTH": env_int("CHAT_EMOJI_MESSAGE_MAX_LENGTH", 48),
    # Uploads (POST /api/uploads/, messaging/media.py). Types are recognised from the bytes; the
    # allowed list is a subset of messaging.media.KNOWN_TYPES (empty: all of them).
    "UPLOAD_MAX_BYTES": env_int("CHAT_UPLOAD_MAX_BYTES", 25 * 1024 * 1024),
    "UPLOAD_ALLOWED_TYPES": env_list("CHAT_UPLOAD_ALLOWED_TYPES"),
    # Decoded size limit of an image (width x height): a small file can claim a huge canvas.
    # 24 MP: every viewer decodes the whole picture (about 4 bytes a pixel; no thumbnails yet),
    # so a tiny file with a huge canvas costs each of them ~100 MB. Phones save 12 MP by default.
    "UPLOAD_IMAGE_MAX_PIXELS": env_int("CHAT_UPLOAD_IMAGE_MAX_PIXELS", 24_000_000),
    # Bytes one user may upload per rolling 24 hours, and unused uploads one user may hold.
    "UPLOAD_DAILY_BYTES": env_int("CHAT_UPLOAD_DAILY_BYTES", 1024 * 1024 * 1024),
    "UPLOAD_MAX_UNUSED": env_int("CHAT_UPLOAD_MAX_UNUSED", 50),
    # An upload no message uses is deleted (manage.py uploads_purge) after this many seconds.
    "UPLOAD_UNUSED_TTL_SECONDS": env_int("CHAT_UPLOAD_UNUSED_TTL_SECONDS", 24 * 3600),
    # Serve MEDIA_URL from the app (local storage). Off when a storage backend serves its files.
    "SERVE_MEDIA": env_bool("CHAT_SERVE_MEDIA", default=True),
    # Origins files are served from when not the app's own (an object store, a CDN): the web
    # client's Content-Security-Policy allows them for images and media.
    "MEDIA_ORIGINS": env_list("CHAT_MEDIA_ORIGINS"),
    # Operations (chatproject/ops, docs/operations.md "Monitoring"). /readyz gives each check
    # (database, Redis bus) this many seconds. /metrics is off (404) unless METRICS; then a
    # request needs the bearer token when one is set and an address in the allowed networks
    # when some are set (neither set: loopback only).
    "READY_TIMEOUT_SECONDS": float(env_str("CHAT_READY_TIMEOUT_SECONDS", "1")),
    "METRICS": env_bool("CHAT_METRICS", default=False),
    "METRICS_TOKEN": env_str("CHAT_METRICS_TOKEN"),
    "METRICS_ALLOWED_NETWORKS": env_list("CHAT_METRICS_ALLOWED_NETWORKS"),
    # Graceful drain on SIGTERM (gateway/drain.py, docs/operations.md "Graceful drain"): at most
    # this many seconds between the signal and the server's own shutdown; 0 turns the drain off.
    "DRAIN_SECONDS": float(env_str("CHAT_DRAIN_SECONDS", "10")),
    # How often each process samples the bus's subscriber count (PUBSUB NUMSUB), with Redis.
    "BUS_SAMPLE_SECONDS": float(env_str("CHAT_BUS_SAMPLE_SECONDS", "15")),
}

# Fail at start on a malformed network, not at the first scrape.
for _cidr in CHAT["METRICS_ALLOWED_NETWORKS"]:
    try:
        ipaddress.ip_network(_cidr, strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(f"CHAT_METRICS_ALLOWED_NETWORKS: {_cidr!r} is not a network") from exc

# Console logging: "plain" lines, or "json" (one JSON object a line: timestamp, level, logger,
# process, message and extra ids/codes). Every record passes a filter that redacts tokens.
LOG_FORMAT = env_str("LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured("LOG_FORMAT must be plain or json.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "chatproject.ops.logs.RedactSecretsFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "chatproject.ops.logs.json_formatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
