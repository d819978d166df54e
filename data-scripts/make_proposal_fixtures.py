#!/usr/bin/env python3
"""Writes the proposal-file fixtures of tests/proposal_files.rs into tests/fixtures/proposals/.

    python3 data-scripts/make_proposal_fixtures.py [--python2 "CMD"]

Needs numpy and scipy (system python3). The files, all tiny:

- detectron_py2.pkl: Detectron's selective-search pickle as Python 2 wrote it
  (cPickle.dump(d, f, 2), numpy 1: `numpy.core.multiarray._reconstruct`, array bytes as Python 2
  `str`, i.e. SHORT_BINSTRING, or BINSTRING above 255 bytes). No Python 2 is needed: the stream
  is emitted opcode by opcode below as Python 2.7's cPickle emits it (memo from 1; no memo for
  tuples, for strings shorter than 2, or for strings only their container refers to; the keys
  in Python 2's dict order). How it was checked: with
  `--python2 "env PYTHONPATH=/tmp/py2numpy /root/.pyenv/versions/2.7.18/bin/python"` (Python
  2.7.18, numpy 1.16.6 from PyPI) the script also has real cPickle pickle the same dict and
  fails unless the bytes are identical; they were, and Python 2 loaded it back equal.
- py2_misc.pkl (written only with --python2, by real Python 2.7 cPickle, protocol 2): a dict
  of a 1001-int list (APPENDS batches of 1000), 2**40 (a 64-bit int cPickle writes as text),
  a float, None, True, a float64 2x3 array, a Fortran-ordered big-endian int32 3x2 array and
  a uint8 array. The tests read it and check that sslbench's writer reproduces its bytes.
- detectron_py3_protocol2.pkl: the same dict re-saved by Python 3, pickle.dump(d, f, protocol=2)
  (numpy 2 writes `numpy._core.multiarray`, bytes via `_codecs.encode(text, 'latin1')`).
- rpn_py3_protocol5.pkl: an RPN-style file (`boxes`, `scores`, `ids`, `cfg`) at protocol 5
  (numpy's `_frombuffer` with in-band BYTEARRAY8, FRAME, MEMOIZE, STACK_GLOBAL), with a
  big-endian Fortran-ordered float32 array and a float64 one among the boxes, numpy int64 ids
  and non-zero scores.
- ss_voc_2007_test.mat: py-faster-rcnn's selective_search_data layout (scipy.io.savemat,
  v5, uncompressed): cell `boxes` of 1-based y1 x1 y2 x2 doubles, cell `images` of ids.
- ss_voc_2007_test_compressed.mat: the same boxes compressed (miCOMPRESSED), without
  `images` (py-faster-rcnn matches by image-set order).
- matlab_struct_char.mat: a struct with char, double, int16, logical and cell fields, a 2-row
  char matrix and a 3-D int32 array (compressed), for the MAT reader itself.
- expected.json: the ids, 0-based x1 y1 x2 y2 boxes and scores every proposal fixture holds,
  and the values of matlab_struct_char.mat.
"""

import argparse
import json
import os
import pickle
import struct
import subprocess
import sys

import numpy as np
import scipy.io

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "proposals")

IDS = ["000012", "000017", "000023"]
INDEXES = [12, 17, 23]


def boxes_0based():
    """Three images: 3 boxes, none, and 20 (320 bytes: above SHORT_BINSTRING's 255)."""
    a = np.array([[0, 1, 2, 3], [10.5, 20.25, 30, 40], [4, 5, 499, 374]], dtype=np.float32)
    b = np.zeros((0, 4), dtype=np.float32)
    k = np.arange(20, dtype=np.float32)[:, None]
    c = np.hstack([k, 2 * k, k + 10.5, 2 * k + 20.25]).astype(np.float32)
    return [a, b, c]


def detectron_dict():
    boxes = boxes_0based()
    scores = [np.zeros(len(b), dtype=np.float32) for b in boxes]
    return {"boxes": boxes, "scores": scores, "indexes": list(INDEXES)}


