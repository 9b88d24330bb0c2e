"""The download streams: the CSV reaches the output while Voucherify is still sending it."""

from __future__ import annotations

import io

import pytest
import responses

from django_voucherify_orders.emulator import jobs as emulator_jobs

pytestmark = pytest.mark.django_db(transaction=True)

PIECE = 16 * 1024  # what one read of the transport gives
ROWS = 60_000  # ~3 MB of CSV: dozens of download chunks


class TrickleBody(io.BytesIO):
    """The download's body, a piece per read; each read notes how much of the CSV had
    reached the output's file (``<name>.part`` beside it) by then."""

    def __init__(self, data: bytes, directory) -> None:
        super().__init__(data)
        self.directory = directory
        self.produced = 0
        self.on_disk_at_each_read: list[tuple[int, int]] = []

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            return b""
        written = sum(p.stat().st_size for p in self.directory.glob(".orders.csv.*.part"))
        self.on_disk_at_each_read.append((self.produced, written))
        piece = super().read(PIECE if size is None or size < 0 else min(size, PIECE))
        self.produced += len(piece)
        return piece

    def isclosed(self) -> bool:  # what urllib3 asks of responses' bodies
        return self.closed


def big_csv(params, records) -> str:
    rows = "".join(f"ord_{n:020},{n},PAID\r\n" for n in range(ROWS))
    return "id,source_id,status\r\n" + rows


def test_the_csv_is_written_while_it_downloads(export, synced_shop, tmp_path, media, monkeypatch):
    monkeypatch.setattr(emulator_jobs, "render_csv", big_csv)
    bodies: list[TrickleBody] = []
    handle_body = responses._handle_body

    def instrumented(body):
        if isinstance(body, bytes) and body.startswith(b"id,source_id,status\r\n"):
            bodies.append(TrickleBody(body, tmp_path))
            return bodies[-1]
        return handle_body(body)

    monkeypatch.setattr(responses, "_handle_body", instrumented)
    output = tmp_path / "orders.csv"

    result = export("-o", str(output))

    assert f"Exported {ROWS} rows" in result.stdout
    (body,) = bodies
    total = len(big_csv(None, None))
    assert body.produced == total == output.stat().st_size
    # By the time the last piece was produced, all but the last few chunks were on disk:
    # a client that buffered the body would have written nothing yet.
    produced, on_disk = body.on_disk_at_each_read[-1]
    assert produced > total - PIECE * 2
    assert on_disk >= total - 3 * 64 * 1024
