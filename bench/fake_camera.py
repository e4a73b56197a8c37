"""A fake webcam for Chromium (`--use-file-for-fake-video-capture=<file>.y4m`) that shows ticket QR codes one after
another, with a machine-readable strip telling a page which code a frame shows and since how many frames.

Each code gets a few white frames (5-10 by default), then `shown` frames with its QR code (drawn by
registration.tickets.qr_code, as tickets print it) in the middle of a 640x480 picture at 30 fps. While a code is
shown, a strip of small squares in the top-left corner (outside the QR code's quiet zone) is drawn too:

    square 0                 dark: a code is in front of the camera (all squares white on blank frames)
    squares 1..INDEX_BITS    the code's number in the file, most significant bit first (dark = 1)
    next OFFSET_BITS squares how many frames of this code came before this one (0 = the first)

A page samples the strip of each presented frame (bench/door_speed.js) and so knows the moment a code's first frame was
captured even when it did not see that very frame. Chromium loops the file.
"""

import random
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from registration import tickets

WIDTH, HEIGHT, FPS = 640, 480, 30
INDEX_BITS, OFFSET_BITS = 10, 6
SQUARE, STRIDE, LEFT, TOP = 12, 16, 8, 8  # even sizes and positions: whole 2x2 chroma blocks
#: The strip's squares, left to right: marker, code number, frame offset.
SQUARES = 1 + INDEX_BITS + OFFSET_BITS
#: The rectangle a page has to read to decode the strip.
STRIP = {"frame_width": WIDTH, "frame_height": HEIGHT, "left": LEFT, "top": TOP, "square": SQUARE, "stride": STRIDE,
         "count": SQUARES, "index_bits": INDEX_BITS, "offset_bits": OFFSET_BITS}
# Studio range (BT.601), as cameras deliver I420: black 16, white 235.
_TO_Y = bytes(16 + round(value * 219 / 255) for value in range(256))
_CHROMA = b"\x80" * (2 * (WIDTH // 2) * (HEIGHT // 2))  # no colour
HEADER = f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{FPS}:1 Ip A1:1 C420jpeg\n".encode()


def _bits(value: int, count: int) -> list[int]:
    return [(value >> shift) & 1 for shift in range(count - 1, -1, -1)]


def _frame(picture: Image.Image) -> bytes:
    return b"FRAME\n" + picture.tobytes().translate(_TO_Y) + _CHROMA


def code_picture(code: str, box_size: int = 10) -> Image.Image:
    """The ticket's QR code (with its quiet zone), centred on a white 640x480 grey-scale picture."""
    qr = tickets.qr_code(code)
    qr.box_size = box_size
    image = qr.make_image(fill_color="black", back_color="white").get_image().convert("L")
    picture = Image.new("L", (WIDTH, HEIGHT), 255)
    picture.paste(image, ((WIDTH - image.width) // 2, (HEIGHT - image.height) // 2))
    if (HEIGHT - image.height) // 2 < TOP + SQUARE + 4:
        raise ValueError("the QR code would cover the marker strip: use a smaller box_size")
    return picture


def write_y4m(path: Path, codes: Sequence[str], *, blank: int = 5, jitter: int = 5, shown: int = 15,
              box_size: int = 10, seed: int = 2023) -> float:
    """Write the camera file: for each code, `blank` to `blank + jitter` white frames (drawn from `seed`), then
    `shown` frames of its QR code.

    The varying gap makes the codes arrive at different moments of a page's scan timer: with a fixed gap that is a
    multiple of its interval (21 frames = 700 ms at 10 scans a second), every code would arrive at the same moment.
    Returns the file's length in seconds (one loop).
    """
    gaps = random.Random(seed)
    if len(codes) >= 2 ** INDEX_BITS or shown > 2 ** OFFSET_BITS:
        raise ValueError(f"at most {2 ** INDEX_BITS - 1} codes and {2 ** OFFSET_BITS} frames per code")
    white = _frame(Image.new("L", (WIDTH, HEIGHT), 255))
    frames = 0
    with path.open("wb") as out:
        out.write(HEADER)
        for index, code in enumerate(codes):
            gap = blank + gaps.randint(0, jitter)
            out.write(white * gap)
            base = code_picture(code, box_size)
            for offset in range(shown):
                picture = base.copy()
                draw = ImageDraw.Draw(picture)
                for square, bit in enumerate([1, *_bits(index, INDEX_BITS), *_bits(offset, OFFSET_BITS)]):
                    if bit:
                        x = LEFT + square * STRIDE
                        draw.rectangle((x, TOP, x + SQUARE - 1, TOP + SQUARE - 1), fill=0)
                out.write(_frame(picture))
            frames += gap + shown
    return frames / FPS
