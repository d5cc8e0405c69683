"""Spec -> networkx graph."""
from boundcalc.graph.build import build_graph

__all__ = ["build_graph"]
