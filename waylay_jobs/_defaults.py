"""Defaults of the streaming and waiting options, in a module of their own so that
``JobsClient``'s signatures need none of the heavier modules at import time."""

#: The largest event accepted by default, in bytes of the normalised stream (job events are
#: well under 10 KiB; this only guards against a runaway stream).
DEFAULT_MAX_EVENT_SIZE = 8 * 1024 * 1024
#: Seconds without a single byte on the stream before the connection is presumed dead.
#: Longer than any sane keep-alive interval; the job service's interval is undocumented.
DEFAULT_IDLE_TIMEOUT = 60.0
#: Consecutive stream failures after which the waiter polls ``get`` instead.
DEFAULT_MAX_STREAM_FAILURES = 5
#: Seconds between ``get`` calls once polling.
DEFAULT_POLL_INTERVAL = 5.0
