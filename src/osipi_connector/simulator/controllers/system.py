"""Landing page (`GET /piwebapi`) and `/system`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from osipi_connector import __version__
from osipi_connector.piwebapi.pitime import format_ticks
from osipi_connector.simulator.http import ApiError, Request

if TYPE_CHECKING:
    from osipi_connector.simulator.core import Simulator

PRODUCT_VERSION = "1.19.1.33"  # PI Web API 2023 SP1 (WebID 2.0, Bearer via AVEVA Identity Manager)


def register(sim: Simulator) -> None:
    router = sim.router
    started = sim.now_ticks()

    @router.route("GET", "/")
    def landing(request: Request) -> dict:
        return {
            "Links": {
                "Self": request.link("/"),
                "AssetServers": request.link("/assetservers"),
                "DataServers": request.link("/dataservers"),
                "Search": request.link("/search"),
                "System": request.link("/system"),
            }
        }

    @router.route("GET", "/system")
    def system(request: Request) -> dict:
        return {
            "Links": {
                "Self": request.link("/system"),
                "CacheInstances": request.link("/system/cacheinstances"),
                "Configuration": request.link("/system/configuration"),
                "UserInfo": request.link("/system/userinfo"),
                "Versions": request.link("/system/versions"),
                "Status": request.link("/system/status"),
            },
            "ProductTitle": "PI Web API",
            "ProductVersion": PRODUCT_VERSION,
            "SimulatorVersion": __version__,
        }

    @router.route("GET", "/system/userinfo")
    def userinfo(request: Request) -> dict:
        authenticated = request.user is not None
        return {
            "IdentityType": "WindowsIdentity" if authenticated else "GenericIdentity",
            "Name": request.user or "",
            "IsAuthenticated": authenticated,
            "SID": "",
            "ImpersonationLevel": "None",
        }

    @router.route("GET", "/system/status")
    def status(request: Request) -> dict:
        return {
            "UpTimeInMinutes": round((sim.now_ticks() - started) / 600_000_000, 2),  # 0 with a fixed clock
            "State": "Running",
            "CacheInstances": 1,
            "ServerTime": format_ticks(sim.now_ticks()),
        }

    @router.route("GET", "/system/versions")
    def versions(request: Request) -> dict:
        """System Versions: a dictionary of assembly name -> version, as the reference's sample."""
        major, minor, revision, build = PRODUCT_VERSION.split(".")
        version = {"FullVersion": PRODUCT_VERSION, "MajorMinorRevision": f"{major}.{minor}.{revision}", "Build": build}
        assemblies = ("OSIsoft.REST.Core", "OSIsoft.REST.Documentation", "OSIsoft.REST.Services")
        return {name: dict(version) for name in assemblies}

    @router.route("GET", "/system/cacheinstances")
    def cache_instances(request: Request) -> dict:
        """System CacheInstances: the per-user AF SDK cache (refreshed every 5 min, kept 15 min idle)."""
        now = sim.now_ticks()
        minute = 60 * 10_000_000
        item = {
            "Id": str(sim.ids.guid("assetserver", 1)),
            "LastRefreshTime": format_ticks(now),
            "WillRefreshAfter": format_ticks(now + 5 * minute),
            "ScheduledExpirationTime": format_ticks(now + 15 * minute),
            "User": request.user or "Anonymous",
        }
        return {"Items": [item], "Links": {}}

    @router.route("GET", "/system/configuration/{key}")
    def configuration_item(request: Request, key: str) -> Any:
        settings = {k.lower(): v for k, v in configuration(request).items()}
        if key.lower() not in settings:
            raise ApiError(404, f"The configuration item '{key}' was not found.")
        return settings[key.lower()]

    @router.route("GET", "/search")
    def search_landing(request: Request) -> dict:
        """The Indexed Search controller's landing page (its index is not simulated: no sources)."""
        return {"Links": {"Self": request.link("/search"), "Sources": request.link("/search/sources")}}

    @router.route("GET", "/search/sources")
    def search_sources(request: Request) -> dict:
        return {"Links": {}, "Items": []}

    @router.route("GET", "/system/configuration")
    def configuration(request: Request) -> dict:
        c = sim.config
        return {
            "MaxReturnedItemsPerCall": c.max_returned_items_per_call,
            "RateLimitMaxRequests": c.rate_limit_max_requests,
            "RateLimitDuration": c.rate_limit_duration_s,
            "EnableCSRFDefense": True,
            "AuthenticationMethods": {"none": ["Anonymous"], "basic": ["Basic"], "bearer": ["Bearer"]}[c.auth],
            "WebIDType": "Full",
        }
