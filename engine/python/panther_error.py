"""PantherError, the exception type of Panther's panther_core.exceptions.

pantherd embeds this file at build time (engine/CMakeLists.txt turns it into a
C++ character array) and executes it in the namespace of the _pantherd_event
module when that module is created (engine/event.cc); panther_core.exceptions
re-exports it. This docstring does not become that module's __doc__: the
module's own is set after this file runs. Its unit tests are
engine/python/panther_error_test.py.
"""
class PantherError(Exception):
    """Panther's error type; str() joins extra arguments after the first."""

    def __str__(self):
        if len(self.args) > 1:
            return f'{self.args[0]}: {", ".join(map(str, self.args[1:]))}'
        return self.args[0] if self.args else ""
