"""The package's version, written into ``_version.py`` by the build; 0.0.0 in a never-built source tree."""

try:
    from ._version import __version__
except ImportError:  # running from a source tree that was never built
    __version__ = "0.0.0"
