"""Node ids in namespace-URI form, resolved per session, and browse-based discovery.

Namespace indexes may change when a server restarts; URIs do not. Config and records use `nsu=<uri>;...`;
the index is looked up on every connect.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from asyncua import Client, ua

from iot_connector.sources.opcua.config import NODE_ID, BrowseConfig, MonitoringConfig, NodeConfig, OpcuaConfig
from iot_connector.sources.opcua.values import is_good


@dataclass
class Tag:
    """A node resolved for the current session."""

    node_id: ua.NodeId
    tag_id: str  # stable nsu= form
    name: str  # tag_path
    monitoring: MonitoringConfig


@dataclass
class BrowseEntry:
    node_id: ua.NodeId
    tag_id: str
    path: str
    node_class: str


def resolve(node_id: str, namespaces: list[str]) -> ua.NodeId:
    """`nsu=<uri>;s=X` -> NodeId with this session's namespace index; raises ValueError naming the URI."""
    match = NODE_ID.match(node_id)
    if match is None:
        raise ValueError(f"node id {node_id!r} is malformed")
    uri = match["uri"]
    if uri is None:
        return ua.NodeId.from_string(node_id)
    if uri not in namespaces:
        raise ValueError(f"node {node_id!r}: the server has no namespace {uri!r} (it has {namespaces})")
    return ua.NodeId.from_string(f"ns={namespaces.index(uri)};{match['kind']}={match['ident']}")


def stable_id(node_id: ua.NodeId, namespaces: list[str]) -> str:
    """NodeId -> `nsu=<uri>;...` for non-zero namespaces (namespace 0 is the fixed OPC UA one)."""
    text = node_id.to_string()
    if node_id.NamespaceIndex == 0 or node_id.NamespaceIndex >= len(namespaces):
        return text
    return f"nsu={namespaces[node_id.NamespaceIndex]};{text.split(';', 1)[1]}"


async def discover(
    client: Client, browse: BrowseConfig, namespaces: list[str], variables_only: bool = True
) -> list[BrowseEntry]:
    """Breadth-first browse from `browse.root` to `browse.depth`, keeping entries whose path matches."""
    found: list[BrowseEntry] = []
    frontier = [(client.get_node(resolve(browse.root, namespaces)), "")]
    for _ in range(browse.depth):
        next_frontier = []
        for node, path in frontier:
            for ref in await node.get_children_descriptions():
                child_path = f"{path}/{ref.BrowseName.Name}" if path else ref.BrowseName.Name
                node_class = ref.NodeClass
                if node_class == ua.NodeClass.Object:
                    next_frontier.append((client.get_node(ref.NodeId), child_path))
                wanted = node_class == ua.NodeClass.Variable or not variables_only
                if wanted and fnmatch.fnmatchcase(child_path, browse.filter):
                    found.append(
                        BrowseEntry(ref.NodeId, stable_id(ref.NodeId, namespaces), child_path, node_class.name)
                    )
                    if len(found) >= browse.max_nodes:
                        return found
        frontier = next_frontier
    return found


def _merged(defaults: MonitoringConfig, node: NodeConfig | None) -> MonitoringConfig:
    if node is None:
        return defaults
    overrides = {k: v for k, v in node.model_dump(include=set(MonitoringConfig.model_fields)).items() if v is not None}
    return defaults.model_copy(update=overrides)


async def build_tags(client: Client, config: OpcuaConfig, namespaces: list[str]) -> list[Tag]:
    """Configured nodes (names read from the server when not given) plus discovered variables, no duplicates."""
    tags: dict[str, Tag] = {}
    resolved = [(node, resolve(node.id, namespaces)) for node in config.nodes]
    unnamed = [node_id for node, node_id in resolved if node.name is None]
    names: dict[ua.NodeId, str] = {}
    if unnamed:
        values = await client.read_attributes([client.get_node(n) for n in unnamed], ua.AttributeIds.BrowseName)
        for node_id, dv in zip(unnamed, values):
            if is_good(dv) and dv.Value is not None:
                names[node_id] = dv.Value.Value.Name
    for node, node_id in resolved:
        tag_id = stable_id(node_id, namespaces)
        tags[tag_id] = Tag(node_id, tag_id, node.name or names.get(node_id, tag_id), _merged(config.monitoring, node))
    if config.browse is not None:
        for entry in await discover(client, config.browse, namespaces):
            tags.setdefault(entry.tag_id, Tag(entry.node_id, entry.tag_id, entry.path, config.monitoring))
    return list(tags.values())
