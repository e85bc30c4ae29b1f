"""Settings in one place: read from the environment (prefix ``PATRON_``) with sensible defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where Patron keeps its data and how it talks to the store."""

    model_config = SettingsConfigDict(env_prefix="PATRON_", extra="ignore")

    data_dir: Path = Path("patron-data")
    database_url: str = ""
    shared_data_dir: Path = Path("../shared/data")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_sender: str = "patron@localhost.localdomain"
    # Text messages go to the SMS gateway's webhook (POST {"to", "text"} as JSON, the token as a Bearer header);
    # empty: SMS campaigns cannot be sent.
    sms_webhook_url: str = ""
    sms_webhook_token: str = ""
    # Money defaults: the currency of amounts given without one (mappings, offers, responses), and the margin
    # rate assumed where a line's cost is unknown (CLV, the costly-customers list, the portfolio P&L).
    default_currency: str = "USD"
    default_margin_rate: float = 0.30
    # Spark: `local[*]` uses every core of this machine; production names the cluster, e.g. spark://host:7077.
    spark_master: str = "local[*]"
    spark_partitions: int = 8
    spark_driver_memory: str = "4g"
    spark_jdbc_driver: str = ""
    # Background jobs (`patron worker`, `patron scheduler`): a Redis queue and cron schedules (UTC; "" = off).
    redis_url: str = "redis://127.0.0.1:6379/0"
    queue_name: str = "patron"
    job_timeout_seconds: int = 3600
    score_cron: str = "0 2 * * *"
    segments_cron: str = "*/15 * * * *"
    daily_cron: str = "0 6 * * *"
    # Fernet key sealing personal free text at rest (`patron privacy new-key`); empty: stored in clear.
    encryption_key: str = ""
    # Identity resolution (docs/IDENTITY.md): P(match) at or above which two records are merged as one person,
    # and from which up to that a pair goes to clerical review; arriving records are matched in real time.
    match_threshold: float = 0.95
    review_threshold: float = 0.50
    realtime_matching: bool = True
    # Sessions and tokens (docs/SECURITY.md): a browser session ends after this long idle or this long in all; an
    # API token after this many days; the session cookie is marked Secure (sent over HTTPS only) when set.
    session_idle_minutes: int = 60
    session_hours: int = 12
    token_days: int = 90
    secure_cookies: bool = False
    # Sign-in throttling: after this many failures a user waits 2, 4, 8 … seconds between tries; at the lockout
    # count the account is locked until an admin lifts it (`patron users unlock`).
    sign_in_free_failures: int = 3
    sign_in_lockout: int = 10
    # Passwords are hashed with argon2id at RFC 9106's second recommended profile (3 passes over 64 MiB, 4 lanes),
    # about 0.15 s a hash here; raise them on faster hardware. A stored hash keeps its own, so changing them never
    # locks anyone out.
    password_hash_time_cost: int = Field(default=3, ge=1)
    password_hash_memory_kib: int = Field(default=65_536, ge=8)
    password_hash_parallelism: int = Field(default=4, ge=1)
    # A server process recomputes the analyses its pages open most (customer base, feature frame, strategy) in the
    # background as soon as the data changes, looking every this many seconds (docs/WEB.md).
    warm_analyses: bool = True
    warm_every_seconds: float = 10.0
    # A page whose analysis must be computed first (the data changed, the server just started) waits this long for
    # it, then says it is computing and fills in by itself when the result is there (docs/WEB.md).
    page_wait_seconds: float = 0.5
    # Reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For names the real client: sign-in
    # throttling and the audit trail then see the client, not the proxy. Empty: trust no forwarded header.
    trusted_proxies: str = ""
    # Uploaded files: an imported one is deleted when its import ends; a staged one (previewed, never imported)
    # after this many hours untouched.
    upload_retention_hours: int = 24
    max_upload_mb: int = 200  # larger files: `patron import` from the command line
    # Dated backups in the data folder (`patron backup` without a file) are deleted after this many days.
    backup_retention_days: int = 35
    # PostgreSQL connection pool per process (the API runs one pool per worker process).
    pool_size: int = 5
    max_overflow: int = 10  # path to the PostgreSQL JDBC jar; default: Debian's, when installed

    @field_validator("database_url")
    @classmethod
    def _normalise_url(cls, value: str) -> str:
        value = value.strip()
        # Users paste libpq-style URLs; SQLAlchemy needs the driver named to pick psycopg 3.
        if value.startswith("postgres://"):
            value = "postgresql://" + value.removeprefix("postgres://")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @model_validator(mode="after")
    def _argon2_memory_holds_its_lanes(self) -> Settings:
        # Refused when the settings are read (at start), not at the first sign-in.
        if self.password_hash_memory_kib < 8 * self.password_hash_parallelism:
            raise ValueError(
                "PATRON_PASSWORD_HASH_MEMORY_KIB must be at least 8 per lane (8 × PATRON_PASSWORD_HASH_PARALLELISM)"
            )
        return self

    def trusted_proxy_list(self) -> list[str]:
        return [item.strip() for item in self.trusted_proxies.split(",") if item.strip()]

    def resolved_database_url(self) -> str:
        """The URL to connect to: the configured one, else the embedded SQLite file in ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'patron.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
