"""The `LakeflowConnect` contract of the Lakeflow Community Connectors framework, restated (not imported:
the framework's package is not a dependency of ours) so that `PILakeflowConnect` can be handed to it.

The framework calls, per table: `get_table_schema` (a Spark StructType, the same on every call),
`read_table_metadata` (`primary_keys`, `cursor_field`, `ingestion_type` one of snapshot | cdc |
cdc_with_deletes | append) and `read_table(table, start_offset, options)` -> (records, end_offset) again and
again, feeding each end offset back as the next start offset, until an end offset equals its start offset.
Records are JSON-compatible dicts (timestamps as ISO-8601 text); the framework converts them to the schema.
An offset of None means "the whole table in one batch" (snapshots).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from pyspark.sql.types import StructType

INGESTION_TYPES = ("snapshot", "cdc", "cdc_with_deletes", "append")


class LakeflowConnect(ABC):
    """A source: a few tables, their schemas and metadata, and offset-paged reads."""

    def __init__(self, options: dict[str, str]) -> None:
        self.options = options

    @abstractmethod
    def list_tables(self) -> list[str]: ...

    @abstractmethod
    def get_table_schema(self, table_name: str, table_options: dict[str, str]) -> StructType: ...

    @abstractmethod
    def read_table_metadata(self, table_name: str, table_options: dict[str, str]) -> dict: ...

    @abstractmethod
    def read_table(
        self, table_name: str, start_offset: dict | None, table_options: dict[str, str]
    ) -> tuple[Iterator[dict], dict | None]: ...

    def read_table_deletes(
        self, table_name: str, start_offset: dict | None, table_options: dict[str, str]
    ) -> tuple[Iterator[dict], dict | None]:
        """Only for `cdc_with_deletes` tables (PI reports no deletions: none of ours is one)."""
        raise NotImplementedError("read_table_deletes() is only for tables whose ingestion_type is cdc_with_deletes")
