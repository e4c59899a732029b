"""The wait: one machine, and its two drivers.

* :mod:`.machine`: what a wait decides, for one job or many, with no I/O (told the time with
  every input; answers with the next action: get, list, subscribe, read, sleep, or an end).
* :mod:`.blocking`: the loop that carries the actions out with ``requests`` (``wait_for``,
  ``wait_all``, ``as_completed``, the CLI).
* :mod:`.aio`: the same loop with ``await`` and httpx (Airflow's trigger).
* :mod:`.targets`: the job designations a wait accepts.

The two transports the drivers use live in :mod:`waylay_jobs._http`, over one HTTP core.
"""
