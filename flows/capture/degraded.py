"""A ground-truth set of old, worn print: Kazakh and Russian text, degraded the way old paper is.

The fund's valuable items (R13) are mostly old print — Soviet-era newspapers and books in
Kazakh and Russian Cyrillic (старая печать / ескі баспа): worn type, uneven ink, bleed-through,
columns. This module renders such pages and lines from text whose truth is known, so OCR
accuracy can be measured (``bench/ocr_quality.py``) per kind of damage. Every sample is
reproducible from its seed.

Each :class:`DegradedSample` belongs to one *degradation class* (:data:`CLASSES`):

* ``clean`` — the control: paper tone, light sensor noise only;
* ``noise`` — heavy sensor noise and salt-and-pepper specks;
* ``blur`` — out-of-focus optics;
* ``ink_spread`` — ink spread into the paper (strokes thickened, counters filling);
* ``ink_dropout`` — worn type and faded ink: parts of strokes missing;
* ``bleed_through`` — the reverse page's print showing through, mirrored;
* ``stain`` — uneven, darkened paper (foxing, water stains, a gradient across the sheet);
* ``low_dpi`` — 9 pt type scanned at 150 dpi;
* ``jpeg`` — heavy JPEG compression (quality 6–10, 200 dpi);
* ``columns2`` / ``columns3`` — newspaper pages in two or three columns with rules between
  them (light wear), whose truth is in reading order: column by column;
* ``old_newspaper`` — everything at once, moderately, as on a 1930s newspaper: two columns of
  9 pt type at 300 dpi, spread and worn ink, the reverse showing through, yellowed uneven
  paper, sensor noise, JPEG (quality 30).

Pages (``level="page"``) are small sheets of several paragraphs; lines (``level="line"``) are
single text lines cut out with a few pixels of margin, as for ground-truth work. Typefaces are
period-like serifs from Debian packages: URW C059 (Century Schoolbook) and P052 (Palatino) from
``fonts-urw-base35``, DejaVu Serif (``fonts-dejavu-core``), Noto Serif (``fonts-noto-core``) and,
for Russian only (it has no Kazakh letters), Liberation Serif (``fonts-liberation``).
"""

from __future__ import annotations

import io
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from flows.capture.samples import wrap_paragraph
from flows.errors import FontMissing

Level = Literal["page", "line"]
Language = Literal["kk", "ru"]

CLASSES: tuple[str, ...] = (
    "clean",
    "noise",
    "blur",
    "ink_spread",
    "ink_dropout",
    "bleed_through",
    "stain",
    "low_dpi",
    "jpeg",
    "columns2",
    "columns3",
    "old_newspaper",
)
"""Degradation classes, ``clean`` first (the control)."""

_FONTS: dict[str, tuple[str, bool]] = {
    # name: (file, has Kazakh letters ә ғ қ ң ө ұ ү һ і)
    "C059": ("/usr/share/fonts/opentype/urw-base35/C059-Roman.otf", True),
    "P052": ("/usr/share/fonts/opentype/urw-base35/P052-Roman.otf", True),
    "DejaVuSerif": ("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf", True),
    "NotoSerif": ("/usr/share/fonts/truetype/noto/NotoSerif-Regular.ttf", True),
    "LiberationSerif": ("/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf", False),
}

# Newspaper and book prose of the kind the fund holds (written for this set; period vocabulary,
# the words where Latin look-alikes creep in: колхоз, совхоз, хозяйство, ауыл, еңбек…).
KAZAKH_TEXT: tuple[str, ...] = (
    "Колхоз мүшелері егін жинау жұмысын мерзімінен бұрын аяқтады. Бригада бастығы "
    "Әбдірахманов жолдас еңбек озаттарына алғыс жариялады.",
    "Ауыл мектебінде жаңа оқу жылы басталды. Мұғалімдер балаларға қазақ әліпбиін, есеп пен "
    "жаратылыстану негіздерін үйретеді.",
    "Облыстық кітапханаға жүздеген жаңа кітап келіп түсті. Оқырмандар саны өткен жылмен "
    "салыстырғанда екі есе өсті.",
    "Совхоздың мал шаруашылығы фермасында қой саны көбейді. Шопандар қыстауға дайындықты "
    "ерте бастады, жем-шөп қоры жеткілікті.",
    "Темір жол бойындағы жаңа қалада зауыт салынып жатыр. Құрылысшылар жоспарды асыра "
    "орындап, үйлерді уақытында тапсырды.",
    "Ақын жаңа өлеңдер жинағын баспаға тапсырды. Кітапта туған жер, халық еңбегі және "
    "достық туралы жырлар бар.",
)
RUSSIAN_TEXT: tuple[str, ...] = (
    "Колхозники артели имени Кирова досрочно закончили уборку урожая. Правление колхоза "
    "премировало лучших трактористов и комбайнеров.",
    "В районном доме культуры открылась выставка книг. Читатели могут познакомиться с "
    "новинками художественной и технической литературы.",
    "На строительстве железной дороги работают сотни молодых рабочих. Первый поезд пройдёт "
    "по новому участку пути к концу года.",
    "Сельская школа получила новые учебники и наглядные пособия. Учителя готовят вечерние "
    "курсы для взрослых по ликвидации неграмотности.",
    "Хозяйство совхоза увеличило поголовье скота. Зоотехники ведут учёт каждого стада и "
    "следят за кормами на зимний период.",
    "Городская библиотека продлила часы работы читального зала. Редкие издания выдаются "
    "только под расписку и в присутствии библиотекаря.",
)


