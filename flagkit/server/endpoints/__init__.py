"""The endpoints of the local server, by area: ``sdk``, ``events``, ``stream`` and ``admin``.

Each endpoint is a function ``(ctx, ex)`` of a
:class:`~flagkit.server.context.ServerContext` and the
:class:`~flagkit.server.exchange.Exchange` being answered; routing lives in
:mod:`flagkit.server.handler`.
"""
