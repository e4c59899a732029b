"""HTTP: one core without I/O, two transports that only send and read.

* ``blocking``: the ``requests`` transport of :class:`~waylay_jobs.JobsClient` (sessions,
  retries, streams).
* ``auth``: the ``requests`` auths: a static bearer token, or an API key pair exchanged for
  a token that is renewed.
* ``aio``: the ``httpx`` transport of the asyncio wait (the Airflow trigger): per-loop
  clients, the token of a key pair, ``get`` and the event stream.
"""
