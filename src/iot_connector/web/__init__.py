"""The edge agent's web GUI: `serve(config_dir)` runs the agent, the GUI (:8080) and metrics (:9090)."""

from iot_connector.web.app import create_app
from iot_connector.web.server import serve

__all__ = ["create_app", "serve"]
