"""Alerts: webhooks when something an operator must know about happens.

:mod:`.config` reads ``[alerts]``; :mod:`.policy` turns stats snapshots and notices into
alerts, once per condition; :mod:`.bodies` renders them for generic JSON, ntfy and
Discord webhooks. The thin task that posts them without ever standing in mining's way
is :mod:`stratum_client.daemon.alerts`, beside the other daemon companions (this package
stays pure, so ``config`` can read ``[alerts]`` without an import cycle). See
``docs/alerts.md``.
"""
