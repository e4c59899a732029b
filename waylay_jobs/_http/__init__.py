"""HTTP: one core without I/O, two transports that only send and read.

* ``core``: what both transports decide alike, without I/O: headers, the token exchange as
  data and its answer, what an answer means and the exception for it.
* ``blocking``: the ``requests`` transport of :class:`~waylay_jobs.JobsClient` (sessions,
  retries, streams).
* ``auth``: the ``requests`` auths: a static bearer token, or an API key pair exchanged for
  a token that is renewed.
* ``aio``: the ``httpx`` transport of the asyncio wait (the Airflow trigger): per-loop
  clients, the token of a key pair, ``get_job`` and ``list_jobs`` (one attempt each: the wait
  machine retries) and the event stream.
"""
