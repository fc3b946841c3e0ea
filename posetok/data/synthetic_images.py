"""Synthetic images of people: posetok's synthetic human painted as a clothed 2D figure on a background.

A prior for pose estimators trained on few real images. :func:`render_person` paints a figure from COCO-17
keypoints: a torso hull, a neck, a head (face and hair placed from the nose/eye/ear layout), tapered capsules
for the limbs, ellipses for hands and feet, far parts first (camera depth of each part), so that what the
painter hides matches the keypoint visibility of :func:`~posetok.data.synthetic.sample_poses`. Clothing
(shirt with or without sleeves, trousers or shorts, socks, shoes), skin and hair get their colours modulated
by texture patches (:func:`texture_pool`) or procedural patterns, with shading across each limb and darker
edges. :func:`background` makes a backdrop; :class:`SyntheticPeople` is a dataset of rendered people.

Coordinates are pixel indices (pixel ``i`` covers ``[i - 0.5, i + 0.5]``), as in :mod:`posetok.data.topdown`.
Widths are fractions of the person's stature in pixels (the ``unit``).
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import cv2
import numpy as np
from torch.utils.data import Dataset

from ..errors import PosetokError
from .camera import check_image_size
from .synthetic import sample_poses

__all__ = ["BACKGROUND_PART", "JOINT_PARTS", "PART_NAMES", "SyntheticPeople", "background", "render_person",
           "texture_pool"]

(NOSE, L_EYE, R_EYE, L_EAR, R_EAR, L_SHO, R_SHO, L_ELB, R_ELB, L_WRI, R_WRI,
 L_HIP, R_HIP, L_KNE, R_KNE, L_ANK, R_ANK) = range(17)  # fmt: skip
_SIDES = (("left", L_SHO, L_ELB, L_WRI, L_HIP, L_KNE, L_ANK), ("right", R_SHO, R_ELB, R_WRI, R_HIP, R_KNE, R_ANK))
_LIMB_PARTS = ("upper_arm", "sleeve", "forearm", "hand", "thigh", "shorts", "shank", "sock", "foot")
#: Names of the painted parts; the part map of :func:`render_person` holds indices into this tuple.
PART_NAMES: tuple[str, ...] = ("torso", "pelvis", "neck", "hair", "face", "left_ear", "right_ear", "left_eye",
                               "right_eye") + tuple(f"{s[0]}_{p}" for s in _SIDES for p in _LIMB_PARTS)
BACKGROUND_PART = 255  # part map value where nothing is painted
_HEAD = ("hair", "face", "left_ear", "right_ear", "left_eye", "right_eye")
#: The parts each COCO-17 joint lies on (a joint under any other part is hidden by it; torso and pelvis
#: belong to no joint).
JOINT_PARTS: dict[int, tuple[str, ...]] = {j: _HEAD[1:] for j in range(5)}  # hair over the face hides it
for _s, _sho, _elb, _wri, _hip, _kne, _ank in _SIDES:
    JOINT_PARTS[_sho] = (f"{_s}_upper_arm", f"{_s}_sleeve")
    JOINT_PARTS[_elb] = (f"{_s}_upper_arm", f"{_s}_sleeve", f"{_s}_forearm")
    JOINT_PARTS[_wri] = (f"{_s}_forearm", f"{_s}_hand")
    JOINT_PARTS[_hip] = (f"{_s}_thigh", f"{_s}_shorts")
    JOINT_PARTS[_kne] = (f"{_s}_thigh", f"{_s}_shorts", f"{_s}_shank")
    JOINT_PARTS[_ank] = (f"{_s}_shank", f"{_s}_sock", f"{_s}_foot")

# Segment lengths as fractions of stature (posetok.data.body.BONE_PROPORTIONS): estimate the unit from 2D.
_SEGMENTS = ((L_SHO, L_ELB, 0.165), (R_SHO, R_ELB, 0.165), (L_ELB, L_WRI, 0.150), (R_ELB, R_WRI, 0.150),
             (L_HIP, L_KNE, 0.230), (R_HIP, R_KNE, 0.230), (L_KNE, L_ANK, 0.246), (R_KNE, R_ANK, 0.246),
             (L_SHO, R_SHO, 0.196), (L_HIP, R_HIP, 0.112))  # fmt: skip
_TORSO_FRACTION = 0.29  # shoulder midpoint to hip midpoint
# Limb radii (fractions of stature) at the proximal and distal joint, before build and clothing.
_RADII = {"upper_arm": (0.031, 0.024), "forearm": (0.024, 0.018), "thigh": (0.048, 0.033), "shank": (0.034, 0.022)}
_SKIN_LIGHT, _SKIN_DARK = np.array([236.0, 203.0, 178.0]), np.array([82.0, 54.0, 40.0])
_HAIR = np.array([[25, 20, 18], [55, 38, 26], [105, 72, 45], [195, 165, 110], [150, 148, 145], [135, 62, 32]], float)


# ----------------------------------------------------------------------------------------------------------
# Textures and backgrounds
# ----------------------------------------------------------------------------------------------------------


def texture_pool(images: Sequence[np.ndarray], num: int = 200, size: int = 64,
                 rng: np.random.Generator | int | None = None) -> list[np.ndarray]:
    """``num`` random square crops (side 1/8 to all of the shorter side, at random places) of RGB uint8
    ``images``, each resized to ``size x size``: texture patches for clothing and backgrounds."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    images = [np.asarray(im) for im in images]
    if not images or any(im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8 for im in images):
        raise PosetokError("texture_pool needs a non-empty list of (H, W, 3) uint8 RGB images")
    out = []
    for _ in range(int(num)):
        im = images[int(rng.integers(len(images)))]
        h, w = im.shape[:2]
        side = max(min(int(round(min(h, w) * rng.uniform(0.125, 1.0))), h, w), 1)
        y, x = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
        out.append(cv2.resize(np.ascontiguousarray(im[y:y + side, x:x + side]), (size, size),
                              interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR))
    return out