class Py2CPickle:
    """The protocol-2 stream Python 2.7's cPickle writes for a dict of lists of float32
    arrays and ints (Detectron's proposal files)."""

    def __init__(self):
        self.out = bytearray(b"\x80\x02")
        self.next = 1  # cPickle numbers its memo from 1 (pickle.py from 0)
        self.globals = {}
        self.dtype_memo = None

    def put(self):
        i = self.next
        self.next += 1
        self.out += b"q" + bytes([i]) if i < 256 else b"r" + struct.pack("<I", i)
        return i

    def get(self, i):
        self.out += b"h" + bytes([i]) if i < 256 else b"j" + struct.pack("<I", i)

    def int(self, v):
        if 0 <= v <= 0xFF:
            self.out += b"K" + bytes([v])
        elif 0 <= v <= 0xFFFF:
            self.out += b"M" + struct.pack("<H", v)
        elif -(2**31) <= v < 2**31:
            self.out += b"J" + struct.pack("<i", v)
        else:
            self.out += b"I%d\n" % v  # a 64-bit C long as text

    def string(self, b):
        if len(b) < 256:
            self.out += b"U" + bytes([len(b)]) + b
        else:
            self.out += b"T" + struct.pack("<I", len(b)) + b

    def glob(self, qualified):
        if qualified in self.globals:
            return self.get(self.globals[qualified])
        self.out += b"c" + qualified + b"\n"
        self.globals[qualified] = self.put()

    def dtype_f4(self):
        # numpy's dtype.__reduce__: (dtype, ('f4', 0, 1), (3, '<', None, None, None, -1, -1, 0));
        # the dtype object is a singleton, memoized after REDUCE and fetched after that.
        if self.dtype_memo is not None:
            return self.get(self.dtype_memo)
        self.glob(b"numpy\ndtype")
        self.string(b"f4")
        self.int(0)
        self.int(1)
        self.out += b"\x87R"
        self.dtype_memo = self.put()
        self.out += b"("
        self.int(3)
        self.string(b"<")
        self.out += b"NNN"
        self.out += b"J" + struct.pack("<i", -1) + b"J" + struct.pack("<i", -1)
        self.int(0)
        self.out += b"tb"

    def array(self, a):
        # ndarray.__reduce__: (_reconstruct, (ndarray, (0,), 'b'), (1, shape, dtype, False, data))
        self.glob(b"numpy.core.multiarray\n_reconstruct")
        self.glob(b"numpy\nndarray")
        self.int(0)
        self.out += b"\x85"
        self.string(b"b")
        self.out += b"\x87R"
        self.put()
        self.out += b"("
        self.int(1)
        shape = a.shape
        if len(shape) == 0:
            self.out += b")"
        else:
            for d in shape:
                self.int(d)
            self.out += bytes([0x84 + len(shape)]) if len(shape) <= 3 else b"t"
        self.dtype_f4()
        self.out += b"\x89"
        self.string(a.tobytes())
        self.out += b"tb"

    def batch(self, items, save, one, many):
        for i in range(0, len(items), 1000):
            chunk = items[i:i + 1000]
            if len(chunk) == 1:
                save(chunk[0])
                self.out += one
            else:
                self.out += b"("
                for x in chunk:
                    save(x)
                self.out += many

    def value(self, v):
        if isinstance(v, np.ndarray):
            assert v.dtype == np.float32
            self.array(v)
        elif isinstance(v, int):
            self.int(v)
        elif isinstance(v, list):
            self.out += b"]"
            self.put()
            self.batch(v, self.value, b"a", b"e")
        else:
            raise TypeError(type(v))

    def dump(self, d, key_order):
        self.out += b"}"
        self.put()

        def item(k):
            self.string(k.encode())
            self.put()  # dict keys are interned literals: memoized
            self.value(d[k])

        self.batch(key_order, item, b"s", b"u")
        self.out += b"."
        return bytes(self.out)


# Python 2's dict iterates these three keys in this order (their string hashes), which is the
# order cPickle wrote them in Detectron's files; --python2 checks it.
PY2_KEY_ORDER = ["boxes", "indexes", "scores"]

PY2_CHECK = r"""
import cPickle, json, sys
import numpy as np
spec = json.loads(sys.stdin.read())
d = {'boxes': [np.array(b, dtype=np.float32).reshape(-1, 4) for b in spec['boxes']],
     'scores': [np.zeros(len(b), dtype=np.float32) for b in spec['boxes']],
     'indexes': spec['indexes']}
s = cPickle.dumps(d, 2)
back = cPickle.loads(s)
assert all((x == y).all() for x, y in zip(back['boxes'], d['boxes']))
sys.stdout.write(s.encode('hex'))
"""


PY2_MISC = r"""
import cPickle, sys
import numpy as np
d = {'l': range(1001), 'big': [2**40, -5, 70000, 1.5, None, True],
     'arr': [np.arange(6, dtype=np.float64).reshape(2, 3),
             np.asfortranarray(np.arange(6, dtype='>i4').reshape(3, 2)),
             np.array([1, 0], dtype=np.uint8)]}
sys.stdout.write(cPickle.dumps(d, 2).encode('hex'))
"""


def check_with_python2(cmd, ours):
    spec = {"boxes": [b.tolist() for b in boxes_0based()], "indexes": INDEXES}
    res = subprocess.run(cmd + ["-c", PY2_CHECK], input=json.dumps(spec).encode(),
                         capture_output=True, check=True)
    theirs = bytes.fromhex(res.stdout.decode())
    if theirs != ours:
        for i, (x, y) in enumerate(zip(theirs, ours)):
            if x != y:
                break
        sys.exit(f"the hand-written Python 2 stream differs from cPickle's at byte {i}:\n"
                 f"cPickle: {theirs[i - 8:i + 16]!r}\nours:    {ours[i - 8:i + 16]!r}")
    print(f"Python 2 cPickle wrote the same {len(ours)} bytes")


