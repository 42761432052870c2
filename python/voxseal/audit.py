"""The reader's audit log: one JSON line per fetch, hash-chained, appended to a local file and
shipped to the audit bucket.

A record names the sample, the requester, the purpose (and reason), the session, the time and
the client's address where known. Records are shipped in batches as objects
`reads/<project>/<yyyy>/<mm>/<dd>/<session>/<first seq>-<last seq>.jsonl`, written with
`If-None-Match: *` so that a batch is never overwritten. A reader that cannot ship refuses to read
on once `max_unshipped` records wait: a fetch is never left unaudited for long.
"""

import datetime as _dt
import hashlib
import json
import os
import socket
import threading

GENESIS = "0" * 64


class AuditError(RuntimeError):
    """The read audit log cannot be written or shipped."""


def client_address(endpoint_host):
    """The local address this machine uses to reach `endpoint_host` (no packet is sent), or None."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((endpoint_host, 443))
            return s.getsockname()[0]
    except OSError:
        return None


def record_hash(prev, record):
    body = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256((prev + body).encode()).hexdigest()


class ReadAuditLog:
    """Appends records to `path` (created 0600) and ships them with `ship(key, body)` (e.g.
    `put_object` into the audit bucket) every `ship_every` records and on `close()`."""

    def __init__(self, path, *, project, session, ship=None, ship_every=50, max_unshipped=200):
        self.path, self.project, self.session = path, project, session
        self._ship, self._every, self._max = ship, ship_every, max_unshipped
        self._lock = threading.Lock()
        self._seq, self._prev = 0, GENESIS
        self._pending = []
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        self._file = os.fdopen(fd, "a", encoding="utf-8")

    def append(self, event, **fields):
        """Appends one record and returns it; ships a batch when one is due."""
        with self._lock:
            if self._ship and len(self._pending) >= self._max:
                raise AuditError(
                    f"{len(self._pending)} read records could not be shipped to the audit bucket: "
                    "reading stops until they are (check the session's s3:PutObject on reads/)"
                )
            self._seq += 1
            now = _dt.datetime.now(_dt.timezone.utc)
            record = {"seq": self._seq, "time": now.isoformat(timespec="milliseconds"), "event": event,
                      "project": self.project, "session": self.session, **fields, "prev": self._prev}
            record["hash"] = record_hash(self._prev, record)
            self._prev = record["hash"]
            self._file.write(json.dumps(record, sort_keys=True) + "\n")
            self._file.flush()
            self._pending.append(record)
            if self._ship and len(self._pending) >= self._every:
                self._flush_locked()
            return record

    def _flush_locked(self):
        os.fsync(self._file.fileno())
        if not (self._ship and self._pending):
            return
        first, last = self._pending[0], self._pending[-1]
        day = first["time"][:10].replace("-", "/")
        key = f"reads/{self.project}/{day}/{self.session}/{first['seq']:09d}-{last['seq']:09d}.jsonl"
        body = "".join(json.dumps(r, sort_keys=True) + "\n" for r in self._pending).encode()
        try:
            self._ship(key, body)
        except Exception as e:  # kept for the next batch; the cap above stops reading
            self.last_ship_error = e
            return
        self._pending = []

    def flush(self):
        """Writes the file to disk and ships what is pending."""
        with self._lock:
            self._flush_locked()

    def close(self):
        """Flushes; raises AuditError if records remain unshipped (they stay in the local file)."""
        with self._lock:
            self._flush_locked()
            self._file.close()
            if self._ship and self._pending:
                raise AuditError(
                    f"{len(self._pending)} read records were not shipped to the audit bucket "
                    f"({getattr(self, 'last_ship_error', '')}); they are in {self.path}"
                )


def verify(lines):
    """Checks a log's hash chain (an iterable of JSON lines); returns the number of records."""
    prev, n = GENESIS, 0
    for n, line in enumerate(lines, 1):
        r = json.loads(line)
        h = r.pop("hash")
        if r.get("prev") != prev or record_hash(prev, r) != h or r.get("seq") != n:
            raise AuditError(f"record {n}: the hash chain breaks here")
        prev = h
    return n
