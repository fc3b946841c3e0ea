"""An optional person detector for top-down inference: a torchvision detection model with a local weight file.

torchvision's COCO detectors (``fasterrcnn_resnet50_fpn``, ``fasterrcnn_resnet50_fpn_v2``,
``retinanet_resnet50_fpn``, ``fcos_resnet50_fpn``, ``ssdlite320_mobilenet_v3_large``, ...) label people as class 1.
The weights come from a file the user has (e.g. torchvision's released ``.pth``), never from a download.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import PosetokError

PERSON = 1  # the COCO person label of torchvision's detection models


class PersonDetector:
    """``detector(image RGB uint8 (H, W, 3))`` -> person boxes ``(N, 4)`` xywh in image pixels and scores ``(N,)``.

    Args:
        name: a model builder of ``torchvision.models.detection``.
        weights: path of its state dict.
        score_thr: boxes scored below this are dropped (MMPose's inferencer default 0.3).
        nms_thr: IoU threshold of the extra class-wise NMS (MMPose's default 0.3).
    """

    def __init__(self, name: str, weights: str | Path | None, score_thr: float = 0.3, nms_thr: float = 0.3) -> None:
        import torchvision.models.detection as detection

        builder = getattr(detection, name, None)
        if builder is None or not callable(builder) or name.startswith("_"):
            known = sorted(n for n in dir(detection) if n.endswith(("_fpn", "_fpn_v2", "_large", "300_vgg16")))
            raise PosetokError(f"--detector: unknown torchvision detection model {name!r} (e.g. {', '.join(known)})")
        if weights is None:
            raise PosetokError("--detector-weights: required with --detector (a local weight file; nothing is "
                               "downloaded)")
        path = Path(weights)
        if not path.is_file():
            raise PosetokError(f"{path}: detector weights not found (--detector-weights)")
        self.model = builder(weights=None, weights_backbone=None)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            self.model.load_state_dict(state.get("model", state) if isinstance(state, dict) else state)
        except Exception as e:  # corrupt files raise many types; the message names the file either way
            raise PosetokError(f"{path}: not weights of {name} ({str(e).splitlines()[0][:120]})") from None
        self.model.eval()
        self.score_thr = score_thr
        self.nms_thr = nms_thr

    @torch.no_grad()
    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from torchvision.ops import nms

        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
        out = self.model([x])[0]
        keep = (out["labels"] == PERSON) & (out["scores"] >= self.score_thr)
        boxes, scores = out["boxes"][keep], out["scores"][keep]
        keep = nms(boxes, scores, self.nms_thr)
        boxes, scores = boxes[keep].numpy(), scores[keep].numpy()
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1) if len(boxes) else np.zeros((0, 4))
        return xywh.astype(np.float32), scores.astype(np.float32)
