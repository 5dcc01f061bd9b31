"""test_api_coverage.py — the binding stays in step with include/sdstream.h: every function the
header declares is bound (with its number of parameters) or listed in _lib.SKIPPED with a reason;
every struct the header defines is mirrored or listed in _lib.SKIPPED_STRUCTS; and the C compiler
agrees with ctypes on each mirrored struct's size and field offsets and on the constants the
binding copies. Reads the header itself, so a function added there fails this test until it is
bound or deliberately skipped."""
import os
import re
import shutil
import subprocess
from ctypes import sizeof
from pathlib import Path

import pytest

from conftest import REPO_DIR
from sdstream import _lib

HEADER = Path(os.environ.get("SDSTREAM_HEADER", REPO_DIR / "include" / "sdstream.h"))


def header_code():
    text = HEADER.read_text()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def declared_functions():
    """{name: number of parameters} of every function declaration in the header."""
    found = {}
    for m in re.finditer(r"\b(sd_\w+)\s*\(([^;{]*?)\)\s*;", header_code()):
        params = m.group(2).strip()
        if "(" in params:  # a function pointer member, not a declaration
            continue
        found[m.group(1)] = 0 if params in ("", "void") else params.count(",") + 1
    return found


def test_header_parses_to_the_known_api():
    functions = declared_functions()
    assert len(functions) >= 50 and "sd_stream_img2img" in functions and functions["sd_randn"] == 3


def test_every_public_function_is_bound_or_deliberately_skipped():
    declared = declared_functions()
    unbound = sorted(set(declared) - set(_lib.FUNCTIONS) - set(_lib.SKIPPED))
    assert not unbound, f"functions in sdstream.h without a binding or a SKIPPED reason: {unbound}"
    stale = sorted((set(_lib.FUNCTIONS) | set(_lib.SKIPPED)) - set(declared))
    assert not stale, f"bound or skipped but not in sdstream.h: {stale}"
    both = sorted(set(_lib.FUNCTIONS) & set(_lib.SKIPPED))
    assert not both, f"both bound and skipped: {both}"
    assert all(reason.strip() for reason in _lib.SKIPPED.values())


def test_bound_functions_take_the_headers_parameters():
    declared = declared_functions()
    wrong = {name: (len(argtypes), declared[name]) for name, (_, argtypes) in _lib.FUNCTIONS.items()
             if len(argtypes) != declared[name]}
    assert not wrong, f"(bound, declared) parameter counts differ: {wrong}"


def test_every_public_struct_is_mirrored_or_skipped():
    defined = set(re.findall(r"typedef\s+struct\s+(\w+)\s*\{", header_code()))
    mirrored = {s.__name__ for s in _lib.STRUCTS}
    missing = sorted(defined - mirrored - set(_lib.SKIPPED_STRUCTS))
    assert not missing, f"structs in sdstream.h neither mirrored nor skipped: {missing}"
    assert mirrored <= defined, f"mirrored structs the header lacks: {sorted(mirrored - defined)}"


CONSTANTS = {"SD_TOKENS": _lib.SD_TOKENS, "SD_MAX_T_INDEX": _lib.SD_MAX_T_INDEX,
             "SD_MAX_LORAS": _lib.SD_MAX_LORAS, "SD_OK": _lib.SD_OK, "SD_ERR_ARG": _lib.SD_ERR_ARG,
             "SD_ERR_UNSUPPORTED": _lib.SD_ERR_UNSUPPORTED,
             "SD_ERR_NOT_FOUND": _lib.SD_ERR_NOT_FOUND, "SD_ERR_STATE": _lib.SD_ERR_STATE,
             "SD_COMPONENT_ALL": _lib.SD_COMPONENT_ALL, "SD_PRECISION_FP32": _lib.SD_PRECISION_FP32,
             "SD_PRECISION_BF16": _lib.SD_PRECISION_BF16,
             **{f"SD_CFG_{k.upper()}": v for k, v in _lib.CFG_TYPES.items()}}


def test_struct_layouts_and_constants_match_the_c_compiler(tmp_path):
    cc = os.environ.get("CC", "cc")
    assert shutil.which(cc), f"C compiler '{cc}' not found (Debian: build-essential)"
    lines = ["#include <stddef.h>", "#include <stdio.h>", '#include "sdstream.h"', "int main(void) {"]
    expected = []
    for struct in _lib.STRUCTS:
        name = struct.__name__
        lines.append(f'printf("sizeof {name} %zu\\n", sizeof({name}));')
        expected.append(f"sizeof {name} {sizeof(struct)}")
        for field, _ in struct._fields_:
            lines.append(f'printf("offsetof {name}.{field} %zu\\n", offsetof({name}, {field}));')
            expected.append(f"offsetof {name}.{field} {getattr(struct, field).offset}")
    for name, value in CONSTANTS.items():
        lines.append(f'printf("{name} %lld\\n", (long long)({name}));')
        expected.append(f"{name} {value}")
    lines += ["return 0;", "}"]
    source, program = tmp_path / "abi.c", tmp_path / "abi"
    source.write_text("\n".join(lines) + "\n")
    subprocess.run([cc, "-std=c11", "-I", str(HEADER.parent), "-o", str(program), str(source)], check=True)
    got = subprocess.run([str(program)], check=True, capture_output=True, text=True).stdout.split("\n")
    mismatches = [(want, have) for want, have in zip(expected, got) if want != have]
    assert not mismatches, f"(ctypes, C) layouts differ: {mismatches}"
    assert len(got) - 1 == len(expected)


@pytest.mark.parametrize("name", sorted(_lib.FUNCTIONS))
def test_bound_function_is_exported(name):
    assert hasattr(_lib.lib, name)
