"""Launched by ``torchrun`` from tests/test_distributed.py: trains a tiny tokenizer (``pose`` or ``sequence``) or
estimator (``estimator``) data-parallel and records, on every rank, a fingerprint of its weights (and codebooks and
EMA statistics) so the test can check they agree."""

import json
import sys
from pathlib import Path

import lightning as L
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from posetok.config import load_config  # noqa: E402
from posetok.tasks import train  # noqa: E402
from tests.conftest import tiny_config  # noqa: E402


class Fingerprint(L.Callback):
    def on_train_end(self, trainer, pl_module):
        if not hasattr(pl_module.model, "quantizer"):  # the estimator: weights, BN statistics and the step
            bn = [m.running_mean.double().sum().item() for m in pl_module.model.modules()
                  if isinstance(m, torch.nn.BatchNorm2d)]
            record = {"rank": trainer.global_rank, "world_size": trainer.world_size,
                      "global_step": trainer.global_step, "backend": torch.distributed.get_backend(),
                      "weights": sum(p.double().sum().item() for p in pl_module.model.parameters()), "bn": bn}
            Path(trainer.default_root_dir, f"rank{trainer.global_rank}.json").write_text(json.dumps(record))
            return
        q = pl_module.model.quantizer
        # The pose tokenizer has one codebook; the sequence tokenizer's residual VQ one per quantizer.
        books = [layer._codebook for layer in q.layers] if hasattr(q, "layers") else [q._codebook]
        record = {
            "rank": trainer.global_rank, "world_size": trainer.world_size, "global_step": trainer.global_step,
            "num_codebooks": len(books),
            "codebook": [cb.embed.double().sum().item() for cb in books],
            "cluster_size": [cb.cluster_size.double().sum().item() for cb in books],
            "codebook_abs": [cb.embed.double().abs().sum().item() for cb in books],
            "weights": sum(p.double().sum().item() for p in pl_module.model.parameters()),
            "backend": torch.distributed.get_backend() if torch.distributed.is_initialized() else None,
            "quantizer_all_reduce": all(cb.all_reduce_fn is torch.distributed.all_reduce for cb in books),
        }
        Path(trainer.default_root_dir, f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    torch.set_num_threads(1)
    out, kind = Path(sys.argv[1]), sys.argv[2]
    if kind == "estimator":
        from posetok.config import build_config

        cfg = build_config("estimator", {
            "out": str(out), "model": {"input_size": [64, 64], "backbone": {"name": "hrnet_w18_small"}},
            "data": {"batch_size": 8, "num_workers": 0},
            "trainer": {"max_epochs": None, "max_steps": 4, "val_every_n_steps": 2, "progress_bar": False,
                        "precision": "32-true", "accelerator": "cpu", "threads": 1}})
    elif kind == "pose":
        cfg = tiny_config(out, "trainer.max_steps=8", "trainer.val_every_n_steps=4", "optim.vq_start_step=2",
                          "data.synthetic_train=2000", "data.batch_size=64", "trainer.accelerator=cpu")
    else:
        # Through the YAML config and overrides, as `torchrun -m posetok train configs/sequence/small.yaml ...`.
        cfg = load_config(ROOT / "configs" / "sequence" / "small.yaml", [
            f"out={out}", "model.hidden_dim=16", "model.joint_dim=4", "model.token_dim=16", "model.codebook_size=16",
            "model.sequence_length=16", "model.temporal_kernel=3", "model.kmeans_iters=1", "data.synthetic_train=32",
            "data.synthetic_val=8", "data.synthetic_length=32", "data.batch_size=8", "data.real_sample=true",
            "optim.vq_start_step=2", "trainer.max_steps=8", "trainer.val_every_n_steps=4", "trainer.max_time=null",
            "trainer.progress_bar=false", "trainer.accelerator=cpu", "trainer.threads=1"])
    train(cfg, callbacks=[Fingerprint()])
