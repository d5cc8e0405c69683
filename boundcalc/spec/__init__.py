"""Specs: YAML -> validated Spec (:mod:`boundcalc.spec.load`). The package imports nothing eagerly: op kinds
(:mod:`boundcalc.ops`) build on :mod:`boundcalc.spec.model`, and the loader builds on the op kinds."""


def __getattr__(name: str):
    if name in __all__:
        from boundcalc.spec import load

        return getattr(load, name)
    raise AttributeError(f"module 'boundcalc.spec' has no attribute {name!r}")


__all__ = ["Spec", "load_spec", "parse_spec"]
