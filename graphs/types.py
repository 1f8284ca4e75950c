"""Port types: what travels on an edge.

A port type is a name (upper case by convention) with an optional parent: a value of a
sub-type may go wherever its parent is accepted (a ``DEPTH`` map is an ``IMAGE``). ``ANY``
accepts and matches everything. Plugins add their own with :func:`register_port_type`.

Runtime values of the built-in types:

======================  =============================================================
``IMAGE``               ``numpy.float32`` array ``[batch, height, width, channels]``, 0..1
``MASK``                ``numpy.float32`` array ``[batch, height, width]``, 0..1
``LATENT``              ``torch.Tensor`` ``[batch, channels, height/8, width/8]``
``CONDITIONING``        a dict of tensors produced by an encode block
``TILES``               a :class:`dict` with the tile images and their layout
``PALETTE``             ``numpy.float32`` array ``[colours, 3]``, 0..1
``SIGMAS``              ``torch.Tensor`` ``[steps + 1]`` float32: a noise schedule, descending
``TEXT`` / ``INT`` / ``FLOAT`` / ``BOOL``   plain Python values
======================  =============================================================
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PortType:
    """A named port type, optionally the sub-type of another."""

    name: str
    parent: str | None = None
    description: str = ""

    def __str__(self) -> str:
        return self.name


_REGISTRY: dict[str, PortType] = {}


def register_port_type(name: str, parent: str | None = None, description: str = "") -> PortType:
    """Declare a port type; re-declaring the same type is a no-op, a conflicting one an error.

    >>> register_port_type("DEPTH", parent="IMAGE", description="depth map").name
    'DEPTH'
    """
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"port type name must be alphanumeric, got {name!r}")
    if parent is not None and parent not in _REGISTRY:
        raise ValueError(f"port type {name!r}: unknown parent type {parent!r}")
    new = PortType(name, parent, description)
    old = _REGISTRY.get(name)
    if old is not None:
        if old.parent != parent:
            raise ValueError(
                f"port type {name!r} already declared with parent {old.parent!r}, not {parent!r}"
            )
        return old
    _REGISTRY[name] = new
    return new


def port_type(name: str) -> PortType:
    """The registered type called ``name``; ``KeyError`` naming the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown port type {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def is_port_type(name: str) -> bool:
    return name in _REGISTRY


def port_types() -> list[PortType]:
    """All registered port types, sorted by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def _ancestors(name: str) -> list[str]:
    chain = [name]
    t = _REGISTRY.get(name)
    while t is not None and t.parent is not None:
        chain.append(t.parent)
        t = _REGISTRY.get(t.parent)
    return chain


def is_compatible(output: str, input: str) -> bool:
    """Whether a value of type ``output`` may be wired to an input of type ``input``.

    >>> is_compatible("INT", "FLOAT"), is_compatible("FLOAT", "INT"), is_compatible("MASK", "ANY")
    (True, False, True)
    """
    if output == "ANY" or input == "ANY":
        return True
    if output == "INT" and input == "FLOAT":
        return True
    return input in _ancestors(output)


ANY = register_port_type("ANY", description="any value")
IMAGE = register_port_type("IMAGE", description="float32 array [B, H, W, C] in 0..1")
MASK = register_port_type("MASK", description="float32 array [B, H, W] in 0..1")
LATENT = register_port_type("LATENT", description="torch tensor [B, C, H/8, W/8]")
CONDITIONING = register_port_type("CONDITIONING", description="text/image conditioning tensors")
TILES = register_port_type("TILES", description="image tiles plus their layout")
PALETTE = register_port_type("PALETTE", description="float32 array [N, 3] of colours in 0..1")
TEXT = register_port_type("TEXT", description="a string")
INT = register_port_type("INT", description="an integer")
FLOAT = register_port_type("FLOAT", description="a float")
BOOL = register_port_type("BOOL", description="a boolean")
SIGMAS = register_port_type(
    "SIGMAS", description="a noise schedule: float32 tensor [steps + 1] of descending sigmas (ComfyUI's)")
