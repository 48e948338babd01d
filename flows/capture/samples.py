"""Sample scans made by Qor itself: rendered Kazakh and Russian pages that look scanned.

Used by the demo (``qor digitise`` on embedded defaults), by the tests and by ``bench/``. Every
page is reproducible from its seed: the same call writes the same pixels. Pages are 8-bit grey at
300 dpi with the resolution stored in the file, slightly skewed (0.5–1.5°), with paper tone, ink
tone, optical blur and sensor noise, and each comes with its ground-truth text so OCR accuracy
(character error rate, CER) can be measured against it.

Fonts come from Debian's ``fonts-dejavu-core`` (and ``fonts-noto-core`` if present); a missing
font is a :class:`flows.errors.FontMissing` error naming the file, never a silent fallback to
Pillow's bitmap font (which has no Cyrillic).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from flows.errors import FontMissing

__all__ = [
    "KAZAKH_SENTENCE",
    "RUSSIAN_SENTENCE",
    "SamplePage",
    "normalise_text",
    "render_page",
    "write_sample_batch",
]

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/noto"))
SERIF_FONT = "DejaVuSerif.ttf"
SANS_FONT = "DejaVuSans.ttf"

KAZAKH_SENTENCE = "Шаһардағы оқырмандар үшін құнды қордың көшірмесі әзірленді."
"""A Kazakh sentence on page 1 of every sample batch; it holds all of ә ғ қ ң ө ұ ү һ і.

