"""A read session's budget: the application-level version of the bucket's bulk-read alarm. Reads
past it are refused before they are made."""

# The template's BulkReadThreshold default: the alarm's GETs per 5 minutes.
DEFAULT_MAX_SAMPLES = 100


class ReadBudgetExceeded(RuntimeError):
    """A read past the session's budget."""


class ReadBudget:
    """At most `max_samples` samples and `max_bytes` ciphertext bytes (None: no byte limit)."""

    def __init__(self, max_samples=DEFAULT_MAX_SAMPLES, max_bytes=None):
        if max_samples < 1 or (max_bytes is not None and max_bytes < 1):
            raise ValueError("a read budget needs room for at least one sample")
        self.max_samples, self.max_bytes = max_samples, max_bytes
        self.samples = 0
        self.bytes = 0

    def charge(self, sample_id, size):
        """Accounts one sample of `size` ciphertext bytes, or raises ReadBudgetExceeded."""
        if self.samples + 1 > self.max_samples or (self.max_bytes is not None and self.bytes + size > self.max_bytes):
            limit = f"{self.max_samples} samples" + (f" or {self.max_bytes} bytes" if self.max_bytes else "")
            raise ReadBudgetExceeded(
                f"reading {sample_id} would pass this session's read budget ({limit}; read so far: "
                f"{self.samples} samples, {self.bytes} bytes): open a new session with a budget "
                "that matches the job (budget=ReadBudget(max_samples=...)), or narrow the selection"
            )
        self.samples += 1
        self.bytes += size
