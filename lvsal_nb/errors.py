"""Every error lvsal-nb raises on purpose. Each message says what was wrong and what to do."""


class LvsalError(Exception):
    """Base class: catch this to handle any lvsal-nb usage error."""


class ConfigError(LvsalError, ValueError):
    """A parameter is out of range (k < 1, beta < 0, layer out of range, empty prompt ...)."""


class UnsupportedModelError(LvsalError, TypeError):
    """The model's architecture has no adapter, or its attention cannot carry the probe."""


class ImageError(LvsalError, ValueError):
    """The image is missing, unreadable, or of the wrong kind."""


class TraceFileError(LvsalError, OSError):
    """A trace file is corrupt, of another kind, or written by a newer schema."""


class AnnotationStoreError(LvsalError, OSError):
    """The marks database cannot be opened or written."""


class FileWriteError(LvsalError, OSError):
    """A file could not be written (full disk, no permission, read-only folder ...); the previous
    version of the file, if any, is untouched."""


class RunBusyError(LvsalError, RuntimeError):
    """Another process holds the lock of an evaluation run folder."""


class ModelBusyError(LvsalError, RuntimeError):
    """Another trace, analysis or `lv.locore` block holds the model (one at a time per model object)."""
