"""Workflow graphs as pure data: model, JSON format, port types, validation, templates.

``graphs`` imports nothing else of this project.
"""

from graphs.builder import GraphBuilder, NodeHandle, Output
from graphs.catalog import BlockSpec, Catalog, ParamProblem, PortSpec
from graphs.errors import GraphError, GraphValidationError
from graphs.keys import content_keys
from graphs.library import Template, builtin_templates, load_template, template_names
from graphs.model import FORMAT, Graph, Node, TileSpec, split_reference
from graphs.types import PortType, is_compatible, port_types, register_port_type
from graphs.validate import check, check_document, validate

__all__ = [
    "FORMAT", "BlockSpec", "Catalog", "Graph", "GraphBuilder", "GraphError",
    "GraphValidationError", "Node", "NodeHandle", "Output", "ParamProblem", "PortSpec",
    "PortType", "Template", "TileSpec", "builtin_templates", "check", "check_document",
    "content_keys", "is_compatible", "load_template", "port_types", "register_port_type",
    "split_reference", "template_names", "validate",
]
