"""Generate the pytorch_model.bin fixtures in test/fixtures/pickle/ (see the README written there).

Run from the repository root with a venv that has torch, transformers and safetensors:

    python3 -m venv .venv && .venv/bin/pip install torch transformers safetensors
    .venv/bin/python scripts/make_pickle_fixtures.py

Legitimate files are written by torch.save. Hostile files are assembled byte by byte (raw pickle opcodes, zipfile,
a hand-written zip64 writer); nothing here ever unpickles them with the default unpickler. As a cross-check,
torch.load(..., weights_only=True), which executes nothing either, must refuse every forbidden-global file.
"""

import collections
import io
import os
import pickle
import shutil
import struct
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "test" / "fixtures" / "pickle"
TINY = ROOT / "test" / "fixtures" / "tiny-conv"
PWNED = "/tmp/perceiver-ts-pwned-fixture"  # a hostile file's command would create this; tests assert it never exists

written: list[str] = []


def write(name: str, data: bytes) -> None:
    (OUT / name).write_bytes(data)
    written.append(name)


def torch_bytes(obj, **kw) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kw)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ legitimate files


def tiny_conv() -> None:
    from transformers import PerceiverForImageClassificationConvProcessing

    model = PerceiverForImageClassificationConvProcessing.from_pretrained(str(TINY))
    sd = model.state_dict()
    # 1) torch.save(model.state_dict()): an OrderedDict with a `_metadata` attribute (pickled with BUILD).
    torch.save(sd, OUT / "tiny-conv.state_dict.bin")
    written.append("tiny-conv.state_dict.bin")
    # 2) What transformers 4.x `save_pretrained(dir, safe_serialization=False)` wrote (transformers 5 only writes
    #    safetensors): torch.save of a plain dict shard to <dir>/pytorch_model.bin (top folder from the file name).
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "pytorch_model.bin"
        torch.save({k: v for k, v in sd.items()}, path)
        shutil.copy(path, OUT / "tiny-conv.pytorch_model.bin")
        written.append("tiny-conv.pytorch_model.bin")


