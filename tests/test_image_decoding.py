"""Images decode as a person sees them, in every form: EXIF orientation, every Pillow mode,
alpha on white, a pixel budget for huge pictures; byte forms keep plain originals unchanged."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lm_eval_patches.media.errors import MediaError
from lm_eval_patches.media.forms import materialise, ref_from_form
from lm_eval_patches.media.image import decode_image, image_facts, is_plain
from lm_eval_patches.media.ref import MediaRef

CASES = Path(__file__).parent / "cases"
RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def _encode(img: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def _ref(data: bytes) -> MediaRef:
    return MediaRef.from_bytes("image", data, "x", where="task t, doc 7, field inputs.image")


def _every_form(data: bytes, tmp_path: Path) -> dict[str, Image.Image]:
    """The picture as each consumer receives it: PIL, LOAD_BYTES, data URL, file, resized."""
    ref = _ref(data)

    def opened(raw: bytes) -> Image.Image:
        with Image.open(io.BytesIO(raw)) as img:  # what a server or a third party decodes
            img.load()
            assert img.mode in ("RGB", "L") and img.getexif().get(0x0112, 1) == 1
            return img.convert("RGB")

    url = materialise(ref, "LOAD_BASE64")["url"]
    header, payload = url.split(",", 1)
    assert header in ("data:image/png;base64", "data:image/jpeg;base64")
    path = Path(ref.as_file(tmp_path))
    resized = materialise(ref, "LOAD_BYTES", {"width": None, "height": None, "max_side": 1000})
    return {
        "pil": ref.as_pil(),
        "LOAD_OBJECT": materialise(ref, "LOAD_OBJECT"),
        "LOAD_BYTES": opened(materialise(ref, "LOAD_BYTES")),
        "LOAD_BASE64": opened(base64.b64decode(payload)),
        "LOAD_FILES": opened(path.read_bytes()),
        "resized bytes": opened(resized).resize(ref.as_pil().size, Image.Resampling.NEAREST),
    }


# -- EXIF orientation ---------------------------------------------------------------------------
# A 40x20 upright picture: red left half, blue right half. Stored for orientation N as the
# transposition that a viewer undoes (EXIF 2.32 tag 274).
STORED = {
    1: (),
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_90,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_270,),
}


def _upright() -> Image.Image:
    img = Image.new("RGB", (40, 20), BLUE)
    img.paste(RED, (0, 0, 20, 20))
    img.paste((0, 255, 0), (0, 0, 4, 4))  # a green top-left mark tells flips from rotations
    return img


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_every_exif_orientation_comes_out_upright(orientation, fmt, tmp_path) -> None:
    stored = _upright()
    for step in STORED[orientation]:
        stored = stored.transpose(step)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(stored, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    assert image_facts(data).orientation == orientation
    for form, img in _every_form(data, tmp_path).items():
        assert img.size == (40, 20), (form, orientation)
        px = img.load()
        assert px[10, 10][0] > 200 and px[30, 10][2] > 200, (form, orientation)
        assert px[1, 1][1] > 200 and px[1, 1][0] < 80, (form, orientation)  # green mark


def test_case_exif_orientation6(tmp_path) -> None:
    data = (CASES / "exif_orientation6.jpg").read_bytes()
    for form, img in _every_form(data, tmp_path).items():
        assert img.size == (20, 40), form
        top, bottom = img.getpixel((10, 8)), img.getpixel((10, 32))
        assert top[0] > 200 and top[1] < 60 and top[2] < 60, form  # red half on top
        assert bottom[0] < 100, form


# -- modes ----------------------------------------------------------------------------------------
def _gradient16(mode: str) -> tuple[Image.Image, np.ndarray]:
    values = np.linspace(0, 65535, 64 * 8).reshape(8, 64).astype(np.uint16)
    dtype = ">u2" if mode == "I;16B" else "<u2"
    img = Image.frombytes(mode, (64, 8), values.astype(dtype).tobytes())
    return img, values / 257.0


@pytest.mark.parametrize("mode", ["I;16", "I;16B"])
def test_16_bit_greyscale_is_scaled_not_clipped(mode) -> None:
    img, expected = _gradient16(mode)
    out = decode_image(_encode(img, "TIFF"))
    assert out.mode == "RGB"
    got = np.asarray(out)[..., 0].astype(float)
    assert np.abs(got - expected).max() <= 1.0


def test_32_bit_integer_and_float_modes() -> None:
    wide = np.linspace(0, 65535, 100).reshape(10, 10).astype(np.int32)
    out = np.asarray(decode_image(_encode(Image.fromarray(wide, "I"), "TIFF")))[..., 0]
    assert abs(int(out.max()) - 255) <= 1 and out.min() == 0 and 120 < out[5, 0] < 135
    unit = np.linspace(0, 1, 100).reshape(10, 10).astype(np.float32)
    out = np.asarray(decode_image(_encode(Image.fromarray(unit, "F"), "TIFF")))[..., 0]
    assert out.min() == 0 and out.max() == 255 and abs(int(out[5, 0]) - 129) <= 2
    odd = (np.linspace(-3, 7, 100).reshape(10, 10)).astype(np.float32)  # outside 0..1 and 0..255
    out = np.asarray(decode_image(_encode(Image.fromarray(odd, "F"), "TIFF")))[..., 0]
    assert out.min() == 0 and out.max() == 255


def test_case_gray16(tmp_path) -> None:
    data = (CASES / "gray16.png").read_bytes()
    assert not is_plain(image_facts(data))
    for form, img in _every_form(data, tmp_path).items():
        arr = np.asarray(img).astype(int)
        assert abs(arr[1, 1] - 128).max() <= 1, form
        assert abs(arr[15, 15] - 32).max() <= 1, form


def _mode_samples() -> dict[str, tuple[bytes, tuple[int, int, int]]]:
    """Encoded pictures of each mode whose centre pixel should decode to the given RGB."""
    rgb = Image.new("RGB", (8, 8), (200, 40, 40))
    out = {
        "1": (_encode(Image.new("1", (8, 8), 1)), WHITE),
        "L": (_encode(Image.new("L", (8, 8), 77)), (77, 77, 77)),
        "P": (_encode(rgb.quantize(8)), (200, 40, 40)),
        "CMYK": (_encode(rgb.convert("CMYK"), "JPEG", quality=100), (200, 40, 40)),
        "YCbCr": (_encode(rgb.convert("YCbCr"), "TIFF"), (200, 40, 40)),
        "RGB TIFF": (_encode(rgb, "TIFF"), (200, 40, 40)),
        "RGB BMP": (_encode(rgb, "BMP"), (200, 40, 40)),
        "RGB GIF": (_encode(rgb, "GIF"), (200, 40, 40)),
        "I": (_encode(Image.new("I", (8, 8), 51400), "TIFF"), (200, 200, 200)),
        "F": (_encode(Image.new("F", (8, 8), 0.5), "TIFF"), (128, 128, 128)),
    }
    return out


@pytest.mark.parametrize("name", list(_mode_samples()))
def test_every_mode_becomes_8_bit_rgb_of_the_same_content(name) -> None:
    data, expected = _mode_samples()[name]
    img = decode_image(data)
    assert img.mode == "RGB"
    got = img.getpixel((4, 4))
    assert max(abs(a - b) for a, b in zip(got, expected, strict=True)) <= 4, (name, got)


# -- alpha ----------------------------------------------------------------------------------------
def _alpha_samples() -> dict[str, bytes]:
    """A black 2-pixel line on a fully transparent background whose hidden colour is black."""
    rgba = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    rgba.paste((0, 0, 0, 255), (0, 4, 10, 6))
    la = rgba.convert("LA")
    palette = Image.new("P", (10, 10), 0)
    palette.putpalette([0, 0, 0, 0, 0, 0] + [0] * 762)
    palette.paste(1, (0, 4, 10, 6))
    key = Image.new("RGB", (10, 10), (0, 0, 0))
    key.paste((1, 1, 1), (0, 4, 10, 6))
    return {
        "RGBA": _encode(rgba),
        "LA": _encode(la),
        "RGBA WebP": _encode(rgba, "WEBP", lossless=True),
        "P transparency": _encode(palette, transparency=0),
        "RGB colour key": _encode(key, transparency=(0, 0, 0)),
        "GIF transparency": _encode(palette, "GIF", transparency=0),
    }


@pytest.mark.parametrize("name", list(_alpha_samples()))
def test_alpha_is_composited_on_white(name, tmp_path) -> None:
    data = _alpha_samples()[name]
    assert not is_plain(image_facts(data)), name
    for form, img in _every_form(data, tmp_path).items():
        assert img.getpixel((5, 1)) == WHITE, (name, form)
        assert max(img.getpixel((5, 5))) <= 2, (name, form)


def test_pa_mode_alpha() -> None:
    rgba = Image.new("RGBA", (6, 6), (0, 0, 0, 0))
    rgba.paste((0, 0, 0, 255), (0, 2, 6, 4))
    pa = rgba.convert("PA")
    from lm_eval_patches.media.image import to_rgb

    out = to_rgb(pa)
    assert out.getpixel((3, 0)) == WHITE and out.getpixel((3, 3)) == (0, 0, 0)


def test_case_rgba_black_on_transparent(tmp_path) -> None:
    data = (CASES / "rgba_black_on_transparent.png").read_bytes()
    for form, img in _every_form(data, tmp_path).items():
        arr = np.asarray(img)
        assert (arr == 255).all(axis=2).mean() > 0.5, form  # background white
        assert (arr < 40).all(axis=2).sum() >= 20, form  # the line still visible


# -- byte forms: plain originals unchanged, others encoded once ------------------------------------
def test_plain_images_are_sent_as_their_original_bytes(tmp_path) -> None:
    rgb = Image.new("RGB", (12, 9), (10, 120, 200))
    for fmt, mime in (("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")):
        data = _encode(rgb, fmt)
        ref = _ref(data)
        assert is_plain(image_facts(data))
        assert ref.as_bytes() == (data, mime)
        assert materialise(ref, "LOAD_BYTES") == data
        assert materialise(ref, "LOAD_BASE64")["url"] == (
            f"data:{mime};base64," + base64.b64encode(data).decode()
        )
        path = ref.as_file(tmp_path)
        assert path.read_bytes() == data and path.name.startswith(f"image-{ref.sha256}.")
    # A phone's multi-picture JPEG (MPO) is an ordinary JPEG to any reader: sent as it is.
    buf = io.BytesIO()
    rgb.save(buf, "MPO", save_all=True, append_images=[Image.new("RGB", (12, 9))])
    assert _ref(buf.getvalue()).as_bytes() == (buf.getvalue(), "image/jpeg")


def test_normalised_images_keep_their_family_and_real_mime(tmp_path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    jpeg = _encode(Image.new("RGB", (20, 10), RED), "JPEG", exif=exif.tobytes())
    data, mime = _ref(jpeg).as_bytes()
    assert mime == "image/jpeg" and data[:3] == b"\xff\xd8\xff" and data != jpeg
    png16 = (CASES / "gray16.png").read_bytes()
    ref = _ref(png16)
    data, mime = ref.as_bytes()
    assert mime == "image/png" and data.startswith(b"\x89PNG")
    path = ref.as_file(tmp_path)
    assert path.name == f"image-{ref.sha256}-rgb.png" and path.read_bytes() == data
    assert hashlib.sha256(png16).hexdigest() == ref.sha256  # the source hash names it


# -- pixel budget and undecodable pictures ---------------------------------------------------------
def test_case_huge_image_is_decoded_under_the_budget(monkeypatch) -> None:
    data = (CASES / "huge_20000x9000.png").read_bytes()
    facts = image_facts(data)
    assert facts.size == (20000, 9000) and not is_plain(facts)
    img = decode_image(data)
    assert img.mode == "RGB" and img.width * img.height <= 50_000_000
    assert abs(img.width / img.height - 20000 / 9000) < 0.01
    monkeypatch.setenv("MERA_IMAGE_MAX_PIXELS", "100000")  # read at call time
    small = _ref(data).as_pil()
    assert small.width * small.height <= 100_000 and small.width > 400


def test_budget_reduces_jpeg_while_decoding() -> None:
    data = _encode(Image.new("RGB", (1600, 1200), (30, 200, 30)), "JPEG")
    img = decode_image(data, budget=120_000)
    assert img.width * img.height <= 120_000 and img.getpixel((5, 5))[1] > 180


def test_undecodable_pictures_raise_media_errors_naming_the_field(monkeypatch) -> None:
    huge = (CASES / "huge_20000x9000.png").read_bytes()
    monkeypatch.setattr("lm_eval_patches.media.image.DECODE_CEILING_PIXELS", 10_000_000)
    broken = {
        "over the decode ceiling": huge,
        "truncated": _encode(Image.new("RGB", (64, 64), RED))[:60],
        "not an image": b"hello",
    }
    for label, data in broken.items():
        with pytest.raises(MediaError, match="task t, doc 7, field inputs.image") as info:
            _ref(data).as_pil()
        assert "cannot" in str(info.value), label
        if label == "truncated":  # a plain header: byte forms pass the bytes on undecoded
            assert materialise(_ref(data), "LOAD_BYTES") == data
        else:
            with pytest.raises(MediaError):
                materialise(_ref(data), "LOAD_BASE64")


def test_every_form_comes_back_as_a_ref(tmp_path) -> None:
    data = _encode(Image.new("RGB", (5, 5), RED))
    ref = _ref(data)
    for mode in ("LOAD_BYTES", "LOAD_BASE64", "LOAD_FILES"):
        back = ref_from_form(materialise(ref, mode), "image")
        assert back.sha256 == ref.sha256 and back.as_pil().getpixel((2, 2)) == RED
    assert ref_from_form(ref, "image") is ref
    with pytest.raises(MediaError, match="base64"):
        ref_from_form({"url": "data:image/png;base64,***"}, "image")
    with pytest.raises(TypeError, match="cannot use"):
        ref_from_form(3, "image")