@dataclass(frozen=True)
class DegradedSample:
    """One rendered sample: ``path`` (PNG, or JPEG for ``jpeg``), its ground truth ``text``
    (lines by ``\\n``, paragraphs — or columns — by a blank line, in reading order), its
    degradation class, level, item language (``kk`` or ``ru``), typeface and resolution."""

    path: Path
    text: str
    degradation: str
    level: Level
    language: Language
    font: str
    dpi: int


def _font(name: str, size_px: int) -> ImageFont.FreeTypeFont:
    path = Path(_FONTS[name][0])
    if not path.is_file():
        raise FontMissing(
            f"font {path} not found: install Debian's fonts-urw-base35, fonts-dejavu-core, "
            "fonts-noto-core and fonts-liberation (infra/install-system)"
        )
    return ImageFont.truetype(str(path), size_px)





def _draw_block(
    draw: ImageDraw.ImageDraw,
    paragraphs: Sequence[Sequence[str]],
    *,
    font: ImageFont.FreeTypeFont,
    x: int,
    y: int,
    line_px: int,
    gap_px: int,
    bottom: int,
) -> tuple[list[list[str]], int]:
    """Draw whole paragraphs from ``y`` down while they fit above ``bottom``; what was drawn."""
    drawn: list[list[str]] = []
    for lines in paragraphs:
        height = len(lines) * line_px
        if y + height > bottom:
            break
        for line in lines:
            draw.text((x, y), line, font=font, fill=0)
            y += line_px
        drawn.append(list(lines))
        y += gap_px
    return drawn, y


