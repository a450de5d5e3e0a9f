"""The traced dependency graph: which dimensions of which tensors are coupled and must be pruned together."""

from .dependency import ChannelTracer, DependencyGraph, ParamDim, UnsupportedOpError, build_graph

__all__ = ["ChannelTracer", "DependencyGraph", "ParamDim", "UnsupportedOpError", "build_graph"]