("A copy of the valuable fund has been prepared for the city's readers.") It is rendered as a
paragraph of its own on one line, so OCR text and PDF text contain it verbatim (compare after
:func:`normalise_text`).
"""

RUSSIAN_SENTENCE = "Акт № 17 о списании изданий подписан 12 марта 2024 года."
"""A Russian sentence on page 2 of every batch, with "№" (Tesseract may read it as "Хо" here)."""

_KAZAKH = (
    "Ұлттық кітапхананың қоры ғылыми, тарихи және көркемдік құндылығы бар басылымдардан "
    "тұрады. Сирек кітаптар мен қолжазбалар арнайы қоймада сақталады, ал олардың электрондық "
    "көшірмелері оқырмандарға қашықтан қолжетімді болады.",
    "Әрбір басылымға өзгертілмейтін түгендеу нөмірі беріледі. Кітапханашылар қордың "
    "сақталуын үнемі тексеріп, тозған кітаптарды қалпына келтіреді.",
    "Цифрландыру барысында әр бет жоғары ажыратымдылықпен сканерленеді, мәтін танылады және "
    "ұзақ мерзімді сақтауға арналған құжат жасалады.",
    "Оқу залында оқырман кітапты сол күні қайтарады. Мерзімі өткен кітаптар туралы оқырманға "
    "хат жіберіледі, қарыздың өтелуін кітапханашы қадағалайды.",
    "Міндетті тегін данамен түскен басылымдар қорға тіркеліп, жүйелі каталогқа енгізіледі. "
    "Қазақ әдебиетінің мұрасы жас ұрпаққа жетуі тиіс.",
)

_RUSSIAN = (
    "Фонд библиотеки формируется из книг, периодических изданий, рукописей и электронных "
    "документов. Каждому поступлению присваивается инвентарный номер, который не изменяется "
    "и не используется повторно.",
    "Цифровые копии научно, исторически и художественно ценных изданий хранятся в "
    "депозитарном электронном хранилище, оснащённом средствами защиты информации.",
    "Читатели получают издания на абонементе, в читальных залах и по межбиблиотечному "
    "абонементу. Задолженность читателей проверяется регулярно, а о просроченных изданиях "
    "сообщается письменно.",
    "Ветхие издания подклеивают и переплетают; особо ценные экземпляры копируют, чтобы "
    "сохранить подлинник и расширить доступ к нему.",
    "Сверка фонда проводится при смене материально ответственного лица, при выявлении "
    "утраты, а также при реорганизации библиотеки.",
)


@dataclass(frozen=True)
class SamplePage:
    """One rendered sample scan.

    ``text`` is the ground truth (lines joined by ``\\n``, paragraphs by a blank line);
    ``angle`` is the skew applied in degrees (positive = counter-clockwise, Pillow's convention);
    ``rotation`` is the quarter-turn applied after it (0, 90, 180 or 270, counter-clockwise), so a
    correct orientation step turns the page by ``-rotation``.
    """

    path: Path
    text: str
    angle: float
    rotation: int


def normalise_text(text: str) -> str:
    """Collapse every run of whitespace to one space and strip the ends (for CER and "contains")."""
    return " ".join(text.split())


def _font_path(name: str) -> Path:
    for folder in FONT_DIRS:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(d / name) for d in FONT_DIRS)
    raise FontMissing(
        f"font {name} not found (looked in {looked}); install Debian's fonts-dejavu-core"
    )


def _load_font(name: str, size_px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(_font_path(name)), size_px)


def _wrap(text: str, font: ImageFont.FreeTypeFont, width_px: int) -> list[list[str]]:
    """Wrap paragraphs (separated by blank lines) into lines no wider than ``width_px``."""
    return [wrap_paragraph(paragraph, font, width_px) for paragraph in text.split("\n\n")]


def wrap_paragraph(paragraph: str, font: ImageFont.FreeTypeFont, width_px: int) -> list[str]:
    """``paragraph``'s words in lines no wider than ``width_px`` in ``font`` (no hyphenation;
    a word wider than the line stands alone)."""
    lines: list[str] = []
    current = ""
    for word in paragraph.split():
        trial = f"{current} {word}" if current else word
        if current and font.getlength(trial) > width_px:
            lines.append(current)
            current = word
        else:
            current = trial
    if current:
        lines.append(current)
    return lines


def _gaussian_lut(sigma: float) -> list[int]:
    """Map uniform bytes 0..255 to a roughly normal distribution around 128 (inverse CDF)."""
    from statistics import NormalDist

    dist = NormalDist(0.0, max(sigma, 1e-6))
    lut = []
    for i in range(256):
        p = (i + 0.5) / 256.0
        lut.append(max(0, min(255, round(128 + dist.inv_cdf(p)))))
    return lut


class _Layout:
    def __init__(self, *, dpi: int, size_mm: tuple[float, float], font_size_pt: float) -> None:
        self.dpi = dpi
        self.width = round(size_mm[0] / 25.4 * dpi)
        self.height = round(size_mm[1] / 25.4 * dpi)
        self.margin = round(10 / 25.4 * dpi)
        self.font_px = max(8, round(font_size_pt / 72 * dpi))
        self.font = _load_font(SERIF_FONT, self.font_px)
        self.line_px = round(self.font_px * 1.45)
        self.paragraph_gap = round(self.font_px * 0.8)

    @property
    def text_width(self) -> int:
        return self.width - 2 * self.margin

    def height_of(self, paragraphs: Sequence[Sequence[str]]) -> int:
        lines = sum(len(p) for p in paragraphs)
        return lines * self.line_px + max(0, len(paragraphs) - 1) * self.paragraph_gap

    def fits(self, text: str) -> bool:
        return self.height_of(_wrap(text, self.font, self.text_width)) <= (
            self.height - 2 * self.margin
        )


def render_page(
    text: str,
    *,
    dpi: int = 300,
    size_mm: tuple[float, float] = (148.0, 210.0),
    font_size_pt: float = 10.0,
    angle: float = 0.0,
    rotation: int = 0,
    noise: float = 10.0,
    seed: int,
) -> Image.Image:
    """Render ``text`` as an 8-bit grey page that looks scanned, with ``dpi`` in ``info["dpi"]``.

    Paragraphs are separated by blank lines and wrapped at word boundaries (no hyphenation) inside
    10 mm margins. ``angle`` skews the page content (degrees, counter-clockwise), ``rotation``
    then turns the whole sheet by 0/90/180/270 degrees. ``noise`` is the standard deviation of the
    sensor noise in grey levels (0 for a clean page). Raises ``ValueError`` if the text does not
    fit the page or ``rotation`` is not a quarter turn.
    """
    if rotation not in (0, 90, 180, 270):
        raise ValueError(f"rotation must be 0, 90, 180 or 270 degrees, not {rotation}")
    layout = _Layout(dpi=dpi, size_mm=size_mm, font_size_pt=font_size_pt)
    paragraphs = _wrap(text, layout.font, layout.text_width)
    if layout.height_of(paragraphs) > layout.height - 2 * layout.margin:
        raise ValueError(
            f"text of {len(text)} characters does not fit a {size_mm[0]}×{size_mm[1]} mm page "
            f"at {font_size_pt} pt"
        )
    rng = random.Random(seed)
    paper, ink = 236 + rng.randint(0, 8), 28 + rng.randint(0, 14)

    page = Image.new("L", (layout.width, layout.height), 255)
    draw = ImageDraw.Draw(page)
    y = layout.margin
    for paragraph in paragraphs:
        for line in paragraph:
            draw.text((layout.margin, y), line, font=layout.font, fill=0)
            y += layout.line_px
        y += layout.paragraph_gap
    if angle:
        page = page.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=255)
    # Scanner optics soften edges slightly; then map white/black to paper and ink tones.
    page = page.filter(ImageFilter.GaussianBlur(radius=0.6 * dpi / 300))
    scale = (paper - ink) / 255.0
    page = page.point([round(ink + v * scale) for v in range(256)])
    if noise > 0:
        noise_img = Image.frombytes(
            "L", page.size, rng.randbytes(page.size[0] * page.size[1])
        ).point(_gaussian_lut(noise))
        page = ImageChops.add(page, noise_img, scale=1.0, offset=-128)
        # A few dust specks, as on a real flatbed glass.
        draw = ImageDraw.Draw(page)
        for _ in range(rng.randint(3, 9)):
            x, y0 = rng.randrange(page.width), rng.randrange(page.height)
            r = rng.uniform(1.0, 2.5) * dpi / 300
            draw.ellipse((x - r, y0 - r, x + r, y0 + r), fill=ink + 30)
    if rotation:
        page = page.rotate(rotation, expand=True)
    page.info["dpi"] = (dpi, dpi)
    return page


def _compose(page_index: int, rng: random.Random, layout: _Layout) -> str:
    """Text for page ``page_index`` of a batch: page 1 Kazakh, page 2 Russian, then mixed."""
    if page_index == 0:
        lead, pool = [KAZAKH_SENTENCE], list(_KAZAKH)
    elif page_index == 1:
        lead, pool = [RUSSIAN_SENTENCE], list(_RUSSIAN)
    else:
        lead, pool = [], [*_KAZAKH, *_RUSSIAN]
    rng.shuffle(pool)
    paragraphs = list(lead)
    # Fill the page with whole paragraphs; a sheet of real text, not a single line.
    for paragraph in pool * 4:
        trial = "\n\n".join([*paragraphs, paragraph])
        if not layout.fits(trial):
            break
        paragraphs.append(paragraph)
    return "\n\n".join(paragraphs)


def _ground_truth(text: str, layout: _Layout) -> str:
    return "\n\n".join(
        "\n".join(lines) for lines in _wrap(text, layout.font, layout.text_width)
    )


ImageFormat = Literal["png", "tiff", "jpeg"]


def write_sample_batch(
    dest: Path,
    *,
    pages: int = 3,
    seed: int = 7,
    fmt: ImageFormat = "png",
    dpi: int = 300,
    size_mm: tuple[float, float] = (148.0, 210.0),
    font_size_pt: float = 10.0,
    noise: float = 10.0,
    angles: Sequence[float] | None = None,
    rotations: Sequence[int] | None = None,
) -> list[SamplePage]:
    """Write ``pages`` sample scans ``page-0001.<ext>``… into ``dest`` (created if needed).

    Page 1 is Kazakh and starts with :data:`KAZAKH_SENTENCE`, page 2 Russian starting with
    :data:`RUSSIAN_SENTENCE`, later pages mix both. Each page is skewed by a seeded angle of
    0.5–1.5° either way unless ``angles`` gives them; ``rotations`` (quarter turns) default to 0.
    ``fmt`` is ``png``, ``tiff`` (LZW) or ``jpeg`` (quality 92); the resolution is stored in the
    file. The defaults (3 A5 pages) OCR in a few seconds per page on one core.
    """
    if pages < 1:
        raise ValueError("pages must be at least 1")
    dest.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    layout = _Layout(dpi=dpi, size_mm=size_mm, font_size_pt=font_size_pt)
    ext = {"png": "png", "tiff": "tif", "jpeg": "jpg"}[fmt]
    result: list[SamplePage] = []
    for index in range(pages):
        text = _compose(index, random.Random(rng.getrandbits(32)), layout)
        if angles is not None:
            angle = float(angles[index % len(angles)])
        else:
            angle = round(rng.uniform(0.5, 1.5) * rng.choice((-1, 1)), 2)
        rotation = int(rotations[index % len(rotations)]) if rotations is not None else 0
        image = render_page(
            text,
            dpi=dpi,
            size_mm=size_mm,
            font_size_pt=font_size_pt,
            angle=angle,
            rotation=rotation,
            noise=noise,
            seed=rng.getrandbits(32),
        )
        path = dest / f"page-{index + 1:04d}.{ext}"
        if fmt == "png":
            image.save(path, dpi=(dpi, dpi))
        elif fmt == "tiff":
            image.save(path, compression="tiff_lzw", dpi=(dpi, dpi))
        else:
            image.save(path, quality=92, dpi=(dpi, dpi))
        result.append(
            SamplePage(path=path, text=_ground_truth(text, layout), angle=angle, rotation=rotation)
        )
    return result