def _render_page(
    paragraphs: Sequence[str],
    *,
    font_name: str,
    dpi: int,
    size_mm: tuple[float, float],
    font_pt: float,
    columns: int,
) -> tuple[Image.Image, str]:
    """Black-on-white page (mode ``L``) and its truth; columns left to right, top to bottom."""
    width = round(size_mm[0] / 25.4 * dpi)
    height = round(size_mm[1] / 25.4 * dpi)
    margin = round(8 / 25.4 * dpi)
    gutter = round(5 / 25.4 * dpi)
    font_px = max(8, round(font_pt / 72 * dpi))
    font = _font(font_name, font_px)
    line_px = round(font_px * 1.35)
    gap = round(font_px * 0.7)
    col_w = (width - 2 * margin - (columns - 1) * gutter) // columns
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    queue = [wrap_paragraph(p, font, col_w) for p in paragraphs]
    truth: list[str] = []
    for c in range(columns):
        x = margin + c * (col_w + gutter)
        drawn, _ = _draw_block(
            draw, queue, font=font, x=x, y=margin, line_px=line_px, gap_px=gap,
            bottom=height - margin,
        )
        queue = queue[len(drawn):]
        truth.extend("\n".join(lines) for lines in drawn)
        if c > 0:
            # A column rule, as newspapers print them.
            rx = x - gutter // 2
            draw.line((rx, margin, rx, height - margin), fill=0, width=max(1, dpi // 150))
    return page, "\n\n".join(truth)


def _to_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) / 255.0


def _from_array(values: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(values * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")


def _low_frequency(shape: tuple[int, int], rng: np.random.Generator, cell: int) -> np.ndarray:
    """Smooth random field in 0..1 (coarse noise, upsampled): stains, worn patches."""
    h, w = shape
    coarse = rng.random((max(2, h // cell + 2), max(2, w // cell + 2))).astype(np.float32)
    img = Image.fromarray((coarse * 255).astype(np.uint8), mode="L").resize(
        (w, h), Image.Resampling.BICUBIC
    )
    return np.asarray(img, dtype=np.float32) / 255.0


def _degrade(
    ink: Image.Image,
    degradation: str,
    *,
    dpi: int,
    rng: np.random.Generator,
    reverse: Image.Image | None,
) -> Image.Image:
    """Turn a black-on-white rendering ``ink`` into a scan with ``degradation``."""
    scale = dpi / 300.0
    # Ink shape first (type and press), then paper, then the scanner.
    if degradation in ("ink_spread", "columns2", "columns3", "old_newspaper"):
        if degradation == "ink_spread":
            # Thickened strokes, then the spread's soft, blotchy edge (thresholded blur).
            ink = ink.filter(ImageFilter.MinFilter(3))
            ink = ink.filter(ImageFilter.GaussianBlur(1.6 * scale)).point(
                lambda v: 0 if v < 170 else 255
            )
        ink = ink.filter(ImageFilter.GaussianBlur(0.8 * scale))
    if degradation in ("ink_dropout", "columns3", "old_newspaper"):
        worn = _low_frequency((ink.height, ink.width), rng, max(4, round(12 * scale)))
        specks = rng.random((ink.height, ink.width)).astype(np.float32)
        a = _to_array(ink)
        cut = 0.45 if degradation == "ink_dropout" else 0.25
        lost = (worn < cut) | (specks < (0.15 if degradation == "ink_dropout" else 0.08))
        a = np.where(lost & (a < 0.5), 0.55 + 0.45 * worn, a)
        ink = _from_array(a)
    a = _to_array(ink.filter(ImageFilter.GaussianBlur(0.6 * scale)))
    paper = 0.9 + 0.04 * float(rng.random())
    tone = 0.1 + 0.06 * float(rng.random())
    page = tone + a * (paper - tone)
    if degradation in ("bleed_through", "old_newspaper") and reverse is not None:
        back = _to_array(
            reverse.transpose(Image.Transpose.FLIP_LEFT_RIGHT).filter(
                ImageFilter.GaussianBlur(1.5 * scale)
            )
        )
        # The reverse print shows as a lighter, blurred, mirrored image under the text.
        page = np.minimum(page, paper - (1.0 - back) * 0.32)
    if degradation in ("stain", "old_newspaper"):
        strength = 1.0 if degradation == "stain" else 0.4
        field = _low_frequency(page.shape, rng, max(20, round(90 * scale)))
        gradient = np.linspace(0.0, 0.25, page.shape[1], dtype=np.float32)[None, :]
        page = page * (1.0 - strength * (0.35 * field + gradient))
    if degradation == "blur":
        page = _to_array(_from_array(page).filter(ImageFilter.GaussianBlur(2.6 * scale)))
    sigma = {"noise": 0.2, "clean": 0.02, "old_newspaper": 0.08}.get(degradation, 0.04)
    page = page + rng.normal(0.0, sigma, page.shape).astype(np.float32)
    if degradation == "noise":
        salt = rng.random(page.shape)
        page = np.where(salt < 0.015, tone, np.where(salt > 0.985, 1.0, page))
    return _from_array(page)


def _paragraph_pool(language: Language, rng: random.Random) -> list[str]:
    pool = list(KAZAKH_TEXT if language == "kk" else RUSSIAN_TEXT)
    rng.shuffle(pool)
    return pool


def _fonts_for(language: Language) -> list[str]:
    return [name for name, (_, kazakh) in _FONTS.items() if kazakh or language == "ru"]


def _save(image: Image.Image, path_base: Path, degradation: str, dpi: int,
          rng: random.Random) -> Path:
    if degradation in ("jpeg", "old_newspaper"):
        path = path_base.with_suffix(".jpg")
        buffer = io.BytesIO()
        quality = rng.randint(6, 10) if degradation == "jpeg" else 30
        image.save(buffer, format="JPEG", quality=quality, dpi=(dpi, dpi))
        path.write_bytes(buffer.getvalue())
    else:
        path = path_base.with_suffix(".png")
        image.save(path, dpi=(dpi, dpi))
    return path


def _dpi_for(degradation: str, rng: random.Random) -> int:
    if degradation == "low_dpi":
        return 150
    if degradation == "jpeg":
        return 200
    if degradation == "old_newspaper":
        return 300
    return rng.choice((300, 300, 400))


def write_degraded_set(
    dest: Path,
    *,
    per_class: int = 1,
    lines_per_class: int = 0,
    classes: Sequence[str] = CLASSES,
    seed: int = 19,
    size_mm: tuple[float, float] = (105.0, 120.0),
) -> list[DegradedSample]:
    """Write ``per_class`` pages and ``lines_per_class`` line crops of each class into ``dest``.

    Languages alternate Kazakh / Russian and typefaces rotate through the period-like serifs.
    Pages are ``size_mm`` sheets (default a small 105 × 120 mm block of a few paragraphs, quick to
    recognise) at 300 or 400 dpi (150 for ``low_dpi``, 200 for ``jpeg``); column pages use a
    smaller type. Files are ``<class>-p<NN>.png`` and ``<class>-l<NN>.png`` (``.jpg`` for
    ``jpeg``). Raises ``ValueError`` for an unknown class.
    """
    unknown = [c for c in classes if c not in CLASSES]
    if unknown:
        raise ValueError(f"unknown degradation class {unknown[0]!r} (one of: {', '.join(CLASSES)})")
    dest.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    out: list[DegradedSample] = []
    counter = 0
    for degradation in classes:
        levels: tuple[tuple[Level, int], ...] = (("page", per_class), ("line", lines_per_class))
        for level, count in levels:
            if level == "line" and degradation.startswith("columns"):
                continue  # a line crop has no columns
            for index in range(count):
                language: Language = "kk" if counter % 2 == 0 else "ru"
                fonts = _fonts_for(language)
                font_name = fonts[(counter // 2) % len(fonts)]
                counter += 1
                sample_rng = random.Random(rng.getrandbits(32))
                np_rng = np.random.default_rng(sample_rng.getrandbits(32))
                dpi = _dpi_for(degradation, sample_rng)
                pool = _paragraph_pool(language, sample_rng)
                columns = {"columns2": 2, "columns3": 3, "old_newspaper": 2}.get(degradation, 1)
                if level == "page":
                    font_pt = 9.0 if columns > 1 or degradation == "low_dpi" else 11.0
                    sheet = (size_mm[0] * (1.0 + 0.3 * (columns - 1)), size_mm[1])
                    ink, truth = _render_page(
                        pool * 2, font_name=font_name, dpi=dpi, size_mm=sheet,
                        font_pt=font_pt, columns=columns,
                    )
                else:
                    ink, truth = _render_line(pool[0], font_name=font_name, dpi=dpi,
                                              rng=sample_rng)
                reverse = None
                if degradation in ("bleed_through", "old_newspaper"):
                    reverse, _ = (
                        _render_page(
                            _paragraph_pool(language, sample_rng), font_name=font_name,
                            dpi=dpi, size_mm=(ink.width / dpi * 25.4, ink.height / dpi * 25.4),
                            font_pt=11.0, columns=1,
                        )
                        if level == "page"
                        else _render_line(pool[1], font_name=font_name, dpi=dpi,
                                          rng=sample_rng, size=ink.size)
                    )
                image = _degrade(ink, degradation, dpi=dpi, rng=np_rng, reverse=reverse)
                tag = "p" if level == "page" else "l"
                path = _save(image, dest / f"{degradation}-{tag}{index + 1:02d}", degradation,
                             dpi, sample_rng)
                out.append(DegradedSample(path, truth, degradation, level, language,
                                          font_name, dpi))
    return out


def _render_line(
    paragraph: str,
    *,
    font_name: str,
    dpi: int,
    rng: random.Random,
    size: tuple[int, int] | None = None,
) -> tuple[Image.Image, str]:
    """One text line (a few words of ``paragraph``) cut out with a small margin."""
    font_px = round(11.0 / 72 * dpi)
    font = _font(font_name, font_px)
    words = paragraph.split()
    start = rng.randrange(0, max(1, len(words) - 6))
    text = " ".join(words[start:start + rng.randint(4, 7)])
    left, top, right, bottom = font.getbbox(text)
    pad = max(4, font_px // 4)
    width, height = size or (round(right - left) + 2 * pad, round(bottom - top) + 2 * pad)
    image = Image.new("L", (width, height), 255)
    ImageDraw.Draw(image).text((pad - left, pad - top), text, font=font, fill=0)
    return image, text
