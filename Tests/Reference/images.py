"""Golden files for image decoding, Pillow-exact resizing and the preprocessing profiles.

Run from the repo root with Pillow, transformers and timm installed:
    python Tests/Reference/images.py
Writes Tests/ViTImageTests/Golden/:
  decode/NAME.{png,jpg}  test images of every PNG and JPEG layout we read, made from
                         Images/ (most with a small encoder below, since Pillow cannot
                         write 16-bit colour, low-bit gray or interlaced PNGs)
  decode/NAME.rgb        Pillow's Image.open(f).convert("RGB"), raw [H, W, 3] bytes
                         (NAME.rgb.png for the one large photo)
  resize/PHOTO-FILTER-WxH.png   Pillow's img.convert("RGB").resize((W, H), FILTER)
  profile/PHOTO-hf-vit.png      ViTImageProcessorPil's input before rescale/normalize
                                (PHOTO chelsea-rotated: chelsea turned 90 degrees
                                counter-clockwise, a portrait)
  profile/PHOTO-timm-vit.png    timm's eval transform (vit_base_patch16_224.augreg) and
  profile/PHOTO-timm-deit.png   (deit_base_patch16_224) before ToTensor/Normalize
"""
import os
import shutil
import struct
import subprocess
import tempfile
import zlib

import numpy as np
import PIL
from PIL import Image

OUT = "Tests/ViTImageTests/Golden"
PHOTOS = ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "camera.png"]


# MARK: - A small PNG encoder (any colour type, bit depth, tRNS, Adam7)

