"""`[exports]` in gateway.toml: what the exchange formats need that a reading does not carry (who
stewards the data, the local time offset, each node's agency site code and elevation). Coordinates
come from `[[report.nodes]]`, so a node's place is written once."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from contract.wire import ID_PATTERN


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExportNode(_Section):
    """One node as an agency knows it (`[[exports.nodes]]`)."""

    site: str = Field(pattern=ID_PATTERN)
    node: str = Field(pattern=ID_PATTERN)
    aqs_site: str | None = Field(
        default=None,
        pattern=r"^[0-9]{12}$",
        description="AQCSV `site`: 3-digit ISO 3166 numeric country code + 9-digit monitor location code.",
    )
    poc: int = Field(default=1, ge=1, le=99, description="AQCSV parameter occurrence code.")
    elevation_m: float | None = Field(default=None, ge=-500, le=9000, description="Above mean sea level.")


class ExportsConfig(_Section):
    data_steward_name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="AQDx `data_steward_name`: PascalCase or snake_case, no spaces, commas or periods.",
    )
    utc_offset: str = Field(
        default="+00:00",
        pattern=r"^[+-](0[0-9]|1[0-4]):[0-5][0-9]$",
        description="Offset the AQDx, AQCSV and OpenAQ local times are written in (e.g. +08:00).",
    )
    country: str | None = Field(
        default=None, pattern=r"^[A-Z]{2}$", description="OpenAQ `country` (ISO 3166-1)."
    )
    city: str | None = Field(default=None, max_length=100, description="OpenAQ `city`.")
    attribution_url: str | None = Field(
        default=None, pattern=r"^https?://\S+$", description="OpenAQ `attribution_url`: the data's steward."
    )
    openaq_source_type: str = Field(default="research", pattern=r"^(government|research)$")
    nodes: list[ExportNode] = Field(default_factory=list)
