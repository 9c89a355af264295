#!/usr/bin/env python3
"""Walk an .rkv artifact with python3-msgpack alone, as docs/ARTIFACT.md
describes, and check it: every object in order, offsets, lengths, and the
xxhash64 of the header and of every payload (xxh64 written out below, so
nothing but msgpack is needed). Prints a JSON summary; exits 1 on any
inconsistency."""

import json
import struct
import sys

import msgpack

M = (1 << 64) - 1
P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                      0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)


def rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M


def xxh64(data, seed=0):
    """XXH64 as specified in xxHash's doc/xxhash_spec.md."""
    def rnd(acc, lane):
        return (rotl((acc + lane * P2) & M, 31) * P1) & M

    def merge(acc, v):
        return ((acc ^ rnd(0, v)) * P1 + P4) & M

    n, i = len(data), 0
    if n >= 32:
        v = [(seed + P1 + P2) & M, (seed + P2) & M, seed, (seed - P1) & M]
        while i + 32 <= n:
            lanes = struct.unpack_from("<4Q", data, i)
            v = [rnd(a, l) for a, l in zip(v, lanes)]
            i += 32
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & M
        for a in v:
            h = merge(h, a)
    else:
        h = (seed + P5) & M
    h = (h + n) & M
    while i + 8 <= n:
        h ^= rnd(0, struct.unpack_from("<Q", data, i)[0])
        h = (rotl(h, 27) * P1 + P4) & M
        i += 8
    if i + 4 <= n:
        h ^= (struct.unpack_from("<I", data, i)[0] * P1) & M
        h = (rotl(h, 23) * P2 + P3) & M
        i += 4
    while i < n:
        h ^= (data[i] * P5) & M
        h = (rotl(h, 11) * P1) & M
        i += 1
    h ^= h >> 33
    h = (h * P2) & M
    h ^= h >> 29
    h = (h * P3) & M
    return h ^ (h >> 32)


def fail(msg):
    print("walk.py: " + msg, file=sys.stderr)
    sys.exit(1)


def walk(path):
    assert xxh64(b"") == 0xEF46DB3751D8E999, "xxh64 self-test"
    with open(path, "rb") as f:
        raw = f.read()
    with open(path, "rb") as f:
        # max_buffer_size=0 lifts the default 100 MiB object limit to 4 GiB - 1.
        up = msgpack.Unpacker(f, raw=False, max_buffer_size=0)
        header = up.unpack()
        header_len = up.tell()
        if not isinstance(header, dict) or header.get("format") != "rwkvkit":
            fail("first object is not an rwkvkit header")
        if header["format_version"] != 1:
            fail("unsupported major version %r" % header["format_version"])
        chunk = header["chunk_size"]
        tensors, objects = [], 1
        for t in header["tensors"]:
            if up.tell() != t["offset"]:
                fail("%s: payload at %d, header says %d" % (t["name"], up.tell(), t["offset"]))
            n = t["length"]
            parts = []
            for _ in range(max(1, -(-n // chunk))):
                b = up.unpack()
                objects += 1
                if not isinstance(b, bytes):
                    fail("%s: payload object is not bin" % t["name"])
                parts.append(b)
            data = b"".join(parts)
            if len(data) != n:
                fail("%s: %d payload bytes, header says %d" % (t["name"], len(data), n))
            tensors.append({"name": t["name"], "dtype": t["dtype"], "shape": t["shape"],
                            "length": n, "xxhash64": "%016x" % xxh64(data),
                            "quant": t.get("quant")})
        index_offset = up.tell()
        index = up.unpack()
        end = up.unpack()
        objects += 2
        try:
            up.unpack()
            fail("objects after the end marker")
        except msgpack.OutOfData:
            pass
    if end != index_offset or raw[-9] != 0xCF:
        fail("end marker %r, index at %d" % (end, index_offset))
    if index["header_xxhash64"] != xxh64(raw[:header_len]):
        fail("header checksum mismatch")
    for t, s in zip(tensors, index["tensor_xxhash64"]):
        if t["xxhash64"] != "%016x" % s:
            fail("%s: checksum mismatch" % t["name"])
    if len(index["tensor_xxhash64"]) != len(tensors):
        fail("index has %d checksums for %d tensors" % (len(index["tensor_xxhash64"]), len(tensors)))
    return {"format_version": [header["format_version"], header.get("format_minor", 0)],
            "model": header.get("model"), "provenance": header.get("provenance"),
            "tensors": tensors, "objects": objects}


if __name__ == "__main__":
    print(json.dumps(walk(sys.argv[1])))
