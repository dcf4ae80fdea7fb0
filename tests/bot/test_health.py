"""GET /healthz: 200 while the database and the store answer, 503 otherwise."""

from __future__ import annotations

from pathlib import Path

from tortoise import connections

from bot import keys


async def test_healthy(client):
    response = await client.get("/healthz")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok" and body["store"] == "ok"


async def test_database_down_is_503(client, tmp_path: Path):
    conn = connections.get("default")
    await conn.close()
    # the next query reconnects: to a database that is not there
    if hasattr(conn, "filename"):
        saved = ("filename", conn.filename)
        conn.filename = str(tmp_path / "no-such-dir" / "db.sqlite3")
    else:
        saved = ("port", conn.port)
        conn.port = 1
    try:
        response = await client.get("/healthz")
        assert response.status == 503
        body = await response.json()
        assert body["status"] != "ok" and body["database"].startswith("down")
        assert body["store"] == "ok"
    finally:
        await conn.close()
        setattr(conn, *saved)
        # tortoise's SQLite client keeps its lock when a reconnect fails (ConnectionWrapper
        # takes it before connecting and never gives it back): without this, every later
        # query would wait forever.
        lock = getattr(conn, "_lock", None)
        if lock is not None and lock.locked():
            lock.release()
    assert (await client.get("/healthz")).status == 200  # and back when it is


async def test_store_down_is_503(client, monkeypatch):
    async def down() -> bool:
        raise ConnectionError("store unreachable")

    monkeypatch.setattr(client.app[keys.STORE], "ping", down)
    response = await client.get("/healthz")
    assert response.status == 503
    body = await response.json()
    assert body["database"] == "ok" and body["store"].startswith("down")
    assert "unreachable" not in body["store"]  # the cause is the operator's, not the caller's
