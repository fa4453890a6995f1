# Golden fixtures for every image format decodeImage reads (issue #20 items 1-3):
#   /work/venv/bin/python scripts/make_format_goldens.py      (pillow 12.3, torch, transformers; cjpeg from libjpeg-turbo-progs)
# Writes test/fixtures/formats/: small images in each JPEG mode (baseline / progressive, 4:4:4 4:2:2 4:2:0 4:1:1 4:4:0,
# gray, CMYK and YCCK with an Adobe marker (baseline, progressive, restart markers, subsampled), restart
# markers, EXIF orientation), WebP (lossy, lossless, alpha, animated), GIF
# (palette, transparency, interlaced; written by hand: a frame inside or past a larger screen, a local color
# table, transparency outside the frame, no color table), BMP (24-bit, 32-bit, 8-bit palette, 1-bit, top-down;
# written by hand: 16-bit 5-5-5 and 5-6-5, RLE8 with a delta, RLE4, a gray-ramp palette), and
# formats_golden.safetensors with, for each file <name>:
#   <name>.rgb           uint8 [H, W, 3]  Pillow: ImageOps.exif_transpose(Image.open(f)).convert("RGB")
#   <name>.pixel_values  f32 [1, 3, 56, 56]  transformers' PerceiverImageProcessor (size 56, crop_size 64: the
#                        224/256 center crop and bicubic resize at the tiny model's size) on that image
#   <name>.logits        f32 [1, 10]  test/fixtures/tiny-conv (PerceiverForImageClassificationConvProcessing) on them
# 4:1:1, 4:4:0 and restart-marker JPEGs come from cjpeg (Pillow cannot write them). Deterministic for fixed versions.
import io, os, shutil, struct, subprocess, tempfile
import numpy as np
import torch
from PIL import Image, ImageOps
from safetensors.torch import save_file
from transformers import PerceiverForImageClassificationConvProcessing, PerceiverImageProcessor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "test", "fixtures", "formats")
shutil.rmtree(OUT, ignore_errors=True)
os.makedirs(OUT)

