"""Colour management of scans: the ICC profile a scan carries is read, checked and honoured.

A scanner (or the software that saved the scan) may embed an ICC profile (цветовой профиль /
түс профилі) saying what its numbers mean: Adobe RGB, a scanner's own characterisation, a grey
tone curve, or the press a CMYK file was made for. Qor honours it instead of guessing:

* **CMYK with a profile** is converted to sRGB by LittleCMS (through Pillow's ImageCms) with the
  *relative colorimetric* intent and *black point compensation*. Relative colorimetric
  reproduces every colour the sRGB gamut holds as measured relative to the paper white (what an
  archive promises: no "pleasing" shift), and black point compensation maps the ink's deepest
  black to sRGB black, so shadows are neither washed out (print black is L* ≈ 15, a dark grey
  without it) nor crushed. Perceptual was not chosen: its tables are each profile maker's own
  gamut compression, and it moves in-gamut colours too. CMYK without a profile keeps Pillow's
  naive conversion (there is nothing better to go on), recorded as ``CMYK→RGB``.
* **RGB or grey with a profile that is not sRGB** (by colorimetry, not by name: see
  :func:`is_srgb`) keeps its pixels; the profile goes into the PDF as the page image's
  ``/ICCBased`` colour space (archival profile), so viewers show the true colours and no colour
  is resampled. A profile PDF/A cannot carry (ICC version 5, a device link…) is applied instead
  (pixels converted to sRGB, recorded).
* **An sRGB profile** is dropped: the PDF's sRGB output intent already says what DeviceRGB means.
* **A damaged profile** (LittleCMS cannot read it, or its size or header is wrong) is not fatal:
  it is ignored, recorded as ``ICC profile unreadable, ignored``, and the page is read as if it
  had none.
* Bitonal (1-bit) pages have only black and white; a profile on them is dropped.

OCR always sees the pixels as decoded (Tesseract reads luminance patterns, not colorimetry).
"""

from __future__ import annotations

import io
import logging
import struct
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageCms

logger = logging.getLogger(__name__)

UNREADABLE = "ICC profile unreadable, ignored"

# The most an 8-bit channel may differ from sRGB (after LittleCMS's own rounding and the table
# approximations different sRGB profiles use) for a profile to count as sRGB.
_SRGB_TOLERANCE = 2
_HEADER_BYTES = 128
# ICC device classes PDF/A may embed (ISO 19005-2 6.2.4.2: input, display, output, colour space)
# and the highest major version it accepts (ICC.1:2004-10 is version 4).
_EMBEDDABLE_CLASSES = frozenset({"scnr", "mntr", "prtr", "spac"})
_MAX_PDFA_VERSION = 4
_COMPONENTS = {"GRAY": 1, "RGB": 3, "CMYK": 4}
_MODE_SPACES = {"L": "GRAY", "RGB": "RGB", "CMYK": "CMYK"}


@dataclass(frozen=True)
class IccProfile:
    """An ICC profile LittleCMS reads, with what its header says.

    ``colour_space`` is the data colour space (``"RGB"``, ``"GRAY"``, ``"CMYK"``, …),
    ``device_class`` the ICC class signature (``"mntr"``, ``"scnr"``, ``"prtr"``, …),
    ``version`` its ICC version (major, minor), ``description`` its own name for itself.
    """

    data: bytes
    colour_space: str
    device_class: str
    version: tuple[int, int]
    description: str

    @property
    def components(self) -> int | None:
        """Colour components per pixel (the PDF ``/N``); ``None`` for other colour spaces."""
        return _COMPONENTS.get(self.colour_space)

    @property
    def pdfa_embeddable(self) -> bool:
        """Whether PDF/A-2 accepts this profile as an image's ``/ICCBased`` colour space."""
        return (
            self.device_class in _EMBEDDABLE_CLASSES
            and self.version[0] <= _MAX_PDFA_VERSION
            and self.components in (1, 3)
        )

    def cms_profile(self) -> ImageCms.ImageCmsProfile:
        """The profile opened by LittleCMS (a fresh object: transforms are made per page)."""
        return ImageCms.ImageCmsProfile(io.BytesIO(self.data))


@cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _transform(
    profile: IccProfile, in_mode: str, out_mode: str, *, bpc: bool
) -> ImageCms.ImageCmsTransform:
    flags = ImageCms.Flags.BLACKPOINTCOMPENSATION if bpc else ImageCms.Flags.NONE
    return ImageCms.buildTransform(
        profile.cms_profile(),
        _srgb(),
        in_mode,
        out_mode,
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
        flags=flags,
    )


