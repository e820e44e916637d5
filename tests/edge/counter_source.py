"""A tiny built-in test source (`type: counter`) so agent tests need no protocol peer.

Emits records with `seq` counting up; after each `emit` returns (= the pipeline accepted them) it appends
the last accepted seq to `progress_file`, so a test knows exactly what was handed over before a kill -9.
Registered only when a config lists this module under `plugins`.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from iot_connector.model import Record
from iot_connector.sources.base import Source, SourceConfig, register


class CounterConfig(SourceConfig):
    type: Literal["counter"] = "counter"
    batch: int = 50
    interval_s: float = 0.0
    limit: int | None = None
    progress_file: str | None = None
    refuse: str | None = None  # the constructor raises ValueError(refuse), as a plugin with a bad setting would


class CounterSource(Source):
    protocol = "counter"

    def __init__(self, config: CounterConfig, emit) -> None:  # type: ignore[no-untyped-def]
        if config.refuse:
            raise ValueError(config.refuse)
        super().__init__(config, emit)

    async def session(self) -> None:
        cfg: CounterConfig = self.config  # type: ignore[assignment]
        progress = open(cfg.progress_file, "a") if cfg.progress_file else None  # noqa: SIM115
        seq = 0
        self.established()
        try:
            while not self._stopped.is_set() and (cfg.limit is None or seq < cfg.limit):
                n = cfg.batch if cfg.limit is None else min(cfg.batch, cfg.limit - seq)
                records = [
                    Record(
                        source_id=cfg.name,
                        protocol="counter",
                        endpoint="counter://test",
                        tag_id=f"tag{(seq + i) % 4}",
                        data_type="Int64",
                        value_long=seq + i,
                        seq=seq + i,
                        source_ts=seq + i,
                    )
                    for i in range(n)
                ]
                await self.emit(records)
                seq += n
                self.health.records_read = seq
                if progress:
                    progress.write(f"{seq - 1}\n")
                    progress.flush()
                await asyncio.sleep(cfg.interval_s)
            await self._stopped.wait()  # the limit reached: idle until stopped (returning would mean "reconnect")
        finally:
            if progress:
                progress.close()


register("counter", CounterConfig, CounterSource)
