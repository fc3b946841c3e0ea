"""Launched by ``torchrun`` from tests/test_distributed.py: trains a tiny tokenizer data-parallel and records,
on every rank, a fingerprint of its codebook and EMA statistics so the test can check they agree."""

import json
import sys
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from posetok.tasks.runner import train  # noqa: E402
from tests.conftest import tiny_config  # noqa: E402


class Fingerprint(L.Callback):
    def on_train_end(self, trainer, pl_module):
        cb = pl_module.model.quantizer._codebook
        record = {
            "rank": trainer.global_rank, "world_size": trainer.world_size, "global_step": trainer.global_step,
            "codebook": cb.embed.double().sum().item(), "cluster_size": cb.cluster_size.double().sum().item(),
            "codebook_abs": cb.embed.double().abs().sum().item(),
            "weights": sum(p.double().sum().item() for p in pl_module.model.parameters()),
            "backend": torch.distributed.get_backend() if torch.distributed.is_initialized() else None,
            "quantizer_all_reduce": cb.all_reduce_fn is torch.distributed.all_reduce,
        }
        Path(trainer.default_root_dir, f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    train(tiny_config(out, "trainer.max_steps=8", "trainer.val_every_n_steps=4", "optim.vq_start_step=2",
                      "data.synthetic_train=2000", "data.batch_size=64", "trainer.accelerator=cpu"),
          callbacks=[Fingerprint()])