def read_profile(data: bytes) -> IccProfile | None:
    """The profile in ``data``, or ``None`` when it is damaged (not an error: see module notes).

    Checked three ways: the header's size and ``acsp`` signature, LittleCMS opening it, and
    LittleCMS building a transform from it to sRGB (which reads the tags a conversion needs, so a
    profile cut short inside its tag data is found here, not half-way through a page).
    """
    if len(data) < _HEADER_BYTES or data[36:40] != b"acsp":
        return None
    (declared,) = struct.unpack(">L", data[:4])
    if declared != len(data):
        return None
    space = data[16:20].decode("latin-1").strip()
    device_class = data[12:16].decode("latin-1").strip()
    version = (data[8], data[9] >> 4)
    try:
        opened = ImageCms.ImageCmsProfile(io.BytesIO(data))
        description = ImageCms.getProfileDescription(opened).strip() or "no description"
        profile = IccProfile(data, space, device_class, version, description)
        in_mode = {"GRAY": "L", "RGB": "RGB", "CMYK": "CMYK"}.get(space)
        if in_mode is not None:
            _transform(profile, in_mode, "RGB", bpc=True)
    except (OSError, ImageCms.PyCMSError, ValueError, TypeError) as e:
        logger.info("ICC profile unreadable (%s)", e)
        return None
    return profile


@cache
def _probe(space: str) -> Image.Image:
    """Test colours for :func:`is_srgb`: a 6×6×6 RGB cube, or a 256-step grey ramp."""
    if space == "GRAY":
        return Image.frombytes("L", (256, 1), bytes(range(256)))
    levels = (0, 51, 102, 153, 204, 255)
    pixels = bytes(v for r in levels for g in levels for b in levels for v in (r, g, b))
    return Image.frombytes("RGB", (len(levels) ** 3, 1), pixels)


def is_srgb(profile: IccProfile) -> bool:
    """Whether ``profile`` means what sRGB means (RGB), or the sRGB tone curve (grey).

    Decided by colorimetry: test colours go through the profile to sRGB and must come back
    unchanged within 2 levels of 8. Names lie ("sRGB" calibrated displays, renamed copies) and
    the many sRGB profiles in the wild differ in bytes but not in colour.
    """
    mode = {"GRAY": "L", "RGB": "RGB"}.get(profile.colour_space)
    if mode is None:
        return False
    probe = _probe(profile.colour_space)
    out = ImageCms.applyTransform(probe, _transform(profile, mode, "RGB", bpc=False))
    assert out is not None  # not in place
    expected = probe.convert("RGB").tobytes()
    return all(
        abs(a - b) <= _SRGB_TOLERANCE for a, b in zip(out.tobytes(), expected, strict=True)
    )


def to_srgb(image: Image.Image, profile: IccProfile) -> Image.Image:
    """``image`` (``CMYK``, ``RGB`` or ``L`` in ``profile``'s space) converted to sRGB.

    Relative colorimetric with black point compensation (see the module notes). CMYK and RGB
    give ``RGB``; grey gives ``L`` on the sRGB tone curve.
    """
    expected = _MODE_SPACES.get(image.mode)
    if expected != profile.colour_space:
        raise ValueError(
            f"a {profile.colour_space} profile cannot convert a {image.mode} image"
        )
    out = ImageCms.applyTransform(image, _transform(profile, image.mode, "RGB", bpc=True))
    assert out is not None  # not in place
    # A grey profile's neutrals come out neutral in sRGB (R = G = B): keep one channel.
    return out.getchannel("G") if image.mode == "L" else out


@dataclass(frozen=True)
class ManagedColour:
    """A decoded page after colour management.

    ``image`` is in mode ``1``, ``L`` or ``RGB``; ``conversions`` the pixel changes made (e.g.
    ``"CMYK→sRGB (ICC: …)"``); ``notes`` what happened to a profile without changing a pixel
    (``"ICC profile unreadable, ignored"``); ``icc_profile`` the profile the PDF must carry for
    these pixels (``None``: the pixels are sRGB, or grey on its tone curve).
    """

    image: Image.Image
    conversions: tuple[str, ...]
    notes: tuple[str, ...]
    icc_profile: bytes | None


def _space_name(mode: str) -> str:
    return {"L": "grey", "RGB": "RGB"}.get(mode, mode)


def ignored_note(profile: IccProfile, page_mode: str) -> str:
    """What is recorded when a profile is made for another colour space than the page's."""
    return (
        f"ICC profile ignored: it is for {profile.colour_space}, "
        f"the page is {_space_name(page_mode)}"
    )


def settle(image: Image.Image, profile: IccProfile | None) -> ManagedColour:
    """Decide what a page in mode ``1``/``L``/``RGB`` does with its profile (module notes).

    Keeps the profile for the PDF when it is embeddable and not sRGB; converts the pixels to sRGB
    when PDF/A cannot carry it; drops it when it is sRGB, on a bitonal page, or made for another
    colour space (recorded).
    """
    if profile is None or image.mode == "1":
        return ManagedColour(image, (), (), None)
    space = _MODE_SPACES.get(image.mode)
    if space != profile.colour_space:
        return ManagedColour(image, (), (ignored_note(profile, image.mode),), None)
    if is_srgb(profile):
        return ManagedColour(image, (), (), None)
    if not profile.pdfa_embeddable:
        name = _space_name(image.mode)
        conversion = (
            f"{name}→sRGB (ICC: {profile.description}; profile class {profile.device_class}, "
            f"version {profile.version[0]}.{profile.version[1]} cannot go into PDF/A)"
        )
        return ManagedColour(to_srgb(image, profile), (conversion,), (), None)
    return ManagedColour(image, (), (), profile.data)
