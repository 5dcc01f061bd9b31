"""safetensors_file.py — a minimal reader of the golden .safetensors files for the tests (the
binding itself never reads them): u64 header length, JSON header, raw little-endian tensors."""
import json
import struct

import numpy as np

_DTYPES = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4", "U8": "u1", "F16": "<f2"}


class SafetensorsFile:
    def __init__(self, path):
        self.path = str(path)
        with open(path, "rb") as f:
            data = f.read()
        (header_len,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + header_len])
        self.metadata = header.pop("__metadata__", {})
        self._header, self._data = header, memoryview(data)[8 + header_len:]

    def __contains__(self, name):
        return name in self._header

    def tensor(self, name):
        entry = self._header[name]
        begin, end = entry["data_offsets"]
        return np.frombuffer(self._data[begin:end], dtype=_DTYPES[entry["dtype"]]).reshape(entry["shape"])

    def meta(self, key):
        """A metadata value, JSON-decoded when it is JSON (the goldens encode non-strings so)."""
        value = self.metadata[key]
        try:
            return json.loads(value)
        except ValueError:
            return value