def _texture_crop(rng: np.random.Generator, textures: Sequence[np.ndarray], size: tuple[int, int],
                  min_frac: float = 0.3) -> np.ndarray:
    """A random window of a random texture, flipped at random, resized to ``size`` (uint8)."""
    tex = textures[int(rng.integers(len(textures)))]
    th, tw = tex.shape[:2]
    cw, ch = max(int(tw * rng.uniform(min_frac, 1.0)), 2), max(int(th * rng.uniform(min_frac, 1.0)), 2)
    y, x = int(rng.integers(th - ch + 1)), int(rng.integers(tw - cw + 1))
    crop = tex[y:y + ch, x:x + cw][:: -1 if rng.random() < 0.3 else 1, :: -1 if rng.random() < 0.5 else 1]
    return cv2.resize(np.ascontiguousarray(crop), size, interpolation=cv2.INTER_LINEAR)


def _random_colour(rng: np.random.Generator, sat=(0.2, 0.9), val=(0.15, 0.95)) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(*sat), rng.uniform(*val))) * 255.0


def _procedural_background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    horizon = int(h * rng.uniform(0.1, 0.9))
    top = [_random_colour(rng, (0.0, 0.6), (0.3, 1.0)) for _ in range(2)]
    ground = [_random_colour(rng, (0.1, 0.7), (0.15, 0.8)) for _ in range(2)]
    if rng.random() < 0.4:  # grass-green or earth-brown ground
        ground[0] = rng.uniform(0.6, 1.3) * np.array([[70, 110, 45], [120, 100, 75.0]])[int(rng.random() < 0.4)]
    col = np.empty((h, 3), np.float32)
    t = np.linspace(0.0, 1.0, max(horizon, 1))[:, None]
    col[:horizon] = (1 - t) * top[0] + t * top[1]
    t = np.linspace(0.0, 1.0, max(h - horizon, 1))[:, None]
    col[horizon:] = ((1 - t) * ground[1] + t * ground[0])[: h - horizon]
    img = np.repeat(col[:, None, :], w, axis=1)
    n = int(rng.integers(2, 14))
    blobs = rng.uniform(-1, 1, (n, n, 3)) * rng.uniform(0.0, 0.4) + rng.uniform(-1, 1, (n, n, 1))  # mostly grey
    img += cv2.resize(blobs.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC) * rng.uniform(10, 50)
    if rng.random() < 0.5:  # buildings, walls, windows
        for _ in range(int(rng.integers(1, 9))):
            x0, x1 = np.sort(rng.uniform(-0.2, 1.2, 2) * w)
            y0 = rng.uniform(-0.2, 0.8) * h
            y1 = y0 + rng.uniform(0.05, 0.8) * h
            cv2.rectangle(img, (int(x0), int(y0)), (int(x1), int(y1)), _random_colour(rng, (0.0, 0.5)).tolist(), -1)
    if rng.random() < 0.4:  # poles, fences, lines of a court
        for _ in range(int(rng.integers(1, 7))):
            p = (rng.uniform(-0.2, 1.2, 4) * (w, h, w, h)).astype(int)
            cv2.line(img, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), _random_colour(rng).tolist(),
                     int(rng.integers(1, max(2, w // 40))), cv2.LINE_AA)
    if rng.random() < 0.4 and horizon < h - 2:  # grass-like streaks below the horizon
        g = cv2.resize(rng.random((max(h // 2, 1), max(w // 2, 1))).astype(np.float32), (w, h))
        g = cv2.blur(g, (1, int(rng.integers(3, 9))))[horizon:, :, None]
        img[horizon:] *= 0.6 + 0.8 * g
    if rng.random() < 0.5:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 2.5))
    return img


def background(rng: np.random.Generator, image_size: Sequence[int],
               textures: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """A random ``(h, w, 3)`` uint8 RGB backdrop for ``image_size = (w, h)``.

    With ``textures``, half are a random window of one (resized, flipped, colour-shifted), a third of those
    blended with a procedural scene; the rest (all, without textures) are procedural: a two-part gradient
    (sky/wall over ground) with blurred noise, and at random rectangles (buildings), lines (poles, court
    markings), grass-like streaks and defocus blur.
    """
    w, h = check_image_size(image_size)
    if textures and rng.random() < 0.5:
        img = _texture_crop(rng, textures, (w, h)).astype(np.float32)
        img = img * (rng.uniform(0.65, 1.3) * rng.uniform(0.88, 1.12, 3)).astype(np.float32) + rng.uniform(-20, 20)
        if rng.random() < 0.3:
            a = rng.uniform(0.3, 0.6)
            img = (1 - a) * img + a * _procedural_background(rng, (w, h))
        if rng.random() < 0.3:
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 2.0))
    else:
        img = _procedural_background(rng, (w, h))
    return cv2.convertScaleAbs(img)


_background = background  # render_person's argument of the same name hides the function


# ----------------------------------------------------------------------------------------------------------
# Style: colours and textures of one person
# ----------------------------------------------------------------------------------------------------------


def _cloth_colour(rng: np.random.Generator) -> np.ndarray:
    r = rng.random()
    if r < 0.4:  # black, greys, white
        return np.clip(np.full(3, rng.uniform(15, 240)) + rng.normal(0, 6, 3), 0, 255)
    if r < 0.55:  # navy, denim, khaki, olive, burgundy
        c = np.array([[30, 35, 70], [70, 95, 140], [180, 160, 120], [85, 90, 55], [110, 30, 40]], float)
        return np.clip(c[int(rng.integers(len(c)))] * rng.uniform(0.75, 1.2) + rng.normal(0, 8, 3), 0, 255)
    return _random_colour(rng)


def _procedural_texture(rng: np.random.Generator, size: tuple[int, int], patterns: bool) -> np.ndarray:
    w, h = size
    if patterns and rng.random() < 0.35:  # stripes
        period = rng.uniform(3, 0.15 * h)
        a = rng.uniform(0, np.pi)
        x = np.arange(w, dtype=np.float32)[None] * np.cos(a) + np.arange(h, dtype=np.float32)[:, None] * np.sin(a)
        s = (np.sin(x * (2 * np.pi / period)) > rng.uniform(-0.6, 0.6)).astype(np.float32)
        tex = 160.0 + 90.0 * (s - 0.5) * rng.uniform(0.3, 1.0)
        return cv2.convertScaleAbs(np.repeat(tex[..., None], 3, axis=2))
    n = int(rng.integers(3, 40))
    small = rng.uniform(-1, 1, (n, n, 3)) * rng.uniform(0.0, 0.3) + rng.uniform(-1, 1, (n, n, 1))  # mostly grey
    return cv2.resize(cv2.convertScaleAbs(small, alpha=90.0, beta=128.0), (w, h), interpolation=cv2.INTER_CUBIC)


def _layer(rng: np.random.Generator, base: np.ndarray, textures: Sequence[np.ndarray] | None,
           size: tuple[int, int], alpha: tuple[float, float]) -> tuple:
    """``(A, B, texture)``: a region's colour is ``A + B * texture`` (texture None: ``A``)."""
    base = base.astype(np.float32)
    r = rng.random()
    if r < 0.15:
        return base, None, None
    patterns = alpha[1] > 0.3  # no stripes on skin
    tex = (_texture_crop(rng, textures, size, 0.15) if textures and r < 0.7
           else _procedural_texture(rng, size, patterns))
    a = rng.uniform(*alpha)
    mean = np.maximum(tex.reshape(-1, 3)[:: 97].mean(0), 8.0).astype(np.float32)
    if textures and rng.random() < 0.25:  # the patch's own colours show through (prints, patterns)
        return base * (1 - a), np.full(3, a * base.mean() / mean.mean(), np.float32), tex
    return base * (1 - a), base * a / mean, tex  # the pattern modulates the base colour


def _style(rng: np.random.Generator, textures, size: tuple[int, int], bg_mean: np.ndarray) -> dict:
    illum = np.clip(bg_mean / max(bg_mean.mean(), 1.0), 0.85, 1.15) ** 0.5 * rng.uniform(0.6, 1.25)
    skin = _SKIN_LIGHT + rng.beta(1.2, 1.8) * (_SKIN_DARK - _SKIN_LIGHT) + rng.normal(0, 6, 3)
    hair = skin * 0.85 if rng.random() < 0.1 else _HAIR[int(rng.integers(len(_HAIR)))] * rng.uniform(0.8, 1.2)
    shoes = _cloth_colour(rng) if rng.random() < 0.6 else np.full(3, rng.choice([25.0, 235.0]))
    socks = np.full(3, rng.choice([30.0, 240.0])) if rng.random() < 0.8 else _cloth_colour(rng)
    colours = {"shirt": _cloth_colour(rng), "pants": _cloth_colour(rng), "skin": skin, "hair": hair,
               "shoes": shoes, "socks": socks}
    alphas = {"shirt": (0.2, 0.6), "pants": (0.2, 0.6), "skin": (0.05, 0.2), "hair": (0.2, 0.5),
              "shoes": (0.1, 0.4), "socks": (0.05, 0.2)}
    layers = {k: _layer(rng, np.clip(c * illum, 0, 255), textures, size, alphas[k]) for k, c in colours.items()}
    layers["eyes"], layers["ears"] = (layers["skin"][0] * 0.5, None, None), (layers["skin"][0] * 0.9,
                                                                             *layers["skin"][1:])
    light = rng.normal(0, 1, 2)
    return {
        "layers": layers, "light": light / max(np.linalg.norm(light), 1e-6), "gain": rng.uniform(0.08, 0.35),
        "edge": rng.uniform(0.1, 0.4), "build": rng.uniform(0.85, 1.15), "loose_shirt": rng.uniform(1.0, 1.15),
        "loose_pants": rng.uniform(1.0, 1.2), "head": rng.uniform(0.92, 1.08), "hair_volume": rng.uniform(1.0, 1.12),
        "sleeve": rng.choice(["none", "short", "long"], p=[0.1, 0.55, 0.35]), "sleeve_len": rng.uniform(0.35, 0.9),
        "shorts": rng.random() < 0.5, "shorts_len": rng.uniform(0.35, 1.0), "socks": rng.random() < 0.5,
        "socks_len": rng.uniform(0.1, 0.5), "waist": rng.uniform(0.08, 0.3),
    }  # fmt: skip


# ----------------------------------------------------------------------------------------------------------
# Geometry of the parts
# ----------------------------------------------------------------------------------------------------------

_CIRCLE, _ELLIPSE = (np.stack([np.cos(a), np.sin(a)], 1) for a in (np.arange(n) * (2 * np.pi / n) for n in (16, 24)))


def _hull(centres: Sequence[np.ndarray], radii: Sequence[float]) -> np.ndarray:
    pts = np.concatenate([np.asarray(c) + r * _CIRCLE for c, r in zip(centres, radii)]).astype(np.float32)
    return cv2.convexHull(pts)[:, 0].astype(np.float64)


def _capsule(a, b, ra: float, rb: float) -> tuple[np.ndarray, tuple]:
    return _hull((a, b), (ra, rb)), (a[0], a[1], b[0], b[1], ra, rb)


def _ellipse(c, axis, r_along: float, r_across: float) -> tuple[np.ndarray, tuple]:
    u = np.asarray(axis, float)
    u = u / max(np.linalg.norm(u), 1e-9)
    v = np.array([-u[1], u[0]])
    poly = c + _ELLIPSE[:, :1] * r_along * u + _ELLIPSE[:, 1:] * r_across * v
    d = max(r_along - r_across, 0.0) * u
    return poly, (c[0] - d[0], c[1] - d[1], c[0] + d[0], c[1] + d[1], r_across, r_across)


def _unit(xy: np.ndarray, have: np.ndarray) -> float:
    """Stature in pixels from 2D segment lengths: the median of the three largest length / fraction
    (foreshortening only shortens a segment; the median guards against a bad label or another convention)."""
    est = [np.linalg.norm(xy[a] - xy[b]) / f for a, b, f in _SEGMENTS if have[a] and have[b]]
    if have[[L_SHO, R_SHO, L_HIP, R_HIP]].all():
        est.append(np.linalg.norm(xy[[L_SHO, R_SHO]].mean(0) - xy[[L_HIP, R_HIP]].mean(0)) / _TORSO_FRACTION)
    est.sort()
    if len(est) >= 3:
        return max(float(est[-2]), 8.0)  # the median of the three largest
    return max(float(np.ptp(xy[have], axis=0).max()) / 0.6, 8.0) if have.sum() >= 2 else 8.0


def _facing(xy, depth, u, have) -> np.ndarray:
    """2D direction the body faces, length = share of it in the image plane (0 = toward/away from camera)."""
    if depth is not None and have[[L_SHO, R_SHO, L_HIP, R_HIP]].all():
        k = u[[L_SHO, R_SHO, L_HIP, R_HIP]].mean() / 1.7  # pixels per metre
        left = np.append((xy[L_HIP] - xy[R_HIP] + xy[L_SHO] - xy[R_SHO]) / k,
                         depth[L_HIP] - depth[R_HIP] + depth[L_SHO] - depth[R_SHO])
        up = np.append((xy[L_SHO] + xy[R_SHO] - xy[L_HIP] - xy[R_HIP]) / (2 * k),
                       (depth[L_SHO] + depth[R_SHO] - depth[L_HIP] - depth[R_HIP]) / 2)
        f = np.cross(left, up)
        return f[:2] / max(np.linalg.norm(f), 1e-9)
    ears = [j for j in (L_EAR, R_EAR) if have[j]]
    if have[NOSE] and ears:
        d = (xy[NOSE] - xy[ears].mean(0)) / (0.055 * u[NOSE])
        return d / max(1.0, np.linalg.norm(d))
    return np.zeros(2)


def _parts(xy, have, depth, pseudo, u, st) -> list:
    """``(depth, sub-order, name, polygon, shading segment, region)`` of every part that can be drawn."""
    out = []
    b = st["build"]
    zp = depth if depth is not None else pseudo
    ls, lp = b * st["loose_shirt"], b * st["loose_pants"]

    def add(joints, sub, name, geom, region, z=None):
        out.append((float(zp[list(joints)].mean()) if z is None else z, sub, name, geom[0], geom[1], region))

    up_t = np.array([0.0, -1.0])
    torso = [L_SHO, R_SHO, L_HIP, R_HIP]
    if have[torso].all():
        ms, mh = xy[[L_SHO, R_SHO]].mean(0), xy[[L_HIP, R_HIP]].mean(0)
        up_t = (ms - mh) / max(np.linalg.norm(ms - mh), 1e-6)
        us, uh = u[[L_SHO, R_SHO]].mean(), u[[L_HIP, R_HIP]].mean()
        poly = _hull([xy[L_SHO], xy[R_SHO], ms + 0.22 * (mh - ms), ms + 0.6 * (mh - ms), mh, xy[L_HIP], xy[R_HIP]],
                     [0.036 * us * ls, 0.036 * us * ls, 0.068 * us * ls, 0.062 * uh * ls, 0.065 * uh * ls,
                      0.05 * uh * ls, 0.05 * uh * ls])
        half = max(0.5 * np.linalg.norm(xy[L_SHO] - xy[R_SHO]) + 0.04 * us, 0.07 * us * ls)
        add(torso, 0, "torso", (poly, (ms[0], ms[1], mh[0], mh[1], half, half)), "shirt")
        wt = st["waist"] * (ms - mh)
        poly = _hull([xy[L_HIP], xy[R_HIP], mh, xy[L_HIP] + wt, xy[R_HIP] + wt],
                     [k * uh for k in np.array([0.053, 0.053, 0.068, 0.05, 0.05]) * max(lp, ls)])  # covers the shirt
        add(torso, 1, "pelvis", (poly, (ms[0], ms[1], mh[0], mh[1], half, half)), "pants")
    fwd = _facing(xy, depth, u, have)
    long_sleeves, shorts = st["sleeve"] == "long", st["shorts"]
    # Overlays on a limb: (part, start and end as fractions along it, region, radius factors at both ends).
    extra = {"upper_arm": ("sleeve", 0.0, st["sleeve_len"], "shirt", ls * 1.15, ls * 1.25, st["sleeve"] == "short"),
             "thigh": ("shorts", 0.0, st["shorts_len"], "pants", lp * 1.1, lp * 1.3, shorts),
             "shank": ("sock", 1.0 - st["socks_len"], 1.0, "socks", 0.85, 1.08, shorts and st["socks"])}
    for side, sho, elb, wri, hip, kne, ank in _SIDES:
        for name, a, c, region, clothed, loose in (
                ("upper_arm", sho, elb, "shirt", long_sleeves, ls), ("forearm", elb, wri, "shirt", long_sleeves, ls),
                ("thigh", hip, kne, "pants", not shorts, lp), ("shank", kne, ank, "pants", not shorts, lp)):
            if not (have[a] and have[c]):
                continue
            k = loose if clothed else 1.0
            ra, rb = _RADII[name][0] * u[a] * b, _RADII[name][1] * u[c] * b
            add((a, c), 0, f"{side}_{name}", _capsule(xy[a], xy[c], ra * k, rb * k), region if clothed else "skin")
            d = xy[c] - xy[a]
            if name in extra and extra[name][-1]:
                part, f0, f1, reg, k0, k1, _ = extra[name]
                add((a, c), 1, f"{side}_{part}", _capsule(xy[a] + f0 * d, xy[a] + f1 * d, ra * k0, rb * k1), reg)
            d = d / max(np.linalg.norm(d), 1e-6)
            if name == "forearm":
                add((a, c), 2, f"{side}_hand",
                    _ellipse(xy[c] + 0.035 * u[c] * d, d, 0.045 * u[c] * b, 0.023 * u[c] * b), "skin")
            elif name == "shank":
                f = xy[c] + 0.02 * u[c] * d - 0.03 * u[c] * fwd
                add((a, c), 2, f"{side}_foot", _capsule(f, f + 0.012 * u[c] * d + 0.13 * u[c] * fwd, 0.026 * u[c] * b,
                                                        0.022 * u[c] * b), "shoes")
    face = [j for j in range(5) if have[j]]
    if face:
        ears = [j for j in (L_EAR, R_EAR) if have[j]]
        eyes = [j for j in (L_EYE, R_EYE) if have[j]]
        em = xy[ears].mean(0) if ears else (xy[eyes].mean(0) if eyes else xy[NOSE])
        uh = float(u[face].mean()) * st["head"]
        base = xy[[L_SHO, R_SHO]].mean(0) if have[[L_SHO, R_SHO]].all() else None
        v = em - base if base is not None else np.zeros(2)
        up = v / np.linalg.norm(v) if np.linalg.norm(v) > 0.06 * uh else up_t
        nd = xy[NOSE] - em if have[NOSE] and (ears or eyes) else np.zeros(2)
        prof = min(np.linalg.norm(nd) / (0.055 * uh), 1.0)
        zh = float(zp[face].mean())
        if depth is not None:  # facing away: the hair is painted over the face
            away = bool(have[NOSE] and ears and depth[NOSE] > depth[ears].mean())
        else:
            away = bool(have[NOSE] and pseudo[NOSE] > 0)
        c = em + up * 0.03 * uh + 0.15 * nd
        if base is not None:
            add((), 0, "neck", _capsule(base + 0.1 * (em - base), c - up * 0.02 * uh, 0.03 * uh * b, 0.028 * uh * b),
                "skin", z=zh)
        hv = st["hair_volume"]
        hair = _ellipse(c - 0.3 * nd + up * 0.012 * uh, up, 0.068 * uh * hv, 0.054 * uh * hv)
        skin = _ellipse(c + 0.3 * nd - up * 0.012 * uh, up, 0.062 * uh, (0.044 + 0.01 * prof) * uh)
        add((), 2 if away else 1, "hair", hair, "hair", z=zh)
        add((), 1 if away else 2, "face", skin, "skin", z=zh)
        if not away:
            for j, name in ((L_EAR, "left_ear"), (R_EAR, "right_ear")):
                if depth is not None and have[j] and depth[j] <= depth[ears].min() and prof > 0.3:
                    add((), 3, name, _ellipse(xy[j], up, 0.024 * uh, 0.015 * uh), "ears", z=zh)
            for j, name in ((L_EYE, "left_eye"), (R_EYE, "right_eye")):
                seen = depth[j] < depth[ears].mean() if depth is not None and ears else pseudo[j] == 0
                if have[j] and seen:
                    add((), 4, name, _ellipse(xy[j], up, 0.006 * uh, 0.005 * uh), "eyes", z=zh)
    return out


# ----------------------------------------------------------------------------------------------------------
# Painting
# ----------------------------------------------------------------------------------------------------------


def _paint(canvas: np.ndarray, pmap: np.ndarray | None, pid: int, poly: np.ndarray, seg: tuple, layer: tuple,
           st: dict) -> None:
    h, w = canvas.shape[:2]
    x0, y0 = max(int(np.floor(poly[:, 0].min())) - 1, 0), max(int(np.floor(poly[:, 1].min())) - 1, 0)
    x1, y1 = min(int(np.ceil(poly[:, 0].max())) + 2, w), min(int(np.ceil(poly[:, 1].max())) + 2, h)
    if x1 <= x0 or y1 <= y0:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    pts = np.round((poly - (x0, y0)) * 16).astype(np.int32)
    cv2.fillConvexPoly(mask, pts, 255, cv2.LINE_AA, 4)
    ax, ay, bx, by, ra, rb = (float(v) for v in seg)
    xs = np.arange(x0, x1, dtype=np.float32)[None] - np.float32(ax)
    ys = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(ay)
    dx, dy = bx - ax, by - ay
    t = np.clip((xs * dx + ys * dy) * (1.0 / max(dx * dx + dy * dy, 1e-6)), 0.0, 1.0)
    inv = 1.0 / np.maximum(ra + t * (rb - ra), 0.5)
    nx, ny = (xs - t * dx) * inv, (ys - t * dy) * inv
    lx, ly = st["light"]
    shade = 1.0 + st["gain"] * (nx * lx + ny * ly) - st["edge"] * np.minimum(nx * nx + ny * ny, 1.3) ** 2
    a_col, b_col, tex = layer
    col = (a_col if tex is None else a_col + b_col * tex[y0:y1, x0:x1]) * shade[..., None]
    alpha = mask[..., None].astype(np.float32) * np.float32(1.0 / 255.0)
    roi = canvas[y0:y1, x0:x1]
    roi += alpha * (col - roi)
    if pmap is not None:
        pmap[y0:y1, x0:x1][mask >= 128] = pid


def render_person(
    rng: np.random.Generator,
    keypoints: np.ndarray,
    joints_depth: np.ndarray | None,
    image_size: Sequence[int],
    textures: Sequence[np.ndarray] | None = None,
    background: np.ndarray | None = None,
    *,
    unit: float | np.ndarray | None = None,
    return_parts: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Paint a clothed person with COCO-17 ``keypoints`` on ``background`` (or a random :func:`background`).

    Args:
        rng: all random choices (style, textures, shading, noise) come from it.
        keypoints: ``(17, 3)`` image pixels ``x, y, v`` (or ``(17, 2)``). Joints with ``v = 0`` count as
            missing (parts needing them are not drawn): to draw a person cut by the border, pass the
            projected positions of all joints with ``v > 0``. Without depth, ``v = 1`` pushes a part back.
        joints_depth: ``(17,)`` camera ``z`` (metres) of each joint: parts are painted far to near; also turns
            the head (face or hair in front) and the feet. None: a fixed order (legs, torso, arms, head).
        image_size: ``(w, h)`` of the output.
        textures: RGB uint8 patches (:func:`texture_pool`) for clothing and background, or None (procedural).
        background: ``(h, w, 3)`` uint8 RGB to paint on (not modified), or None for a random one.
        unit: the person's stature in pixels, a float or ``(17,)`` per joint (perspective); None estimates it
            from the 2D segment lengths (and scales it by depth when given).
        return_parts: also return the ``(h, w)`` uint8 part map: index into :data:`PART_NAMES` of the part
            painted on top at each pixel (alpha >= 1/2), :data:`BACKGROUND_PART` elsewhere.

    Returns:
        ``(h, w, 3)`` uint8 RGB, and the part map when ``return_parts``.
    """
    w, h = check_image_size(image_size)
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.shape not in ((17, 2), (17, 3)):
        raise PosetokError(f"render_person needs COCO-17 keypoints of shape (17, 3), got {kp.shape}")
    xy = kp[:, :2]
    vis = kp[:, 2] if kp.shape[1] == 3 else np.full(17, 2.0)
    have = (vis > 0) & np.isfinite(xy).all(1)
    depth = None if joints_depth is None else np.asarray(joints_depth, dtype=np.float64).reshape(17)
    if depth is not None:
        if not (np.isfinite(depth[have]).all() and (depth[have] > 0).all()):
            raise PosetokError("joints_depth must be positive and finite for the joints drawn")
    if unit is None:
        u = np.full(17, _unit(xy, have))
        if depth is not None and have.any():
            u = u * np.clip(np.median(depth[have]) / np.where(have, depth, 1.0), 0.6, 1.6)
    else:
        u = np.broadcast_to(np.asarray(unit, dtype=np.float64), (17,)).copy()
    # Fixed order without depth: legs, torso, arms, head; a hidden joint (v = 1) moves its parts back.
    pseudo = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3], float) + 4.0 * (vis == 1)
    pseudo[:5] = 4.0 * (vis[:5] == 1)
    if background is None:
        bg = _background(rng, (w, h), textures)
    else:
        bg = np.asarray(background)
        if bg.shape != (h, w, 3) or bg.dtype != np.uint8:
            raise PosetokError(f"background must be ({h}, {w}, 3) uint8, got {bg.shape} {bg.dtype}")
    canvas = bg.astype(np.float32)
    st = _style(rng, textures, (w, h), canvas.reshape(-1, 3)[::61].mean(0))
    parts = _parts(xy, have, depth, pseudo, u, st)
    parts.sort(key=lambda p: (-p[0], p[1]))
    pmap = np.full((h, w), BACKGROUND_PART, np.uint8) if return_parts else None
    for _, _, name, poly, seg, region in parts:
        _paint(canvas, pmap, PART_NAMES.index(name), poly, seg, st["layers"][region], st)
    if rng.random() < 0.4:
        canvas += rng.standard_normal((h, w, 1), dtype=np.float32) * np.float32(rng.uniform(1.0, 5.0))
    if rng.random() < 0.25:
        canvas = cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.4, 1.0))
    image = cv2.convertScaleAbs(canvas)
    return (image, pmap) if return_parts else image


# ----------------------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------------------

_EDGES = np.array([0.45, 0.2, 0.2, 0.15])  # bottom, left, right, top: where a cut person leaves the image


def _occlusion_3d(cam: np.ndarray, stature: np.ndarray) -> np.ndarray:
    """``(N, 17)`` bool: COCO joint hidden by the body, from COCO points alone, after
    :func:`posetok.data.visibility.self_occlusion` (capsules around the bones; face points facing away)."""
    unit = lambda v: v / (np.linalg.norm(v, axis=-1, keepdims=True) + 1e-9)  # noqa: E731
    ms, mh, em = cam[:, [L_SHO, R_SHO]].mean(1), cam[:, [L_HIP, R_HIP]].mean(1), cam[:, [L_EAR, R_EAR]].mean(1)
    up_h, s = unit(em - ms), stature[:, None]
    hands = cam[:, [L_WRI, R_WRI]] + 0.09 * s[..., None] * unit(cam[:, [L_WRI, R_WRI]] - cam[:, [L_ELB, R_ELB]])
    pts = np.concatenate([cam, hands], 1)  # 17, 18: the hands
    caps = [("trunk", mh, ms, 0.058 * s), ("neck", ms, ms + 0.085 * s * unit(ms - mh), 0.03 * s),
            ("skull", em, em + 0.0625 * up_h, np.full_like(s, 0.095))]
    own: dict[int, set[str]] = {j: {"skull", "neck"} for j in range(5)}
    for (side, sho, elb, wri, hip, kne, ank), hand in zip(_SIDES, (17, 18)):
        caps.append((f"trunk_{side}", mh + 0.6 * (cam[:, hip] - mh), ms + 0.55 * (cam[:, sho] - ms), 0.05 * s))
        caps += [(f"{side}_{n}", pts[:, a], pts[:, c], f * s) for n, a, c, f in (
            ("ua", sho, elb, 0.025), ("fa", elb, wri, 0.02), ("hand", wri, hand, 0.016), ("th", hip, kne, 0.04),
            ("sh", kne, ank, 0.028))]
        own.update({sho: {f"trunk_{side}", f"{side}_ua"}, elb: {f"{side}_ua", f"{side}_fa"},
                    wri: {f"{side}_fa", f"{side}_hand"}, hip: {"trunk", f"trunk_{side}", f"{side}_th"},
                    kne: {f"{side}_th", f"{side}_sh"}, ank: {f"{side}_sh"}})
    a, b = np.stack([c[1] for c in caps], 1)[:, None], np.stack([c[2] for c in caps], 1)[:, None]  # (N, 1, C, 3)
    r = np.concatenate([c[3] for c in caps], 1)[:, None]  # (N, 1, C)
    exempt = np.array([[c[0] in own[j] for c in caps] for j in range(17)])
    q = cam[:, :, None]  # (N, 17, 1, 3): image plane at unit focal length
    px, py, qz = q[..., 0] / q[..., 2] - a[..., 0] / a[..., 2], q[..., 1] / q[..., 2] - a[..., 1] / a[..., 2], q[..., 2]
    dx, dy = b[..., 0] / b[..., 2] - a[..., 0] / a[..., 2], b[..., 1] / b[..., 2] - a[..., 1] / a[..., 2]
    t = np.clip((px * dx + py * dy) / np.maximum(dx * dx + dy * dy, 1e-12), 0.0, 1.0)
    ex, ey, z = px - t * dx, py - t * dy, a[..., 2] + t * (b[..., 2] - a[..., 2])
    hidden = (((ex * ex + ey * ey) * z * z < r * r) & (qz > z + 0.25 * r) & ~exempt[None]).any(-1)
    centre = em + 0.015 * up_h
    for j, thr in ((NOSE, -0.1), (L_EYE, 0.15), (R_EYE, 0.15), (L_EAR, -0.25), (R_EAR, -0.25)):
        hidden[:, j] |= (unit(cam[:, j] - centre) * unit(-cam[:, j])).sum(-1) < thr
    return hidden


class SyntheticPeople(Dataset):
    """``num`` synthetic people (:func:`~posetok.data.synthetic.sample_poses`) rendered by :func:`render_person`.

    Poses are drawn once; each image is painted on demand from ``(seed, index)``, so ``ds[i]`` is always the
    same. Each person is rescaled (a change of focal length) so that the larger of its extents fills
    ``fill_range`` of the image, placed at random, and ``truncated_share`` of them are pushed 10-40 % over an
    edge. ``ds[i]`` is a dict: ``image`` ``(h, w, 3)`` uint8 RGB; ``keypoints`` ``(17, 3)`` float32 pixels with
    COCO visibility (0 outside the image, with ``x = y = 0``; 1 hidden by the body; 2 visible); ``box``
    ``(4,)`` float32 ``x, y, w, h``, the extent of the labelled keypoints (zeros if none).

    Attributes: ``keypoints`` ``(N, 17, 3)``, ``boxes`` ``(N, 4)`` (as the items), ``points`` ``(N, 17, 2)``
    projected positions of all joints, ``depth`` ``(N, 17)`` camera z, ``unit`` ``(N, 17)`` stature in pixels at
    each joint. :meth:`image` renders only the image (for ``TopdownDataset(images=ds.image)``).
    """

    def __init__(self, num: int, image_size: Sequence[int] = (256, 256), skeleton: str = "coco17",
                 seed: int = 0, textures: Sequence[np.ndarray] | None = None, *,
                 fill_range: tuple[float, float] = (0.5, 0.9), truncated_share: float = 0.15,
                 weights: dict[str, float] | None = None) -> None:
        if str(getattr(skeleton, "name", skeleton)) != "coco17":
            raise PosetokError(f"SyntheticPeople renders COCO-17 people only, got skeleton '{skeleton}'")
        w, h = self.image_size = check_image_size(image_size)
        self.seed = int(np.random.SeedSequence().entropy % 2**63) if seed is None else int(seed)
        self.textures = None if textures is None else [np.ascontiguousarray(t, dtype=np.uint8) for t in textures]
        poses = sample_poses(int(num), "coco17", self.seed, (w, h), return_3d=True, weights=weights)
        n, cam = len(poses.keypoints), poses.joints3d.astype(np.float64)
        focal = poses.intrinsics[:, 0, 0].astype(np.float64)[:, None]
        uv = focal[..., None] * cam[..., :2] / cam[..., 2:3]
        seg = [np.linalg.norm(cam[:, a] - cam[:, b], axis=-1) for a, b, _ in _SEGMENTS[:8]]
        stature = np.sum(seg, axis=0) / sum(f for _, _, f in _SEGMENTS[:8])
        unit = focal * stature[:, None] / cam[..., 2]
        rng = np.random.default_rng([self.seed, 0x5EED])
        pad = 0.08 * unit.mean(1, keepdims=True)  # flesh, head top, hands and feet around the keypoints
        lo, ext = uv.min(1) - pad, uv.max(1) - uv.min(1) + 2 * pad
        scale = rng.uniform(*fill_range, n) / (ext / (w, h)).max(1)
        size = ext * scale[:, None]
        corner = rng.random((n, 2)) * np.maximum((w, h) - size, 0.0)
        cut = np.flatnonzero(rng.random(n) < truncated_share)
        edge, over = rng.choice(4, len(cut), p=_EDGES), rng.uniform(0.1, 0.4, len(cut))
        ax = np.where((edge == 0) | (edge == 3), 1, 0)  # bottom and top move y
        lim, far = np.array([w, h], float)[ax], (edge == 0) | (edge == 2)  # bottom, right: past the far edge
        corner[cut, ax] = np.where(far, lim - size[cut, ax] * (1 - over), -size[cut, ax] * over)
        self.points = ((uv - lo[:, None]) * scale[:, None, None] + corner[:, None]).astype(np.float32)
        self.depth = cam[..., 2].astype(np.float32)
        self.unit = (unit * scale[:, None]).astype(np.float32)
        x, y = self.points[..., 0], self.points[..., 1]
        inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        v0 = poses.keypoints[..., 2]  # 0 where sample_poses' own frame cut the joint: test occlusion here
        hidden = np.where(v0 > 0, v0 == 1, _occlusion_3d(cam, stature))
        vis = np.where(inside, np.where(hidden, 1, 2), 0)
        self.keypoints = np.stack([np.where(inside, x, 0), np.where(inside, y, 0), vis], -1).astype(np.float32)
        lab = (vis > 0)[..., None]
        b0, b1 = np.where(lab, self.points, 1e9).min(1), np.where(lab, self.points, -1e9).max(1)
        self.boxes = np.where(lab.any(1), np.concatenate([b0, b1 - b0], 1), 0).astype(np.float32)

    def __len__(self) -> int:
        return len(self.keypoints)

    def render(self, index: int, return_parts: bool = False):
        """The image of person ``index`` (and its part map), deterministic in ``(seed, index)``."""
        i = int(index)
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} people")
        i %= len(self)
        rng = np.random.default_rng([self.seed, 0xD0A, i])
        kp = np.concatenate([self.points[i], np.full((17, 1), 2.0, np.float32)], 1)
        return render_person(rng, kp, self.depth[i], self.image_size, self.textures, None, unit=self.unit[i],
                             return_parts=return_parts)

    def image(self, index: int) -> np.ndarray:
        """The ``(h, w, 3)`` uint8 RGB image of person ``index``."""
        return self.render(index)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        image, i = self.render(index), int(index) % len(self)
        return {"image": image, "keypoints": self.keypoints[i].copy(), "box": self.boxes[i].copy()}
