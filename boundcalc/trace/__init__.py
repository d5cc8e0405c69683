"""nn.Module → spec: capture the model (``torch.export``, else ``torch.fx``), map its ops to the registry's
kinds, write the YAML, and check it is the model (shapes, then one forward pass). What cannot be expressed
is reported as rows (:class:`Unsupported`), never guessed.

- :mod:`.target`: TARGET strings → the user's model (imports and runs the user's code)
- :mod:`.capture`, :mod:`.fx_capture`, :mod:`.nodes`: the captured graph in one form
- :mod:`.mapping`, :mod:`.mapping_maps`, :mod:`.table`, :mod:`.kinds`: aten ops → drafts → registered kinds
- :mod:`.assemble`, :mod:`.writer`, :mod:`.driver`: layers, names, edges, YAML, checks
- :mod:`.api`: ``spec_from_module`` and ``evaluate_model``
"""
from boundcalc.trace.driver import TracedSpec, check_input_shape, parse_input_shape, trace_model
from boundcalc.trace.report import TraceError, Unsupported, UnsupportedError

__all__ = ["TracedSpec", "trace_model", "parse_input_shape", "check_input_shape", "TraceError", "Unsupported",
           "UnsupportedError"]
