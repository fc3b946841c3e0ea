"""Spatial-temporal graph convolution (ST-GCN, Yan et al., "Spatial Temporal Graph Convolutional Networks for
Skeleton-Based Action Recognition", AAAI 2018) over the joint graph of a :class:`~posetok.skeletons.Skeleton`.

The graph is the skeleton's ``limbs`` plus self loops. :func:`skeleton_graph` turns it into the partitioned,
normalised adjacency ``A`` of shape ``(P, N, N)``; :class:`STGCNBlock` applies one spatial graph convolution
(``P`` partitions, learnable edge importance) and one temporal convolution to features ``(B, C, T, N)``.

Convention: ``A[p, i, j]`` is the weight with which joint ``j`` feeds joint ``i`` in partition ``p``, so a graph
convolution is ``out[..., i] = sum_p sum_j A[p, i, j] * x_p[..., j]`` and every non-empty row of every partition
sums to 1 (``D^-1 A``, normalised per partition as in the paper's eq. 2: each neighbour is divided by the size of
its subset).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..skeletons import Skeleton

STRATEGIES = ("uniform", "distance", "spatial")

# Links used to attach a limb-graph component that the skeleton leaves disconnected to the body, by joint name:
# (joint that may sit in the stray component, the joint next to it that it hangs off). The face entries follow
# the 68-point (iBUG 300-W) model, whose contours (jaw, brows, nose bridge, lower nose, eyes, lips) are separate
# chains: the bridge hangs off the body's nose at the nose tip (30), the brows and the eyes' inner corners off
# the top of the bridge (27), the lower nose off the tip, the upper lip centres off the nose bottom (33) and
# the jaw's chin (8) off the lower lip centre (57).
_ATTACH_BY_NAME: tuple[tuple[str, str], ...] = (
    ("face-30", "nose"),
    ("face-33", "face-30"),
    ("face-21", "face-27"),
    ("face-22", "face-27"),
    ("face-39", "face-27"),
    ("face-42", "face-27"),
    ("face-51", "face-33"),
    ("face-62", "face-51"),
    ("face-8", "face-57"),
    ("left_hand_root", "left_wrist"),
    ("right_hand_root", "right_wrist"),
    ("left_heel", "left_ankle"),
    ("left_big_toe", "left_ankle"),
    ("left_small_toe", "left_ankle"),
    ("right_heel", "right_ankle"),
    ("right_big_toe", "right_ankle"),
    ("right_small_toe", "right_ankle"),
)
# Joints that are the body's centre themselves, in order of preference.
_CENTRE_NAMES = ("pelvis", "root", "mid_hip", "hip_centre", "hip_center")


def _components(num_joints: int, edges: list[tuple[int, int]]) -> list[list[int]]:
    """Connected components of the undirected graph, each sorted, in order of their smallest joint."""
    parent = list(range(num_joints))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for i in range(num_joints):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def _hop_distance(num_joints: int, edges: list[tuple[int, int]]) -> np.ndarray:
    """``(N, N)`` shortest-path hop counts; ``inf`` between disconnected joints."""
    neighbours: list[list[int]] = [[] for _ in range(num_joints)]
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    hops = np.full((num_joints, num_joints), np.inf)
    for src in range(num_joints):
        hops[src, src] = 0
        queue = deque([src])
        while queue:
            i = queue.popleft()
            for j in neighbours[i]:
                if hops[src, j] == np.inf:
                    hops[src, j] = hops[src, i] + 1
                    queue.append(j)
    return hops


def graph_edges(skeleton: Skeleton) -> list[tuple[int, int]]:
    """The skeleton's limbs plus the links that make its graph connected.

    A graph convolution cannot pass information between components, so a part the limb list leaves floating
    (COCO-WholeBody's face is nine contours with no link to each other or to the body) is attached to the body:
    by the name-based links of ``_ATTACH_BY_NAME`` where one applies (face nose tip to nose and the other face
    contours to their neighbours, hand roots to wrists, toes and heels to ankles), otherwise by linking the
    stray part's first joint to the body's centre joint. The component that
    holds the centre (see :func:`graph_centre`), else the largest, is the body.
    """
    n = skeleton.num_joints
    edges = [(int(a), int(b)) for a, b in skeleton.limbs if a != b]
    for a, b in edges:
        if not (0 <= a < n and 0 <= b < n):
            raise ValueError(f"skeleton '{skeleton.name}': limb ({a}, {b}) is out of range for {n} joints")
    names = {name: i for i, name in enumerate(skeleton.joint_names)}
    centre = _named_centre(skeleton)
    while True:
        comps = _components(n, edges)
        if len(comps) == 1:
            return edges
        body = next((c for c in comps if centre and centre[0] in c), max(comps, key=len))
        in_body = set(body)
        link = None
        for stray_name, body_name in _ATTACH_BY_NAME:
            a, b = names.get(stray_name), names.get(body_name)
            if a is not None and b is not None and a not in in_body and b in in_body:
                link = (b, a)
                break
        if link is None:
            stray = next(c for c in comps if c is not body)
            anchor = centre[0] if centre else _eccentricity_centre(n, edges, body)
            link = (anchor, stray[0])
        edges.append(link)


def _named_centre(skeleton: Skeleton) -> list[int]:
    """The centre joints found by name: a pelvis/root joint, else both hips (a virtual mid-hip); else []."""
    names = {name: i for i, name in enumerate(skeleton.joint_names)}
    for name in _CENTRE_NAMES:
        if name in names:
            return [names[name]]
    if "left_hip" in names and "right_hip" in names:
        return [names["left_hip"], names["right_hip"]]
    return []


def _eccentricity_centre(num_joints: int, edges: list[tuple[int, int]], nodes: list[int]) -> int:
    """The graph centre of ``nodes``: least eccentricity, then least total hop distance, then lowest index."""
    hops = _hop_distance(num_joints, edges)[np.ix_(nodes, nodes)]
    best = min(range(len(nodes)), key=lambda k: (hops[k].max(), hops[k].sum(), nodes[k]))
    return nodes[best]


def graph_centre(skeleton: Skeleton) -> list[int]:
    """The joints that form the skeleton's centre of gravity for the spatial partition.

    A joint named ``pelvis`` or ``root`` (MPII, Human3.6M) is the centre. Without one, the left and right hips
    together act as a virtual mid-hip (COCO-17, COCO-WholeBody), as ST-GCN's mid-hip centre does: a joint's
    distance to the centre is its hop distance to the nearer hip. Skeletons with neither use the hop-distance
    centre of the limb graph (least eccentricity).
    """
    named = _named_centre(skeleton)
    if named:
        return named
    edges = graph_edges(skeleton)
    return [_eccentricity_centre(skeleton.num_joints, edges, list(range(skeleton.num_joints)))]


def _row_normalise(a: np.ndarray) -> np.ndarray:
    deg = a.sum(-1, keepdims=True)
    return np.divide(a, deg, out=np.zeros_like(a), where=deg > 0)


def skeleton_graph(skeleton: Skeleton, strategy: str = "spatial", max_hop: int = 1) -> torch.Tensor:
    """The partitioned, normalised ST-GCN adjacency of ``skeleton``: float32 ``(P, N, N)``.

    Neighbours are the joints within ``max_hop`` hops (self included) of the connected limb graph
    (:func:`graph_edges`). Strategies (Yan et al. 2018, sec. 3.4):

    - ``"uniform"``: ``P = 1``, all neighbours in one subset.
    - ``"distance"``: ``P = max_hop + 1``, subset ``d`` holds the neighbours ``d`` hops away (``d = 0`` is the
      joint itself).
    - ``"spatial"``: ``P = 3``: root (neighbours as far from the centre as the joint itself, the joint
      included), centripetal (neighbours nearer the centre) and centrifugal (neighbours farther from it), with
      distances to the centre of :func:`graph_centre`.

    Each subset is row-normalised (``D^-1 A``): a non-empty row sums to 1, so a joint averages each subset of
    its neighbours; empty rows (the centre has no centripetal neighbour) stay 0.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown graph strategy '{strategy}'; choose one of {', '.join(STRATEGIES)}")
    if max_hop < 1:
        raise ValueError(f"max_hop must be >= 1, got {max_hop}")
    n = skeleton.num_joints
    hops = _hop_distance(n, graph_edges(skeleton))
    near = hops <= max_hop
    if strategy == "uniform":
        parts = [near.astype(np.float64)]
    elif strategy == "distance":
        parts = [(hops == d).astype(np.float64) for d in range(max_hop + 1)]
    else:
        to_centre = hops[:, graph_centre(skeleton)].min(1)  # (N,) hop distance of each joint to the centre
        di, dj = to_centre[:, None], to_centre[None, :]  # the joint i, its neighbour j
        parts = [(near & (dj == di)).astype(np.float64), (near & (dj < di)).astype(np.float64),
                 (near & (dj > di)).astype(np.float64)]
    return torch.from_numpy(np.stack([_row_normalise(p) for p in parts])).float()


class STGCNBlock(nn.Module):
    """One ST-GCN unit on ``(B, C_in, T, N)`` -> ``(B, C_out, T_out, N)`` with ``T_out = ceil(T / stride)``.

    Spatial graph convolution (a 1x1 conv to ``P * C_out`` channels, then each partition's channels mixed over
    the joints by ``A * edge_importance``), BN, ReLU, temporal convolution (``temporal_kernel x 1``, stride along
    time, "same" padding), BN, dropout, plus a residual; ReLU at the end. When ``C_in <= C_out`` the graph
    convolution mixes the joints first and the channels second (:meth:`graph_conv`): the same function, cheaper.

    Args:
        in_ch: ``C_in``.
        out_ch: ``C_out``.
        A: ``(P, N, N)`` adjacency from :func:`skeleton_graph` (kept as a buffer, not trained).
        temporal_kernel: odd temporal kernel size.
        stride: temporal stride (1 keeps ``T``).
        dropout: dropout probability after the temporal conv.
        residual: add the input (a 1x1 conv + BN with stride when the shape changes); ``False`` for none.
        edge_importance: learn a ``(P, N, N)`` multiplicative weight per edge (ST-GCN's edge importance).
    """

    def __init__(self, in_ch: int, out_ch: int, A: torch.Tensor, temporal_kernel: int = 9, stride: int = 1,
                 dropout: float = 0.0, residual: bool = True, edge_importance: bool = True) -> None:
        super().__init__()
        if temporal_kernel % 2 != 1:
            raise ValueError(f"temporal_kernel must be odd, got {temporal_kernel}")
        if A.ndim != 3 or A.shape[1] != A.shape[2]:
            raise ValueError(f"A must be (P, N, N), got {tuple(A.shape)}")
        self.num_partitions = A.shape[0]
        self.out_ch = out_ch
        self.register_buffer("A", A.detach().clone().float())
        # Ones: training starts from the normalised graph and learns to re-weight its edges.
        self.edge_importance = nn.Parameter(torch.ones_like(self.A)) if edge_importance else None
        self.gcn = nn.Conv2d(in_ch, self.num_partitions * out_ch, kernel_size=1)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, (temporal_kernel, 1), (stride, 1), ((temporal_kernel - 1) // 2, 0)),
            nn.BatchNorm2d(out_ch),
            nn.Dropout(dropout, inplace=True),
        )
        self.residual: nn.Module | None
        if not residual:
            self.residual = None
        elif in_ch == out_ch and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, (stride, 1)), nn.BatchNorm2d(out_ch))
        self.relu = nn.ReLU(inplace=True)

    def adjacency(self) -> torch.Tensor:
        """``(P, N, N)``: ``A`` weighted by the learned edge importance."""
        return self.A if self.edge_importance is None else self.A * self.edge_importance

    def graph_conv(self, x: torch.Tensor) -> torch.Tensor:
        """Spatial part only: ``(B, C_in, T, N)`` -> ``(B, C_out, T, N)``.

        ``out[:, :, :, i] = sum_p sum_j a[p, i, j] (W_p x[:, :, :, j] + b_p)`` with ``W_p``, ``b_p`` the 1x1
        conv's weights and bias of partition ``p``. For ``C_in <= C_out`` the joints are mixed first, on the
        ``C_in`` input channels (:meth:`graph_conv_mix_first`); otherwise the 1x1 conv runs first and its
        ``P * C_out`` channels are mixed.
        """
        if self.gcn.in_channels <= self.out_ch:
            return self.graph_conv_mix_first(x)
        y = self.gcn(x).unflatten(1, (self.num_partitions, self.out_ch))  # (B, P, C_out, T, N)
        return torch.einsum("bpctj,pij->bcti", y, self.adjacency())

    def graph_conv_mix_first(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`graph_conv` with the joints mixed before the channels.

        ``z[b, k, t, p N + i] = sum_j x[b, k, t, j] a[p, i, j]`` is one MatMul on the input, and
        ``sum_p W_p z_p`` is a ``(1, P)`` convolution with dilation ``N`` over the ``P N`` columns; the 1x1 conv's
        bias, mixed over the joints, becomes a per-joint bias. Against the 1x1 conv followed by an Einsum over
        the joints (which copies its ``P * C_out``-channel input to a contiguous layout first), this form halves
        the peak memory of inference and makes it about 6 % faster on CPU (``posetok bench sequence``,
        docs/benchmarks.md).
        """
        a = self.adjacency()  # (P, N, N)
        p, n = a.shape[0], a.shape[1]
        mix = a.permute(2, 0, 1).reshape(n, p * n)  # (j, p i)
        w = self.gcn.weight.reshape(p, self.out_ch, -1).permute(1, 2, 0)[:, :, None]  # (C_out, C_in, 1, P)
        out = F.conv2d(torch.matmul(x, mix), w, None, 1, 0, (1, n))
        if self.gcn.bias is not None:
            out = out + torch.einsum("pc,pi->ci", self.gcn.bias.reshape(p, self.out_ch), a.sum(-1))[None, :, None]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, T, N)`` -> ``(B, C_out, ceil(T / stride), N)``."""
        y = self.tcn(self.graph_conv(x))
        if self.residual is not None:
            y = y + self.residual(x)
        return self.relu(y)