src = Image.open(os.path.join(ROOT, "test", "fixtures", "images", "chelsea.png")).convert("RGB")
photo = src.crop((40, 20, 40 + 67, 20 + 45))  # odd sizes: partial MCUs, odd chroma widths
yy, xx = np.mgrid[0:45, 0:67]
alpha = Image.fromarray(((xx * 255) // 66).astype(np.uint8))  # a ramp, 0 on the left
rgba = photo.copy()
rgba.putalpha(alpha)
files = {}


def save(name, im, **kw):
    p = os.path.join(OUT, name)
    im.save(p, **kw)
    files[name] = p


for sub, tag in [(0, "444"), (1, "422"), (2, "420")]:
    save(f"baseline_{tag}.jpg", photo, quality=90, subsampling=sub)
    save(f"progressive_{tag}.jpg", photo, quality=90, subsampling=sub, progressive=True)
save("gray.jpg", photo.convert("L"), quality=90)
cmyk = photo.convert("CMYK")
save("cmyk_adobe.jpg", cmyk, quality=90)
save("cmyk_progressive.jpg", cmyk, quality=90, progressive=True)
save("cmyk_restart.jpg", cmyk, quality=90, restart_marker_blocks=3)
save("cmyk_sub420.jpg", cmyk, quality=90, subsampling=2)  # first component at 2x2


def adobe_ycck(src, dst):
    """The same file with its Adobe transform set to 2: its four components now read as Y, Cb, Cr, K (YCCK)."""
    b = bytearray(open(os.path.join(OUT, src), "rb").read())
    at = b.index(b"\xff\xee\x00\x0eAdobe")  # APP14, length 14: the transform is payload byte 11
    b[at + 4 + 11] = 2
    with open(os.path.join(OUT, dst), "wb") as f:
        f.write(b)
    files[dst] = os.path.join(OUT, dst)


adobe_ycck("cmyk_adobe.jpg", "ycck_adobe.jpg")
adobe_ycck("cmyk_sub420.jpg", "ycck_420.jpg")
adobe_ycck("cmyk_progressive.jpg", "ycck_progressive.jpg")
exif = Image.Exif()
exif[0x0112] = 6
save("orient6.jpg", photo, quality=90, exif=exif.tobytes())
with tempfile.TemporaryDirectory() as t:
    ppm = os.path.join(t, "src.ppm")
    photo.save(ppm)
    for name, args in [("baseline_411.jpg", ["-sample", "4x1,1x1,1x1"]),
                       ("baseline_440.jpg", ["-sample", "1x2,1x1,1x1"]),
                       ("progressive_440.jpg", ["-progressive", "-sample", "1x2,1x1,1x1"]),
                       ("restart_420.jpg", ["-sample", "2x2", "-restart", "1"]),
                       ("progressive_restart_420.jpg", ["-progressive", "-sample", "2x2", "-restart", "2B"])]:
        p = os.path.join(OUT, name)
        with open(p, "wb") as f:
            subprocess.run(["cjpeg", "-quality", "90", *args, ppm], stdout=f, check=True)
        files[name] = p

save("lossy.webp", photo, quality=80)
save("lossless.webp", photo, lossless=True)
save("lossy_alpha.webp", rgba, quality=80)
save("lossless_alpha.webp", rgba, lossless=True, exact=True)
# animated: Pillow gives the first frame
flipped = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
save("animated_lossless.webp", photo, save_all=True, append_images=[flipped], duration=100, lossless=True)
save("animated_lossy_alpha.webp", rgba, save_all=True, append_images=[flipped.convert("RGBA")], duration=100, quality=80)
# the same animation on a larger canvas, its first frame at (4, 2): black around it (written by hand)
b = bytearray(open(files["animated_lossless.webp"], "rb").read())
assert b[12:16] == b"VP8X"
cw, ch = 1 + int.from_bytes(b[24:27], "little"), 1 + int.from_bytes(b[27:30], "little")
b[24:27] = (cw + 10 - 1).to_bytes(3, "little")
b[27:30] = (ch + 6 - 1).to_bytes(3, "little")
anmf = b.index(b"ANMF")
b[anmf + 8:anmf + 11] = (4 // 2).to_bytes(3, "little")
b[anmf + 11:anmf + 14] = (2 // 2).to_bytes(3, "little")
with open(os.path.join(OUT, "animated_offset.webp"), "wb") as f:
    f.write(b)
files["animated_offset.webp"] = os.path.join(OUT, "animated_offset.webp")

pal = photo.quantize(colors=37, dither=Image.Dither.NONE)
save("palette.gif", pal, interlace=False)
save("interlaced.gif", pal, interlace=True)
tr = pal.copy()
tr.info["transparency"] = 5
save("transparent.gif", tr, transparency=5)



def gif_bytes(screen, frame, indices, global_pal=None, local_pal=None, transparent=None):
    """A one-frame GIF written by hand (Pillow always writes a full-screen first frame): LZW with 3-bit codes and
    a clear code after every two pixels, so the code table never grows."""
    sw, sh = screen
    x0, y0, fw, fh = frame
    out = bytearray(b"GIF89a" + struct.pack("<HH", sw, sh))
    out += bytes([0x80 | 1 if global_pal else 0, 0, 0]) + (bytes(global_pal) if global_pal else b"")
    if transparent is not None:
        out += bytes([0x21, 0xF9, 4, 1, 0, 0, transparent, 0])
    out += b"," + struct.pack("<HHHH", x0, y0, fw, fh) + bytes([0x80 | 1 if local_pal else 0]) + (bytes(local_pal) if local_pal else b"")
    codes = []
    for i, v in enumerate(indices):
        if i % 2 == 0:
            codes.append(4)  # clear
        codes.append(v)
    codes.append(5)  # end of information
    acc = nbits = 0
    data = bytearray()
    for c in codes:
        acc |= c << nbits
        nbits += 3
        while nbits >= 8:
            data.append(acc & 255)
            acc >>= 8
            nbits -= 8
    if nbits:
        data.append(acc & 255)
    out += bytes([2])
    for i in range(0, len(data), 255):
        out += bytes([len(data[i:i + 255])]) + data[i:i + 255]
    out += b"\x00;"
    return bytes(out)


PAL4 = [200, 30, 30, 30, 200, 30, 30, 30, 200, 250, 250, 120]
LOCAL4 = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120]
frame_px = [(i * 7 + i // 5) % 4 for i in range(5 * 4)]
for name, kw in [("offset.gif", dict(screen=(10, 8), frame=(2, 3, 5, 4), global_pal=PAL4)),
                 ("offset_transparent.gif", dict(screen=(10, 8), frame=(2, 3, 5, 4), global_pal=PAL4, transparent=2)),
                 ("local_palette.gif", dict(screen=(10, 8), frame=(2, 3, 5, 4), global_pal=PAL4, local_pal=LOCAL4)),
                 ("past_screen.gif", dict(screen=(4, 4), frame=(2, 1, 5, 4), global_pal=PAL4)),
                 ("no_palette.gif", dict(screen=(5, 4), frame=(0, 0, 5, 4)))]:
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(gif_bytes(indices=frame_px, **kw))
    files[name] = os.path.join(OUT, name)

save("rgb24.bmp", photo)
save("rgba32.bmp", rgba)
save("palette8.bmp", pal)
save("bilevel1.bmp", photo.convert("1"))
# top-down: the 24-bit file with a negative height and its rows in top-to-bottom order
b = open(files["rgb24.bmp"], "rb").read()
off = struct.unpack_from("<I", b, 10)[0]
w, h = struct.unpack_from("<ii", b, 18)
stride = (w * 3 + 3) // 4 * 4
rows = [b[off + i * stride: off + (i + 1) * stride] for i in range(h)]
td = bytearray(b[:off]) + b"".join(reversed(rows))
struct.pack_into("<i", td, 22, -h)
with open(os.path.join(OUT, "topdown24.bmp"), "wb") as f:
    f.write(td)
files["topdown24.bmp"] = os.path.join(OUT, "topdown24.bmp")



def bmp_file(name, w, h, bpp, pixels, compression=0, palette=None, masks=None):
    """A BMP written by hand (Pillow writes no 16-bit or RLE files): 40-byte header, masks, palette, pixel data."""
    pal = b"".join(bytes([b_, g, r, 0]) for r, g, b_ in palette) if palette else b""
    extra = struct.pack("<III", *masks) if masks else b""
    off = 14 + 40 + len(extra) + len(pal)
    head = struct.pack("<IiiHHIIiiII", 40, w, h, 1, bpp, compression, len(pixels), 2835, 2835, len(palette or []), 0)
    data = b"BM" + struct.pack("<IHHI", off + len(pixels), 0, 0, off) + head + extra + pal + pixels
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    files[name] = os.path.join(OUT, name)


arr = np.asarray(photo).astype(np.int32)
rows16 = []
for y in range(44, -1, -1):  # bottom-up
    r, g, b_ = arr[y, :, 0], arr[y, :, 1], arr[y, :, 2]
    v = ((r >> 3) << 10) | ((g >> 3) << 5) | (b_ >> 3)
    row = v.astype("<u2").tobytes()
    rows16.append(row + b"\0" * ((-len(row)) % 4))
bmp_file("rgb555.bmp", 67, 45, 16, b"".join(rows16))
rows565 = []
for y in range(44, -1, -1):
    r, g, b_ = arr[y, :, 0], arr[y, :, 1], arr[y, :, 2]
    v = ((r >> 3) << 11) | ((g >> 2) << 5) | (b_ >> 3)
    row = v.astype("<u2").tobytes()
    rows565.append(row + b"\0" * ((-len(row)) % 4))
bmp_file("rgb565.bmp", 67, 45, 16, b"".join(rows565), compression=3, masks=(0xF800, 0x7E0, 0x1F))
idx = np.asarray(pal)  # 37-color quantized photo, [45, 67]
pal_rgb = [tuple(pal.getpalette()[3 * i:3 * i + 3]) for i in range(37)]


def rle8(rows):
    out = bytearray()
    for r, row in enumerate(rows):
        x = 0
        if r == 3:
            out += bytes([0, 2, 5, 1])  # delta: 5 right, 1 up (zeros, as Pillow fills them)
            continue
        while x < len(row):
            n = 1
            while x + n < len(row) and row[x + n] == row[x] and n < 255:
                n += 1
            if n >= 2 or len(row) - x < 3:
                out += bytes([n, row[x]])
                x += n
            else:
                k = min(3 + (x % 5), len(row) - x)  # an absolute run, padded to an even length
                out += bytes([0, k]) + bytes(row[x:x + k]) + (b"\0" if k % 2 else b"")
                x += k
        out += bytes([0, 0])
    return bytes(out + bytes([0, 1]))


bmp_file("rle8.bmp", 67, 45, 8, rle8([list(idx[y]) for y in range(44, -1, -1)]), compression=1, palette=pal_rgb)
idx16 = np.asarray(photo.quantize(colors=16, dither=Image.Dither.NONE))
pal16 = photo.quantize(colors=16, dither=Image.Dither.NONE).getpalette()[:48]


def rle4(rows):
    out = bytearray()
    for row in rows:
        x = 0
        while x < len(row):
            n = 1
            while x + n < len(row) and row[x + n] == row[x] and n < 255:
                n += 1
            out += bytes([n, (row[x] << 4) | row[x]])
            x += n
        out += bytes([0, 0])
    return bytes(out + bytes([0, 1]))


bmp_file("rle4.bmp", 67, 45, 4, rle4([list(idx16[y]) for y in range(44, -1, -1)]), compression=2,
         palette=[tuple(pal16[3 * i:3 * i + 3]) for i in range(16)])
gray_idx = (np.asarray(photo.convert("L")) // 2).astype(np.uint8)  # levels 0..127, a 64-entry gray ramp palette
rows8 = [bytes(gray_idx[y]) + b"\0" * ((-67) % 4) for y in range(44, -1, -1)]
bmp_file("gray_ramp8.bmp", 67, 45, 8, b"".join(rows8), palette=[(i, i, i) for i in range(64)])

proc = PerceiverImageProcessor(size={"height": 56, "width": 56}, crop_size={"height": 64, "width": 64})
model = PerceiverForImageClassificationConvProcessing.from_pretrained(os.path.join(ROOT, "test", "fixtures", "tiny-conv"))
model.eval()
tensors = {}
for name, p in sorted(files.items()):
    im = ImageOps.exif_transpose(Image.open(p)).convert("RGB")
    arr = np.array(im)
    tensors[f"{name}.rgb"] = torch.from_numpy(np.ascontiguousarray(arr))
    pv = proc(im, return_tensors="pt").pixel_values.float().contiguous()
    tensors[f"{name}.pixel_values"] = pv
    with torch.no_grad():
        tensors[f"{name}.logits"] = model(inputs=pv).logits.float().contiguous()
    print(name, Image.open(p).mode, arr.shape)
save_file(tensors, os.path.join(OUT, "formats_golden.safetensors"))
