"""Pictures of poses, reconstructions and codebooks.

Every ``save_*`` function writes one file atomically (through :func:`posetok.io.atomic_path`, so a crash
never leaves a half-written file), creates the parent folders and returns the destination
:class:`~pathlib.Path`. The format follows the file's suffix: ``.png`` is the intended one; the matplotlib
figures also take ``.pdf`` or ``.svg``; :func:`save_sequence_animation` writes ``.gif`` or ``.mp4``.

The matplotlib figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas, never through
pyplot, so importing this package neither changes matplotlib's backend nor opens windows, and it is safe in
threads and on headless machines.

Modules (everything public is re-exported here):

* :mod:`posetok.viz.skeleton`: poses in the image frame and their conventions (pixels, visibility):
  :func:`draw_skeleton`, :func:`save_reconstruction_grid`, :func:`save_overlay` (skeletons on a photo).
* :mod:`posetok.viz.codebook`: codebook usage, :func:`save_codebook_usage` and
  :func:`save_codebook_usage_per_quantizer`.
* :mod:`posetok.viz.animation`: :func:`save_sequence_animation`, a sequence beside its reconstruction.
* :mod:`posetok.viz.charts`: :func:`save_error_per_joint`, :func:`save_rate_distortion` and
  :func:`save_training_curve`.
* :mod:`posetok.viz.overlay`: skeletons drawn on images with OpenCV (:func:`~posetok.viz.overlay.draw_pose_on_image`)
  and the best and worst people of an evaluation (:func:`~posetok.viz.overlay.save_best_worst`).
* ``posetok.viz._common``: :data:`SIDE_COLORS` and the helpers the modules share (input checks, body sides,
  saving a figure).
"""

from __future__ import annotations

from ._common import SIDE_COLORS
from .animation import save_sequence_animation
from .charts import save_error_per_joint, save_rate_distortion, save_training_curve
from .codebook import save_codebook_usage, save_codebook_usage_per_quantizer
from .skeleton import draw_skeleton, save_overlay, save_reconstruction_grid

__all__ = [
    "SIDE_COLORS",
    "draw_skeleton",
    "save_codebook_usage",
    "save_codebook_usage_per_quantizer",
    "save_error_per_joint",
    "save_overlay",
    "save_rate_distortion",
    "save_reconstruction_grid",
    "save_training_curve",
    "save_sequence_animation",
]
