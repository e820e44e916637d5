"""Jobs that rewrite the same tables must not be scheduled to start together."""

from __future__ import annotations

from tests.bundle.bundle_files import jobs


def minutes_and_hours(cron: str) -> tuple[str, str]:
    """Quartz: seconds minutes hours day-of-month month day-of-week."""
    fields = cron.split()
    return fields[1], fields[2]


def test_maintenance_does_not_start_with_the_hourly_runs() -> None:
    schedules = {key: job["schedule"]["quartz_cron_expression"] for _, key, job in jobs() if "schedule" in job}
    hourly = {key: cron for key, cron in schedules.items() if minutes_and_hours(cron)[1] == "*"}
    assert hourly, f"no hourly job found among {schedules}"
    maintenance_minute, _ = minutes_and_hours(schedules["osipi_maintenance_job"])
    for key, cron in hourly.items():
        assert minutes_and_hours(cron)[0] != maintenance_minute, (
            f"osipi_maintenance_job starts at minute {maintenance_minute}, like {key} ({cron}): OPTIMIZE would "
            "rewrite the files the hourly MERGE reads"
        )
