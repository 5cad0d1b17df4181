"""A guard for tests that must not touch the network."""

import socket


def record_connections(monkeypatch):
    """Every outgoing connection attempt from now on, refused and listed (a test that must
    not touch the network asserts the list stays empty, instead of timing itself)."""
    attempts = []

    def refuse(sock, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"test: no network ({address!r})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts
