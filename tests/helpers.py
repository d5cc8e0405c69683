"""Small objects shared by several test modules."""


class WritesAFile:
    """Pickles to a call of ``exec`` that writes ``target``: a checkpoint containing it must never be
    unpickled (the tests assert that ``target`` does not exist afterwards)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (exec, (f"open({self.target!r}, 'w').write('pwned')",))
