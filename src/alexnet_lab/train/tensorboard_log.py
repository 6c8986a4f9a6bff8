"""A minimal TensorBoard scalar writer that imports no framework.

tensorboard's own EventFileWriter imports TensorFlow when it is installed, and TensorFlow loaded
next to PyTorch in one process can crash the PyTorch loop; so the record framing (TFRecord:
length, masked CRC-32C of the length, payload, masked CRC-32C of the payload) is written here and
only tensorboard's protobuf classes are used.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path

from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli polynomial, reflected
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _record(payload: bytes) -> bytes:
    header = struct.pack("<Q", len(payload))
    return header + struct.pack("<I", masked_crc(header)) + payload + struct.pack("<I", masked_crc(payload))


class ScalarWriter:
    """Append scalars to a new event file in `log_dir` (one file per process start, as TensorBoard expects)."""

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        folder = Path(log_dir)
        folder.mkdir(parents=True, exist_ok=True)
        now = time.time()
        self.path = folder / f"events.out.tfevents.{int(now)}.{socket.gethostname()}.{os.getpid()}"
        self._file = open(self.path, "ab")
        self._write(Event(wall_time=now, step=0, file_version="brain.Event:2"))

    def _write(self, event: Event) -> None:
        self._file.write(_record(event.SerializeToString()))
        self._file.flush()

    def add_scalars(self, step: int, values: dict[str, float]) -> None:
        summary = Summary(value=[Summary.Value(tag=tag, simple_value=float(v)) for tag, v in values.items()])
        self._write(Event(wall_time=time.time(), step=step, summary=summary))

    def purge_after(self, step: int) -> None:
        """Tell TensorBoard to drop events after `step` (written on resume, like torch's purge_step)."""
        from tensorboard.compat.proto.event_pb2 import SessionLog

        self._write(Event(wall_time=time.time(), step=step, session_log=SessionLog(status=SessionLog.START)))

    def close(self) -> None:
        self._file.close()