def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def pack_rows(samples, bit_depth):
    """samples: [H, W * channels] integers -> scanlines with filter byte 0."""
    rows = []
    for row in samples:
        if bit_depth == 16:
            raw = row.astype(">u2").tobytes()
        elif bit_depth == 8:
            raw = row.astype(np.uint8).tobytes()
        else:
            per_byte = 8 // bit_depth
            padded = np.zeros(-(-len(row) // per_byte) * per_byte, dtype=np.uint8)
            padded[: len(row)] = row
            groups = padded.reshape(-1, per_byte)
            raw = bytes(
                sum(int(v) << (8 - bit_depth * (i + 1)) for i, v in enumerate(g)) for g in groups
            )
        rows.append(b"\x00" + raw)
    return b"".join(rows)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(path, pixels, color_type, bit_depth, palette=None, trns=None, interlace=False):
    """pixels: [H, W, channels] integer array of the PNG's own samples."""
    h, w, c = pixels.shape
    header = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0)
    if interlace:
        data = b""
        for x0, y0, dx, dy in ADAM7:
            sub = pixels[y0::dy, x0::dx]
            if sub.size:
                data += pack_rows(sub.reshape(sub.shape[0], -1), bit_depth)
    else:
        data = pack_rows(pixels.reshape(h, -1), bit_depth)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
    if palette is not None:
        out += chunk(b"PLTE", bytes(np.asarray(palette, np.uint8).reshape(-1)))
    if trns is not None:
        out += chunk(b"tRNS", trns)
    out += chunk(b"IDAT", zlib.compress(data, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(out)


# MARK: - Decode fixtures

def decode_fixtures():
    folder = f"{OUT}/decode"
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    # An odd-sized crop of a photo: odd sizes exercise chroma upsampling at the edges.
    rgb = np.asarray(Image.open("Images/chelsea.png").convert("RGB"))[100:129, 200:237].astype(np.int64)
    h, w, _ = rgb.shape
    gray = rgb.mean(axis=2).astype(np.int64)
    alpha = rng.integers(0, 256, (h, w))
    wide = lambda a: a * 257 + rng.integers(0, 257, a.shape)  # 16-bit with varied low bytes

    pngs = {
        "gray1": (gray[..., None] >> 7, 0, 1, {}),
        "gray2": (gray[..., None] >> 6, 0, 2, {}),
        "gray4": (gray[..., None] >> 4, 0, 4, {}),
        "gray8": (gray[..., None], 0, 8, {}),
        "gray8-trns": (gray[..., None], 0, 8, {"trns": struct.pack(">H", int(gray[0, 0]))}),
        # 16-bit gray spanning 0..65535: Pillow's "I;16" clips to 255 on conversion.
        "gray16": (np.where(rng.random((h, w, 1)) < 0.5, rng.integers(0, 65536, (h, w, 1)), gray[..., None]),
                   0, 16, {}),
        "gray16-interlaced": (wide(gray[..., None]), 0, 16, {"interlace": True}),
        "graya8": (np.dstack([gray, alpha]), 4, 8, {}),
        "graya16": (wide(np.dstack([gray, alpha])), 4, 16, {}),
        "rgb8": (rgb, 2, 8, {}),
        "rgb8-trns": (rgb, 2, 8, {"trns": struct.pack(">HHH", *map(int, rgb[0, 0]))}),
        "rgb8-interlaced": (rgb, 2, 8, {"interlace": True}),
        "rgb16": (wide(rgb), 2, 16, {}),
        "rgba8": (np.dstack([rgb, alpha]), 6, 8, {}),
        "rgba16": (wide(np.dstack([rgb, alpha])), 6, 16, {}),
        "rgba8-interlaced": (np.dstack([rgb, alpha]), 6, 8, {"interlace": True}),
    }
    # Palettes: quantize with Pillow, then write the indices at several bit depths.
    for bits, colors in [(1, 2), (2, 4), (4, 16), (8, 200)]:
        q = Image.fromarray(rgb.astype(np.uint8)).quantize(colors=colors, dither=Image.Dither.NONE)
        palette = np.asarray(q.getpalette()[: 3 * colors]).reshape(-1, 3)
        indices = np.asarray(q).astype(np.int64)[..., None]
        options = {"palette": palette}
        if bits == 8:
            options["trns"] = bytes(rng.integers(0, 256, colors, dtype=np.uint8)[:100])
        pngs[f"palette{bits}"] = (indices, 3, bits, options)
    pngs["palette8-interlaced"] = (pngs["palette8"][0], 3, 8, {**pngs["palette8"][3], "interlace": True})
    for name, (pixels, color_type, bits, options) in pngs.items():
        write_png(f"{folder}/{name}.png", np.asarray(pixels), color_type, bits, **options)

    # Pillow's own encoder (adaptive filters, zlib levels) for the common layouts.
    Image.fromarray(rgb.astype(np.uint8)).save(f"{folder}/pillow-rgb.png")
    Image.fromarray(gray.astype(np.uint8)).save(f"{folder}/pillow-gray.png", optimize=True)

    image = Image.fromarray(rgb.astype(np.uint8))
    image.save(f"{folder}/ycbcr420.jpg", quality=85)
    image.save(f"{folder}/ycbcr422.jpg", quality=85, subsampling=1)
    image.save(f"{folder}/ycbcr444.jpg", quality=95, subsampling=0)
    image.save(f"{folder}/progressive.jpg", quality=80, progressive=True)
    # Taller than libjpeg's five block rows of look-ahead, so its whole-image coefficient
    # arrays are sized by its memory limit (the decoder-memory test).
    tall = np.asarray(Image.open("Images/chelsea.png").convert("RGB"))[50:250, 100:140]
    Image.fromarray(tall).save(f"{folder}/progressive-tall.jpg", quality=80, progressive=True)
    image.convert("L").save(f"{folder}/gray.jpg", quality=90)
    cmyk = image.convert("CMYK")
    cmyk.save(f"{folder}/cmyk.jpg", quality=90)  # Pillow writes Adobe-inverted CMYK
    with tempfile.TemporaryDirectory() as tmp:
        exe = f"{tmp}/ycck_writer"
        subprocess.run(["cc", "-O2", "-o", exe, "Tests/Reference/ycck_writer.c", "-ljpeg"], check=True)
        raw = 255 - np.asarray(cmyk)  # Adobe convention: stored inverted
        raw.astype(np.uint8).tofile(f"{tmp}/in.cmyk")
        subprocess.run([exe, str(w), str(h), f"{tmp}/in.cmyk", f"{folder}/ycck.jpg"], check=True)
    shutil.copy("Images/rocket.jpg", f"{folder}/rocket.jpg")

    for name in sorted(os.listdir(folder)):
        if name.endswith((".png", ".jpg")) and not name.endswith(".rgb.png"):
            with Image.open(f"{folder}/{name}") as im:
                mode = im.mode
                decoded = np.asarray(im.convert("RGB"))
            stem = os.path.splitext(name)[0]
            if decoded.size > 100_000:  # large: stored losslessly compressed
                Image.fromarray(decoded).save(f"{folder}/{stem}.rgb.png")
            else:
                decoded.tofile(f"{folder}/{stem}.rgb")
            print(f"decode/{name}: mode {mode}, {decoded.shape[1]}x{decoded.shape[0]}")


# MARK: - Resize and profiles

FILTERS = {
    "nearest": Image.Resampling.NEAREST, "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR, "hamming": Image.Resampling.HAMMING,
    "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS,
}
PHOTO_SIZES = [(64, 64), (97, 61), (301, 17)]
SMALL_SIZES = [(100, 75), (29, 83)]  # upscaling the 28x28 Fashion-MNIST samples


def resize_goldens():
    folder = f"{OUT}/resize"
    os.makedirs(folder, exist_ok=True)
    jobs = [(p, PHOTO_SIZES) for p in PHOTOS] + [(p, SMALL_SIZES) for p in ["coat.png", "sandal.png"]]
    for photo, sizes in jobs:
        image = Image.open(f"Images/{photo}").convert("RGB")
        stem = os.path.splitext(photo)[0]
        for filter_name, code in FILTERS.items():
            for w, h in sizes:
                image.resize((w, h), code).save(f"{folder}/{stem}-{filter_name}-{w}x{h}.png")
    print(f"resize: {len(os.listdir(folder))} files")


def profile_goldens():
    import timm
    import torchvision.transforms as T
    from transformers import ViTImageProcessorPil

    folder = f"{OUT}/profile"
    os.makedirs(folder, exist_ok=True)
    hf = ViTImageProcessorPil(do_rescale=False, do_normalize=False)
    timm_models = {"timm-vit": "vit_base_patch16_224.augreg2_in21k_ft_in1k", "timm-deit": "deit_base_patch16_224.fb_in1k"}
    timm_transforms = {}
    for name, model in timm_models.items():
        cfg = timm.data.resolve_data_config({}, model=timm.create_model(model, pretrained=False))
        transform = timm.data.create_transform(**cfg)
        # Everything before ToTensor/Normalize: the 8-bit image the model input is made from.
        steps = [t for t in transform.transforms if not isinstance(t, (T.ToTensor, T.Normalize))]
        timm_transforms[name] = (T.Compose(steps), cfg)
    inputs = [(os.path.splitext(p)[0], Image.open(f"Images/{p}").convert("RGB")) for p in PHOTOS]
    # A portrait photo: Pillow 13 resizes it vertically first for every profile.
    inputs.append(("chelsea-rotated", inputs[0][1].transpose(Image.Transpose.ROTATE_90)))
    for stem, image in inputs:
        pixels = hf(image, return_tensors="np")["pixel_values"][0]  # [3, 224, 224], 0..255
        assert np.all(pixels == np.round(pixels))
        Image.fromarray(pixels.transpose(1, 2, 0).astype(np.uint8)).save(f"{folder}/{stem}-hf-vit.png")
        for name, (transform, cfg) in timm_transforms.items():
            transform(image).save(f"{folder}/{stem}-{name}.png")
    for name, (transform, cfg) in timm_transforms.items():
        print(name, cfg, transform)


if __name__ == "__main__":
    print("Pillow", PIL.__version__)
    decode_fixtures()
    resize_goldens()
    profile_goldens()
