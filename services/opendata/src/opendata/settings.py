"""Settings of the open-data service (env prefix `OPENDATA_`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from opendata.domain import MIN_GROUP_SIZE
from servicekit.settings import ServiceSettings

MUNICIPALITIES = {"71022": "Hasselt", "13008": "Geel", "71016": "Genk"}


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="OPENDATA_", extra="ignore")

    service_name: str = "opendata"
    # NIS code -> name of the municipalities that publish here.
    municipalities: dict[str, str] = MUNICIPALITIES
    # Where the published IRIs point (e.g. https://data.hasselt.be/opendata); empty: the address asked.
    public_base_url: str = ""
    contact_email: str = "opendata@cityblocks.invalid"
    # Never below 10: statistics about citizens hide smaller groups.
    min_group_size: int = Field(default=MIN_GROUP_SIZE, ge=MIN_GROUP_SIZE)
    # Members per page of the event stream; a full page never changes again.
    stream_page_size: int = Field(default=100, ge=1, le=1000)
    # Key of the citizens' pseudonyms in this service's database; empty: a random key kept in the data dir.
    pseudonym_key: str = ""
