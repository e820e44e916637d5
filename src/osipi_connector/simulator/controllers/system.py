"""Landing page (`GET /piwebapi`) and `/system`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from osipi_connector import __version__
from osipi_connector.simulator.http import Request

if TYPE_CHECKING:
    from osipi_connector.simulator.core import Simulator

PRODUCT_VERSION = "1.19.1.33"  # PI Web API 2023 SP1 (WebID 2.0, Bearer via AVEVA Identity Manager)


def register(sim: Simulator) -> None:
    router = sim.router

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
        return {"UpTimeInMinutes": 1.0, "State": "Running", "CacheInstances": 1}

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
