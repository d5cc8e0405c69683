"""The chain-rule calculus: state, per-op rules, rule sets, composition, recurrences."""
