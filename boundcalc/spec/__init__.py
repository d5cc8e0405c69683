"""Specs: YAML -> validated Spec."""
from boundcalc.spec.load import Spec, load_spec, parse_spec

__all__ = ["Spec", "load_spec", "parse_spec"]
