"""Settings: one object, read from ``TIMEBANK_*`` environment variables (and ``.env``)."""

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Only usable in development: the settings refuse it anywhere else.
DEVELOPMENT_SECRET = "development-only-secret-do-not-use-in-production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIMEBANK_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    # A SQLite file in the working directory: a new user needs no database server.
    database_url: str = "sqlite+aiosqlite:///timebank.sqlite3"
    secret_key: str = DEVELOPMENT_SECRET
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    host: str = "127.0.0.1"
    port: int = 8000
    # Connection pool per worker process (PostgreSQL). No overflow by default: a connection
    # opened beyond the pool is closed again when handed back, so a burst of requests beyond
    # it opened (and PostgreSQL started a process for) a connection per request, a third of
    # the writes a second lost at 16 concurrent (docs/performance.md, round eleven). Beyond
    # the pool, a request waits for a connection, up to db_timeout_seconds.
    db_pool_size: int = 16
    db_max_overflow: int = 0
    # Seconds to wait for a connection or a statement before answering 503.
    db_timeout_seconds: float = 5.0
    # Echo SQL to the log (very noisy; development only).
    db_echo: bool = False
    # How long a bearer token lives.
    token_ttl_hours: float = 12.0
    # Token checks each worker remembers for the hot routes (auth/sign_in_cache.py); about
    # 600 bytes each. 0 remembers none: every request checks its token in the database.
    sign_in_cache_entries: int = Field(default=10_000, ge=0)
    # Failed sign-ins allowed per username, and per client address, in one window.
    sign_in_failures_per_user: int = 5
    sign_in_failures_per_client: int = 30
    sign_in_window_minutes: float = 15.0
    # Largest request body accepted, in bytes.
    max_request_bytes: int = 64 * 1024
    # Pages: a browser session ends after this many idle minutes (a warning comes a few
    # minutes before), and after session_max_hours however active it is.
    session_idle_minutes: float = 30.0
    session_max_hours: float = 12.0
    # Send the session and form cookies only over HTTPS. Unset: on, except in development.
    # Set TIMEBANK_COOKIE_SECURE=false to serve the pages over plain HTTP (not on a network).
    cookie_secure: bool | None = None
    # Worker processes of `timebank serve` (None: 1, or 2 with --production on PostgreSQL).
    workers: int | None = None
    # Reverse proxies whose X-Forwarded-For, X-Forwarded-Proto and X-Request-ID are believed:
    # addresses or networks, comma-separated ("127.0.0.1, 10.0.0.0/8"). None by default.
    trusted_proxies: Annotated[tuple[IPNetwork, ...], NoDecode] = ()
    # The bearer token Prometheus sends to /metrics. Unset: there is no /metrics (404).
    metrics_token: str | None = None
    # Written by `timebank backup` after each good backup; /metrics reports its age.
    backup_status_file: Path = Path("timebank-backup-status.json")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part for part in value.replace(" ", ",").split(",") if part]
        if isinstance(value, (list, tuple)):
            try:
                return tuple(ipaddress.ip_network(str(part).strip(), strict=False) for part in value)
            except ValueError as exc:
                raise ValueError(
                    f"TIMEBANK_TRUSTED_PROXIES: {exc} (give addresses or networks, comma-separated)"
                ) from None
        return value

    @field_validator("metrics_token")
    @classmethod
    def _long_enough(cls, value: str | None) -> str | None:
        if not value:
            return None
        if len(value) < 16:
            raise ValueError("TIMEBANK_METRICS_TOKEN must be at least 16 characters long")
        return value

    # PostgreSQL's client programs for `timebank backup` / `restore` (a name on PATH, or a full path).
    pg_dump: str = "pg_dump"
    pg_restore: str = "pg_restore"

    @model_validator(mode="after")
    def _refuse_default_secret_outside_development(self) -> "Settings":
        if self.environment != "development" and self.secret_key == DEVELOPMENT_SECRET:
            raise ValueError(
                "TIMEBANK_SECRET_KEY must be set to a long random value outside development "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        if len(self.secret_key) < 32:
            raise ValueError("TIMEBANK_SECRET_KEY must be at least 32 characters long")
        return self

    @property
    def secure_cookies(self) -> bool:
        return self.environment != "development" if self.cookie_secure is None else self.cookie_secure

    @property
    def async_database_url(self) -> str:
        """The URL with an async driver, whatever form the user gave it in."""
        return to_async_url(self.database_url)


def to_async_url(url: str) -> str:
    """Accept ``postgresql://`` and ``sqlite:///`` forms and name the async driver."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


@lru_cache
def get_settings() -> Settings:
    return Settings()