def cell(arrays):
    c = np.empty((1, len(arrays)), dtype=object)
    for i, a in enumerate(arrays):
        c[0, i] = a
    return c


def mat_boxes():
    """py-faster-rcnn's layout: 1-based (y1, x1, y2, x2) doubles."""
    return [(b[:, (1, 0, 3, 2)].astype(np.float64) + 1.0) for b in boxes_0based()]


def expected_entry(ids, boxes, scores):
    return {"ids": ids, "boxes": [b.tolist() for b in boxes], "scores": [s.tolist() for s in scores]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python2", help="a Python 2 command with numpy, to check the Python 2 stream")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    d = detectron_dict()
    zeros = d["scores"]
    expected = {}

    py2 = Py2CPickle().dump(d, PY2_KEY_ORDER)
    with open(os.path.join(OUT, "detectron_py2.pkl"), "wb") as f:
        f.write(py2)
    loaded = pickle.loads(py2, encoding="latin1")
    assert all((x == y).all() for x, y in zip(loaded["boxes"], d["boxes"]))
    assert loaded["indexes"] == INDEXES
    if args.python2:
        check_with_python2(args.python2.split(), py2)
        res = subprocess.run(args.python2.split() + ["-c", PY2_MISC], capture_output=True, check=True)
        with open(os.path.join(OUT, "py2_misc.pkl"), "wb") as f:
            f.write(bytes.fromhex(res.stdout.decode()))
    expected["detectron_py2.pkl"] = expected_entry([str(i) for i in INDEXES], d["boxes"], zeros)

    with open(os.path.join(OUT, "detectron_py3_protocol2.pkl"), "wb") as f:
        pickle.dump(d, f, protocol=2)
    expected["detectron_py3_protocol2.pkl"] = expected["detectron_py2.pkl"]

    boxes = boxes_0based()
    rpn_boxes = [
        np.asfortranarray(boxes[0].astype(">f4")),
        boxes[1].astype(np.float64),
        boxes[2],
    ]
    rpn_scores = [np.linspace(0.25, 0.75, len(b), dtype=np.float32) for b in boxes]
    voc12 = ["2008_000002", "2008_000003", "2012_004331"]
    rpn = {
        "boxes": rpn_boxes,
        "scores": rpn_scores,
        "ids": [np.int64(int(i.replace("_", ""))) for i in voc12],
        "cfg": "MODEL:\n  TYPE: generalized_rcnn\n",
    }
    with open(os.path.join(OUT, "rpn_py3_protocol5.pkl"), "wb") as f:
        pickle.dump(rpn, f, protocol=5)
    expected["rpn_py3_protocol5.pkl"] = expected_entry(
        [i.replace("_", "") for i in voc12], boxes, rpn_scores)

    mb = mat_boxes()
    scipy.io.savemat(os.path.join(OUT, "ss_voc_2007_test.mat"),
                     {"boxes": cell(mb), "images": cell([np.str_(i) for i in IDS])},
                     do_compression=False)
    expected["ss_voc_2007_test.mat"] = expected_entry(IDS, boxes, zeros)
    scipy.io.savemat(os.path.join(OUT, "ss_voc_2007_test_compressed.mat"),
                     {"boxes": cell(mb)}, do_compression=True)
    expected["ss_voc_2007_test_compressed.mat"] = expected_entry([], boxes, zeros)

    inner = cell([np.array([[1.5, -2.0]]), np.str_("inner")])
    struct_value = {
        "name": np.str_("nyu_depth_v2"),
        "size": np.array([[480.0, 640.0, 3.0], [1.0, 2.0, 3.0]]),
        "labels": np.array([[1, -2, 300]], dtype=np.int16),
        "valid": np.array([[True, False, True]]),
        "nested": inner,
    }
    chars = np.array(["bed  ", "table"])
    cube = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    scipy.io.savemat(os.path.join(OUT, "matlab_struct_char.mat"),
                     {"info": struct_value, "names": chars, "cube": cube}, do_compression=True)
    expected["matlab_struct_char.mat"] = {
        "name": "nyu_depth_v2",
        "size_row_major": struct_value["size"].ravel().tolist(),
        "labels": struct_value["labels"].ravel().tolist(),
        "valid": struct_value["valid"].ravel().tolist(),
        "names": chars.tolist(),
        "cube_dims": list(cube.shape),
        "cube_row_major": cube.ravel().tolist(),
    }

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    for name in sorted(os.listdir(OUT)):
        print(f"{name}: {os.path.getsize(os.path.join(OUT, name))} bytes")


if __name__ == "__main__":
    main()
