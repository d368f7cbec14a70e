"""Settings read from the environment (prefix ``JOURNEYLENS_``) and an optional ``.env`` file.

A bad value stops start-up with one readable line instead of a pydantic traceback: see
:func:`load_settings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_CHANNELS = ("web", "app", "email", "social", "sms", "store", "support")
# The roll-ups keep a set of channels as a bit mask in one int64 (data_access.derived_retention).
MAX_CHANNELS = 63


class SettingsError(ValueError):
    """A setting has a value Journeylens cannot use; the message is one line for the user."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="JOURNEYLENS_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    store_path: Path = Field(Path("data/journeylens.duckdb"), description="DuckDB file of the store")
    backend: Literal["duckdb"] = Field("duckdb", description="engine that runs the metrics")
    cache_ttl_seconds: int = Field(600, ge=0, description="how long query results stay cached")
    lookback_days: int = Field(30, ge=1, le=365, description="journey lookback window")
    currency: str = Field("USD", min_length=3, max_length=3, description="ISO 4217 code")
    channels: tuple[str, ...] = Field(DEFAULT_CHANNELS, min_length=1, max_length=MAX_CHANNELS)
    min_sample: int = Field(30, ge=1, description="smallest count for which a rate is shown")
    engine_threads: int = Field(0, ge=0, description="DuckDB threads; 0 lets DuckDB decide")

    @field_validator("channels")
    @classmethod
    def _channels_are_names(cls, channels: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(c.strip().lower() for c in channels)
        if any(not c for c in cleaned):
            raise ValueError("channel names must not be empty")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("channel names must be unique")
        return cleaned

    @field_validator("currency")
    @classmethod
    def _upper_currency(cls, currency: str) -> str:
        return currency.upper()


def load_settings(**overrides: object) -> Settings:
    """Read the settings; raise :class:`SettingsError` with one line per bad value.

    >>> load_settings(min_sample=10).min_sample
    10
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"JOURNEYLENS_{'_'.join(str(p) for p in err['loc'][:1]).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(f"invalid setting: {problems}") from None
