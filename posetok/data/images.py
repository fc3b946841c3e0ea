"""Reading images and videos, and writing videos, with OpenCV.

Every image or frame handed out is ``(H, W, 3)`` uint8 **RGB** (OpenCV's own order is BGR; the conversion
happens here and nowhere else). Bad input raises :class:`~posetok.errors.PosetokError` with one line naming
the file: missing, not an image, truncated.

Truncation: a JPEG or PNG cut short (an interrupted download or copy) may decode without complaint to an image
whose lower part is grey, depending on the OpenCV build; :func:`read_image` therefore also checks the end
marker of the format (JPEG ``FF D9`` after the last scan, PNG ``IEND`` after the last ``IDAT``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ..errors import PosetokError
from ..io import atomic_path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")

_JPEG_START = b"\xff\xd8\xff"
_PNG_START = b"\x89PNG\r\n\x1a\n"


def _truncated(data: bytes) -> str | None:
    """The format name if ``data`` starts as a JPEG or PNG but lacks the end of one, else None."""
    if data.startswith(_JPEG_START):
        # FF D9 (end of image) never occurs inside entropy-coded data (FF is stuffed there as FF 00), but an
        # embedded EXIF thumbnail has its own: the end marker must come after the last start-of-scan (FF DA).
        end = data.rfind(b"\xff\xd9")
        return "JPEG" if end < 0 or end < data.rfind(b"\xff\xda") else None
    if data.startswith(_PNG_START):
        end = data.rfind(b"IEND")
        return "PNG" if end < 0 or end < data.rfind(b"IDAT") else None
    return None


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to ``(H, W, 3)`` uint8 RGB.

    Grey and RGBA images become three-channel RGB; 16-bit images are scaled to 8 bits; a JPEG's EXIF
    orientation is applied (OpenCV's default, as in MMPose's ``LoadImage``).

    Raises:
        PosetokError: one line naming the file when it is missing, not a file, unreadable, empty, not an
            image OpenCV can decode, or a truncated JPEG/PNG.
    """
    p = Path(path)
    if not p.exists():
        raise PosetokError(f"{path}: image file not found")
    if not p.is_file():
        raise PosetokError(f"{path}: not a file (expected an image)")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise PosetokError(f"{path}: cannot read the image: {e.strerror or e}") from None
    if not data:
        raise PosetokError(f"{path}: the image file is empty")
    cut = _truncated(data)
    if cut is not None:
        raise PosetokError(f"{path}: truncated {cut} file (its end marker is missing); the file is incomplete")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR_RGB)
    if image is None:
        raise PosetokError(f"{path}: not an image OpenCV can decode "
                           f"(supported: {', '.join(s[1:] for s in IMAGE_SUFFIXES)})")
    return image


def is_image(path: str | os.PathLike) -> bool:
    """True when the file name has an image suffix (case-insensitive); the file is not opened."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def is_video(path: str | os.PathLike) -> bool:
    """True when the file name has a video suffix (case-insensitive); the file is not opened."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly inside ``folder`` (not its subfolders), sorted by name.

    Images are the files whose suffix is one of :data:`IMAGE_SUFFIXES` in any case; hidden files (a leading
    dot, e.g. macOS ``._x.jpg`` resource forks) are skipped.

    Raises:
        PosetokError: naming the folder when it is missing, not a folder, or holds no image.
    """
    d = Path(folder)
    if not d.exists():
        raise PosetokError(f"{folder}: image folder not found")
    if not d.is_dir():
        raise PosetokError(f"{folder}: not a folder (expected a folder of images)")
    images = sorted(p for p in d.iterdir() if is_image(p) and not p.name.startswith(".") and p.is_file())
    if not images:
        raise PosetokError(f"{folder}: no image in this folder "
                           f"(looked for {', '.join(s[1:] for s in IMAGE_SUFFIXES)})")
    return images


class VideoReader:
    """The frames of a video file as ``(H, W, 3)`` uint8 RGB, in order.

    Use as an iterable (``for frame in VideoReader(path)``), ideally inside ``with`` so the file is closed
    early. Iterating again starts over from the first frame.

    Attributes:
        path: the file.
        fps: frames per second from the container (0.0 when the container does not say).
        num_frames: frame count from the container; some containers only estimate it, so the number of
            frames iteration yields may differ by a few.
        size: ``(width, height)`` in pixels.

    Raises:
        PosetokError: naming the file when it is missing or OpenCV cannot open it as a video.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise PosetokError(f"{path}: video file not found")
        if not self.path.is_file():
            raise PosetokError(f"{path}: not a file (expected a video)")
        self._cap = self._open()
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.num_frames = max(int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        self.size = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self._started = False

    def _open(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise PosetokError(f"{self.path}: cannot open as a video (not a video, or a codec OpenCV lacks)")
        return cap

    def __len__(self) -> int:
        return self.num_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._started or self._cap is None:
            if self._cap is not None:
                self._cap.release()
            self._cap = self._open()
        self._started = True
        cap = self._cap
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                return
            if frame.ndim == 2:
                yield cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
            else:
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VideoReader('{self.path}', fps={self.fps:g}, num_frames={self.num_frames}, size={self.size})"


class VideoWriter:
    """Write RGB frames to an MP4 file (codec ``mp4v``), atomically.

    Frames go to a temporary file beside ``path`` (:func:`posetok.io.atomic_path`); :meth:`close` renames it
    onto ``path``. Leaving a ``with`` block by an exception, or closing without a frame, leaves nothing at
    ``path`` (an existing file there is untouched).

    Args:
        path: destination, normally ``*.mp4``.
        fps: frames per second, > 0.
        size: ``(width, height)`` of every frame in pixels.
    """

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int]) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        w, h = (int(s) for s in size)
        if w <= 0 or h <= 0:
            raise ValueError(f"size must be (width, height) > 0, got {tuple(size)}")
        self.path = Path(path)
        self.fps = float(fps)
        self.size = (w, h)
        self.num_frames = 0
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self.size)
        if not self._writer.isOpened():
            self._abort()
            raise PosetokError(f"{path}: cannot write an MP4 video here (OpenCV has no mp4v encoder, "
                               "or the folder is not writable)")

    def write(self, frame: np.ndarray) -> None:
        """Append one ``(height, width, 3)`` uint8 RGB frame."""
        if self._writer is None:
            raise ValueError(f"{self.path}: the video writer is closed")
        frame = np.asarray(frame)
        w, h = self.size
        if frame.shape != (h, w, 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame must be uint8 of shape ({h}, {w}, 3), got {frame.dtype} {frame.shape}")
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.num_frames += 1

    def _abort(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        try:
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)
        except RuntimeError:
            pass

    def close(self) -> None:
        """Finish the file and move it to ``path``; a writer without frames writes nothing."""
        if self._writer is None:
            return
        if self.num_frames == 0:
            self._abort()
            return
        self._writer.release()
        self._writer = None
        self._ctx.__exit__(None, None, None)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()

    def __del__(self) -> None:  # an abandoned writer leaves no temporary file behind
        try:
            if getattr(self, "_writer", None) is not None:
                self._abort()
        except Exception:
            pass