def dtypes() -> dict:
    g = torch.Generator().manual_seed(1)
    sd = {
        "f32": torch.randn(2, 3, generator=g),
        "f16": torch.randn(3, 4, generator=g).half(),
        "bf16": torch.randn(3, 4, generator=g).bfloat16(),
        "f16_special": torch.tensor([float("inf"), -float("inf"), float("nan"), -0.0, 6e-8, 6.1e-5, 65504.0, 1 / 3]).half(),
        "bf16_special": torch.tensor([float("inf"), -float("inf"), float("nan"), -0.0, 1e-40, 3.0e38, 1 / 3]).bfloat16(),
        "f64": torch.randn(5, generator=g).double(),
        "i64": torch.tensor([-(2**40), -1, 0, 2**53 + 1, 2**62], dtype=torch.int64),
        "i32": torch.tensor([-(2**31), -7, 0, 2**31 - 1], dtype=torch.int32),
        "i16": torch.tensor([-32768, 5, 32767], dtype=torch.int16),
        "i8": torch.tensor([-128, -1, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 1, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "num_batches_tracked": torch.tensor(7, dtype=torch.int64),  # 0-dim int64, like BatchNorm's buffer
        "u16": torch.tensor([[0, 1], [40000, 65535]], dtype=torch.uint16),  # written with _rebuild_tensor_v3
        "empty": torch.zeros(0, 3),
    }
    write("dtypes.bin", torch_bytes(sd))
    save_file({k: v.contiguous() for k, v in sd.items()}, OUT / "dtypes.expected.safetensors")
    os.chmod(OUT / "dtypes.expected.safetensors", 0o644)
    written.append("dtypes.expected.safetensors")
    return sd


def strided() -> None:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) * 0.25 - 2.0
    sd = {
        "base": base,
        "transposed": base.t(),  # stride (1, 6)
        "slice": base[1:3, 2:5],  # offset 8, stride (6, 1)
        "column": base[:, 4],  # offset 4, stride (6,)
        "element": base[2, 3],  # 0-dim, offset 15
        "expanded": base[1].expand(3, 6),  # stride (0, 1)
        "every_other": base[::2, ::3],  # stride (12, 3)
        "param": torch.nn.Parameter(torch.tensor([1.5, -2.5, 3.5])),  # _rebuild_parameter
    }
    # All views share base's storage (one archive entry).
    write("strided.bin", torch_bytes(sd))
    write("strided.p5.bin", torch_bytes(sd, pickle_protocol=5))  # FRAME, MEMOIZE, SHORT_BINUNICODE, STACK_GLOBAL...
    save_file({k: v.detach().contiguous().clone() for k, v in sd.items()}, OUT / "strided.expected.safetensors")
    os.chmod(OUT / "strided.expected.safetensors", 0o644)
    written.append("strided.expected.safetensors")


class _StorageRecorder(pickle.Unpickler):
    """Walks OUR OWN data.pkl to learn each storage's element size; every global is stubbed, nothing is called."""

    SIZES = {"FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "DoubleStorage": 8, "LongStorage": 8,
             "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1, "UntypedStorage": 1}

    def __init__(self, f):
        super().__init__(f)
        self.elem: dict[str, int] = {}

    def find_class(self, module, name):
        if module == "torch" and name in self.SIZES:
            return name
        if module == "torch" and name in ("uint16",):
            return name
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name.startswith("_rebuild_"):
            return lambda *a: None
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

    def persistent_load(self, pid):
        self.elem[pid[2]] = self.SIZES[pid[1]]
        return None


def big_endian_deflated(le: bytes) -> bytes:
    """The same archive with byteorder "big", every storage byte-swapped, every entry DEFLATED (via zipfile)."""
    zin = zipfile.ZipFile(io.BytesIO(le))
    names = zin.namelist()
    top = next(n for n in names if n.endswith("/data.pkl")).split("/")[0]
    rec = _StorageRecorder(io.BytesIO(zin.read(f"{top}/data.pkl")))
    rec.load()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for n in names:
            data = zin.read(n)
            if n == f"{top}/byteorder":
                data = b"big"
            elif n.startswith(f"{top}/data/"):
                es = rec.elem[n[len(f"{top}/data/"):]]
                data = b"".join(data[i:i + es][::-1] for i in range(0, len(data), es))
            z.writestr(n, data)
        if f"{top}/byteorder" not in names:
            z.writestr(f"{top}/byteorder", b"big")
    return out.getvalue()


def zip64_stored(entries: list[tuple[str, bytes]]) -> bytes:
    """A stored zip where every central directory entry uses the zip64 extra field and a zip64 end record."""
    out = bytearray()
    central = bytearray()
    for name, data in entries:
        nb = name.encode()
        crc = zlib.crc32(data)
        offset = len(out)
        local_extra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(nb), len(local_extra))
        out += nb + local_extra + data
        extra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), offset)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                               len(nb), len(extra), 0, 0, 0, 0, 0xFFFFFFFF)
        central += nb + extra
    cd_offset = len(out)
    out += central
    z64 = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(entries), len(entries), len(central), cd_offset)
    out += struct.pack("<IIQI", 0x07064B50, 0, z64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return bytes(out)


def variants() -> None:
    sd = {"w": torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "b": torch.tensor([0.5, -0.5], dtype=torch.float16)}
    le = torch_bytes(sd)
    write("small.bin", le)
    write("small.big-endian-deflated.bin", big_endian_deflated(le))
    zin = zipfile.ZipFile(io.BytesIO(le))
    write("small.zip64.bin", zip64_stored([(n, zin.read(n)) for n in zin.namelist()]))
    # The hand-made archives must still be valid checkpoints: torch reads them back (weights_only, no code runs).
    for name in ("small.big-endian-deflated.bin", "small.zip64.bin"):
        back = torch.load(OUT / name, weights_only=True)
        assert list(back) == list(sd) and all(torch.equal(back[k], sd[k]) for k in sd), name
    # Not a plain state dict: a training checkpoint wrapping it (unwrapped), a list and a mixed dict (refused).
    write("wrapped.bin", torch_bytes({"epoch": 3, "state_dict": sd, "optimizer": {"lr": 0.1}}))
    write("list.bin", torch_bytes([sd["w"], sd["b"]]))
    write("mixed.bin", torch_bytes({"w": sd["w"], "step": 3}))
    # Legacy (torch < 1.6) non-zip format: a magic-number pickle, then more pickles and raw storages.
    write("legacy.bin", torch_bytes(sd, _use_new_zipfile_serialization=False))


# ------------------------------------------------------------------------------------------------ hostile files
# Raw pickle opcodes (protocol 2 unless stated).
PROTO2 = b"\x80\x02"
STOP, REDUCE, BUILD, MARK, TUPLE, TUPLE1, TUPLE2, BINPERSID = b".", b"R", b"b", b"(", b"t", b"\x85", b"\x86", b"Q"
EMPTY_DICT, EMPTY_TUPLE, SETITEM, NEWTRUE, NEWFALSE = b"}", b")", b"s", b"\x88", b"\x89"


def glob(module: str, name: str) -> bytes:  # GLOBAL
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def s(text: str) -> bytes:  # BINUNICODE
    b = text.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def short_s(text: str) -> bytes:  # SHORT_BINUNICODE (protocol 4)
    b = text.encode()
    return b"\x8c" + bytes([len(b)]) + b


def i(n: int) -> bytes:  # BININT
    return b"J" + struct.pack("<i", n)


def archive(pkl: bytes, storages: dict[str, bytes] | None = None, top: str = "archive",
            method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        z.writestr(f"{top}/data.pkl", pkl)
        z.writestr(f"{top}/byteorder", b"little")
        for k, v in (storages or {}).items():
            z.writestr(f"{top}/data/{k}", v)
        z.writestr(f"{top}/version", b"3\n")
    return buf.getvalue()


def state_dict_with(value: bytes) -> bytes:
    """{'weight': <value>} as a pickle program."""
    return PROTO2 + EMPTY_DICT + s("weight") + value + SETITEM + STOP


def tensor_pkl(key: str, numel: int, size: tuple[int, ...], stride: tuple[int, ...], storage: str = "FloatStorage") -> bytes:
    """_rebuild_tensor_v2(("storage", torch.<storage>, key, "cpu", numel), 0, size, stride, False, OrderedDict())."""
    pid = MARK + s("storage") + glob("torch", storage) + s(key) + s("cpu") + i(numel) + TUPLE + BINPERSID
    tup = lambda xs: MARK + b"".join(i(x) for x in xs) + TUPLE  # noqa: E731
    return (glob("torch._utils", "_rebuild_tensor_v2") + MARK + pid + i(0) + tup(size) + tup(stride) + NEWFALSE
            + glob("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE + TUPLE + REDUCE)


class Exploit:
    """The classic pickle exploit: pickle.dumps writes `posix.system` + REDUCE. Dumping it runs nothing."""

    def __reduce__(self):
        return (os.system, (f"touch {PWNED}",))


def hostile() -> list[str]:
    cmd = s(f"touch {PWNED}")
    forbidden = {
        "os-system-global.bin": state_dict_with(glob("os", "system") + cmd + TUPLE1 + REDUCE),
        # protocol 4: STACK_GLOBAL takes module and name from the stack
        "os-system-stack-global.bin": b"\x80\x04" + EMPTY_DICT + short_s("weight") + short_s("os") + short_s("system")
        + b"\x93" + short_s(f"touch {PWNED}") + TUPLE1 + REDUCE + SETITEM + STOP,
        "builtins-eval.bin": state_dict_with(glob("builtins", "eval") + s(f"__import__('os').system('touch {PWNED}')")
                                             + TUPLE1 + REDUCE),
        "subprocess-popen.bin": state_dict_with(glob("subprocess", "Popen") + b"]" + MARK + s("touch") + s(PWNED) + b"e"
                                                + TUPLE1 + REDUCE),
        "posix-system-dumps.bin": pickle.dumps({"weight": Exploit()}, protocol=2),
    }
    # REDUCE on a whitelisted name that is not a callable (a storage type) and on a plain string.
    not_callable = {
        "reduce-storage-type.bin": state_dict_with(glob("torch", "FloatStorage") + s("x") + TUPLE1 + REDUCE),
        "reduce-string.bin": state_dict_with(s("os.system") + s(f"touch {PWNED}") + TUPLE1 + REDUCE),
    }
    # BUILD on objects with no state to set: a plain dict, and a tensor.
    build = {
        "build-dict.bin": state_dict_with(EMPTY_DICT + EMPTY_DICT + s("__class__") + s("os.system") + SETITEM + BUILD),
        "build-tensor.bin": state_dict_with(tensor_pkl("0", 4, (2, 2), (2, 1)) + EMPTY_DICT + BUILD),
    }
    files = {k: archive(v) for k, v in {**forbidden, **not_callable}.items()}
    files["build-dict.bin"] = archive(build["build-dict.bin"])
    files["build-tensor.bin"] = archive(build["build-tensor.bin"], {"0": struct.pack("<4f", 1, 2, 3, 4)})
    # A persistent id naming a storage the archive does not have.
    files["missing-storage.bin"] = archive(state_dict_with(tensor_pkl("7", 4, (2, 2), (2, 1))), {"0": bytes(16)})
    # A storage shorter than the persistent id says (12 bytes for 4 floats), and a view reaching past the storage.
    files["short-storage.bin"] = archive(state_dict_with(tensor_pkl("0", 4, (2, 2), (2, 1))), {"0": bytes(12)})
    files["view-past-storage.bin"] = archive(state_dict_with(tensor_pkl("0", 4, (2, 3), (3, 1))), {"0": bytes(16)})
    # Zip bomb: data.pkl is a valid pickle followed by 1 MiB of zeros (ignored after STOP), DEFLATED; the
    # directory and local header declare only the pickle's length.
    good = state_dict_with(tensor_pkl("0", 4, (2, 2), (2, 1)))
    bomb = archive(good + bytes(1 << 20), {"0": bytes(16)}, method=zipfile.ZIP_DEFLATED)
    files["zip-bomb.bin"] = declare_size(bomb, "archive/data.pkl", len(good))
    # A legitimate archive with a 1 MiB deflated storage: refused when maxEntryBytes is smaller.
    files["deflated-1mib.bin"] = archive(state_dict_with(tensor_pkl("0", 1 << 18, (1 << 18,), (1,))), {"0": bytes(1 << 20)},
                                         method=zipfile.ZIP_DEFLATED)
    # Truncations: data.pkl cut mid-program (a valid zip), and a valid file cut inside its central directory.
    files["truncated-pickle.bin"] = archive(good[: len(good) // 2], {"0": bytes(16)})
    small = (OUT / "small.bin").read_bytes()
    files["truncated-zip.bin"] = small[: len(small) - 40]
    for name, data in files.items():
        write(name, data)
    # Cross-check against torch's own safe loader (it executes nothing either).
    for name in [*forbidden, *not_callable, "build-dict.bin"]:
        try:
            torch.load(OUT / name, weights_only=True)
        except Exception as e:  # noqa: BLE001
            print(f"  torch.load(weights_only=True) refuses {name}: {str(e).splitlines()[0][:150]}")
            continue
        sys.exit(f"torch.load(weights_only=True) accepted hostile fixture {name}")
    return list(files)


def declare_size(zbytes: bytes, name: str, size: int) -> bytes:
    """Patch the uncompressed size (and CRC, to match the declared bytes) of one entry in both headers."""
    b = bytearray(zbytes)
    zf = zipfile.ZipFile(io.BytesIO(zbytes))
    info = zf.getinfo(name)
    crc = zlib.crc32(zf.read(name)[:size])
    # local header: crc at +14, uncompressed size at +22
    struct.pack_into("<I", b, info.header_offset + 14, crc)
    struct.pack_into("<I", b, info.header_offset + 22, size)
    # central directory entry: find it by signature + name
    nb = name.encode()
    p = b.find(b"PK\x01\x02")
    while p >= 0:
        n = struct.unpack_from("<H", b, p + 28)[0]
        if b[p + 46: p + 46 + n] == nb:
            struct.pack_into("<I", b, p + 16, crc)
            struct.pack_into("<I", b, p + 24, size)
            break
        p = b.find(b"PK\x01\x02", p + 4)
    return bytes(b)


README = """# pytorch_model.bin fixtures

Generated by `scripts/make_pickle_fixtures.py` (torch {torch}, transformers {tf}) from the repository root:

    python3 -m venv .venv && .venv/bin/pip install torch transformers safetensors
    .venv/bin/python scripts/make_pickle_fixtures.py

Python is only needed to regenerate these files; the tests read them with the TypeScript reader alone.

## Legitimate files (written by torch.save)
| file | content |
| --- | --- |
| `tiny-conv.state_dict.bin` | `torch.save(model.state_dict())` of `../tiny-conv` (OrderedDict + `_metadata` BUILD, I64 `num_batches_tracked`) |
| `tiny-conv.pytorch_model.bin` | what transformers 4.x `save_pretrained(safe_serialization=False)` wrote: `torch.save` of a plain dict to `pytorch_model.bin` (transformers 5 writes only safetensors) |
| `dtypes.bin` + `dtypes.expected.safetensors` | F32, F16, BF16 (incl. inf/nan/-0/subnormals), F64, I64 (incl. > 2^53), I32, I16, I8, U8, BOOL, 0-dim I64, U16 (via `_rebuild_tensor_v3` + untyped storage), an empty tensor |
| `strided.bin`, `strided.p5.bin` + `strided.expected.safetensors` | views sharing one storage: transpose, slice with offset, column, 0-dim element, stride-0 expand, step slice, and an `nn.Parameter`; `.p5` is pickle protocol 5 |
| `small.bin` | a 2-tensor dict (F32 2x2, F16 [2]) |
| `small.big-endian-deflated.bin` | `small.bin` rewritten by zipfile: byteorder "big", storages byte-swapped, every entry DEFLATED (unaligned) |
| `small.zip64.bin` | `small.bin`'s entries in a hand-written zip64 archive (sizes/offsets in zip64 extra fields, zip64 end record) |
| `wrapped.bin` | `{"epoch": 3, "state_dict": small, "optimizer": {...}}`: unwrapped to `state_dict` |
| `list.bin`, `mixed.bin` | a list of tensors, and `{"w": tensor, "step": 3}`: not state dicts, refused |
| `legacy.bin` | `small.bin`'s dict saved with `_use_new_zipfile_serialization=False` (legacy format, refused) |

## Hostile files (assembled from raw opcodes / zipfile; never run by a real unpickler)
Commands would run `touch {pwned}`; tests assert that file never appears.
| file | problem |
| --- | --- |
| `os-system-global.bin` | GLOBAL os.system + REDUCE |
| `os-system-stack-global.bin` | STACK_GLOBAL os.system (protocol 4) + REDUCE |
| `builtins-eval.bin` | GLOBAL builtins.eval |
| `subprocess-popen.bin` | GLOBAL subprocess.Popen |
| `posix-system-dumps.bin` | `pickle.dumps` of an object whose `__reduce__` returns `os.system` (as data.pkl) |
| `reduce-storage-type.bin` | REDUCE on torch.FloatStorage (allowed name, not a callable) |
| `reduce-string.bin` | REDUCE on a string |
| `build-dict.bin` | BUILD on a plain dict |
| `build-tensor.bin` | BUILD on a tensor |
| `missing-storage.bin` | persistent id names storage "7", absent from the archive |
| `short-storage.bin` | storage entry of 12 bytes, persistent id declares 4 floats |
| `view-past-storage.bin` | tensor [2,3] stride (3,1) on a 4-element storage |
| `zip-bomb.bin` | DEFLATED data.pkl inflating to 1 MiB more than its declared size |
| `deflated-1mib.bin` | valid, with a 1 MiB DEFLATED storage (refused under a smaller `maxEntryBytes`) |
| `truncated-pickle.bin` | data.pkl cut in the middle of the program |
| `truncated-zip.bin` | `small.bin` missing its last 40 bytes (end of the central directory) |

torch.load(weights_only=True) refuses every forbidden-global / REDUCE / BUILD file above (checked by the script).
"""


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    tiny_conv()
    dtypes()
    strided()
    variants()
    hostile()
    (OUT / "README.md").write_text(README.replace("{torch}", torch.__version__).replace("{tf}", __import__("transformers").__version__).replace("{pwned}", PWNED))
    total = sum((OUT / n).stat().st_size for n in written)
    print(f"wrote {len(written)} files, {total} bytes, to {OUT}")
    assert total < 5_000_000, "fixtures must stay under 5 MB"
    assert not os.path.exists(PWNED)


if __name__ == "__main__":
    main()
