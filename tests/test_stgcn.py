"""ST-GCN adjacency (partitions, normalisation, connectivity) and block shapes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from posetok.models.stgcn import STGCNBlock, _components, _hop_distance, graph_centre, graph_edges, skeleton_graph
from posetok.skeletons import COCO17, H36M17, MPII16, SKELETONS, WHOLEBODY133


@pytest.mark.parametrize("name", sorted(SKELETONS))
@pytest.mark.parametrize("strategy,parts", [("uniform", 1), ("distance", 2), ("spatial", 3)])
def test_adjacency_shape_and_row_normalisation(name: str, strategy: str, parts: int) -> None:
    sk = SKELETONS[name]
    n = sk.num_joints
    A = skeleton_graph(sk, strategy)
    assert A.shape == (parts, n, n) and A.dtype == torch.float32
    assert (A >= 0).all()
    rows = A.sum(-1)  # every non-empty row of every partition averages its subset
    assert torch.allclose(rows[rows > 0], torch.ones_like(rows[rows > 0]))
    # The partitions split the 1-hop neighbourhood (self included): together they cover it exactly once.
    hops = torch.from_numpy(_hop_distance(n, graph_edges(sk)))
    support = (A > 0).sum(0)
    assert torch.equal(support, (hops <= 1).long())
    if strategy == "uniform":
        assert torch.allclose(rows, torch.ones_like(rows))


@pytest.mark.parametrize("name", sorted(SKELETONS))
def test_distance_strategy_partitions(name: str) -> None:
    sk = SKELETONS[name]
    A = skeleton_graph(sk, "distance", max_hop=2)
    assert A.shape[0] == 3
    assert torch.equal(A[0], torch.eye(sk.num_joints))  # hop 0 is the joint itself
    assert (A[1].sum(-1) > 0).all() and (A[2].sum(-1) > 0).all()  # connected: everyone has 1- and 2-hop joints


def test_spatial_partition_follows_the_centre() -> None:
    # COCO-17 has no pelvis: both hips form the centre (a virtual mid-hip).
    assert graph_centre(COCO17) == [11, 12]
    A = skeleton_graph(COCO17, "spatial")
    root, centripetal, centrifugal = A
    knee = COCO17.index("left_knee")
    assert centripetal[knee].nonzero().flatten().tolist() == [COCO17.index("left_hip")]
    assert centrifugal[knee].nonzero().flatten().tolist() == [COCO17.index("left_ankle")]
    assert root[knee, knee] == 1.0
    # The two hips are equally far from the centre: each is in the other's root subset.
    assert root[11, 12] > 0 and root[12, 11] > 0
    # Human3.6M's root joint is the centre and has no neighbour nearer to it.
    assert graph_centre(H36M17) == [0]
    A = skeleton_graph(H36M17, "spatial")
    assert A[1, 0].sum() == 0 and A[2, 0].sum() == 1
    assert graph_centre(MPII16) == [MPII16.index("pelvis")]


@pytest.mark.parametrize("name", sorted(SKELETONS))
def test_every_skeleton_graph_is_connected(name: str) -> None:
    sk = SKELETONS[name]
    edges = graph_edges(sk)
    assert len(_components(sk.num_joints, edges)) == 1
    assert np.isfinite(_hop_distance(sk.num_joints, edges)).all()


def test_wholebody_face_is_attached_to_the_body() -> None:
    # The face contours are separate chains in the limb list; the graph links them to each other and the nose.
    assert len(_components(133, list(WHOLEBODY133.limbs))) > 1
    extra = set(graph_edges(WHOLEBODY133)) - set(WHOLEBODY133.limbs)
    assert (WHOLEBODY133.index("nose"), WHOLEBODY133.index("face-30")) in extra
    assert all(WHOLEBODY133.joint_names[b].startswith("face-") for _, b in extra)


def test_stray_component_without_a_named_link_hangs_off_the_centre() -> None:
    # Drop the left shoulder-elbow bone: the left elbow and wrist float free.
    limbs = tuple(l for l in COCO17.limbs if l != (5, 7))
    sk = dataclasses.replace(COCO17, name="broken", limbs=limbs)
    assert len(_components(17, list(limbs))) == 2
    edges = graph_edges(sk)
    assert len(_components(17, edges)) == 1
    assert edges[-1] == (11, 7)  # the first stray joint linked to the (first) centre joint
    A = skeleton_graph(sk)
    assert A.shape == (3, 17, 17)


def test_unknown_strategy_raises() -> None:
    with pytest.raises(ValueError, match="strategy"):
        skeleton_graph(COCO17, "nope")


@pytest.mark.parametrize("stride,frames,out_frames", [(1, 16, 16), (2, 16, 8), (2, 15, 8), (4, 16, 4)])
def test_block_shapes(stride: int, frames: int, out_frames: int) -> None:
    A = skeleton_graph(COCO17)
    block = STGCNBlock(3, 8, A, temporal_kernel=5, stride=stride)
    y = block(torch.randn(2, 3, frames, 17))
    assert y.shape == (2, 8, out_frames, 17)
    assert (y >= 0).all()  # ends in a ReLU


def test_block_residual_and_edge_importance() -> None:
    A = skeleton_graph(COCO17)
    same = STGCNBlock(8, 8, A)
    assert isinstance(same.residual, torch.nn.Identity)
    assert STGCNBlock(8, 8, A, residual=False).residual is None
    x = torch.randn(2, 8, 12, 17)
    same(x).sum().backward()
    assert same.edge_importance is not None and same.edge_importance.grad is not None
    assert same.edge_importance.grad.abs().sum() > 0
    x_copy = x.clone()
    same.eval()(x)
    assert torch.equal(x, x_copy)  # no in-place change to the input


@pytest.mark.parametrize("in_ch,out_ch", [(3, 8), (8, 8), (8, 4)])
def test_graph_conv_is_the_partitioned_graph_convolution(in_ch: int, out_ch: int) -> None:
    """Either evaluation order (joints first for C_in <= C_out, channels first otherwise) and the ONNX rewrite
    give sum_p sum_j a[p, i, j] (W_p x_j + b_p), with a learned edge importance and bias."""
    from posetok.export import onnx_friendly

    torch.manual_seed(0)
    A = skeleton_graph(COCO17)
    block = STGCNBlock(in_ch, out_ch, A)
    with torch.no_grad():
        block.edge_importance.uniform_(0.5, 1.5)
        block.gcn.bias.normal_()
    x = torch.randn(2, in_ch, 5, 17)
    a = (A * block.edge_importance).detach()
    w = block.gcn.weight.detach()[:, :, 0, 0].reshape(3, out_ch, in_ch)
    b = block.gcn.bias.detach().reshape(3, out_ch)
    per_joint = torch.einsum("pok,bktj->bpotj", w, x) + b[None, :, :, None, None]  # (B, P, C_out, T, N)
    expected = torch.einsum("bpotj,pij->boti", per_joint, a)
    with torch.no_grad():
        assert torch.allclose(block.graph_conv(x), expected, atol=1e-5)
        assert torch.allclose(onnx_friendly(block).graph_conv(x), expected, atol=1e-5)
    block.graph_conv(x).sum().backward()  # both forms train the 1x1 conv, its bias and the edge importance
    assert block.gcn.weight.grad.abs().sum() > 0 and block.gcn.bias.grad.abs().sum() > 0
    assert block.edge_importance.grad.abs().sum() > 0
