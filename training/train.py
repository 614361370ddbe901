"""Train the graph CVAE with a fixed seed; resumable.

Usage::

    python -m training.train --config training/configs/mmnp.yaml

The configuration's ``data: set:`` chooses the clusters (``mmnp`` by
default, or ``stacking``; see :mod:`training.dataset`) and its ``split``
the held-out part (``random``, ``geometry`` or, for the stacking set,
``sequence``).

Checkpoints, the per-epoch log (``log.csv``) and the data split
(``split.json``) go to the configuration's ``out_dir`` (outside the
repository).  Re-running the command after an interruption resumes from
the last checkpoint.

Loss per batch::

    recon + w_occ * BCE(occupancy) + beta * KL(q || sg(p))
          + KL(sg(q) || p) + latent_reg * |mean_q|^2

The prior gets the full KL gradient, the encoder only ``beta`` of it (KL
balancing).  ``beta`` stays 0 for the warm-up fraction of the epochs and
then grows by ``beta_step`` (up to ``beta_max``) after every epoch whose
reconstruction loss is below ``beta_threshold``.
"""

import argparse
import csv
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn
from tqdm import tqdm

from training.dataset import build_dataset, split_indices
from training.model import GraphCVAE, adjacency_matrix, gaussian_kl


def load_config(path) -> dict:
    """Read a YAML training configuration and expand its ``out_dir``."""
    with open(path) as f:
        config = yaml.safe_load(f)
    config["out_dir"] = str(Path(config["out_dir"]).expanduser())
    return config


def build_model(config, n_pdf) -> GraphCVAE:
    """The CVAE of a configuration, with its seeded initial weights."""
    torch.manual_seed(config["seed"])
    m = config["model"]
    return GraphCVAE(
        n_pdf,
        latent_dim=m["latent_dim"],
        max_atoms=config["data"]["max_atoms"],
        gnn_hidden=m["gnn_hidden"],
        gnn_layers=m["gnn_layers"],
        n_fourier=m["n_fourier"],
    )


def prepare(config, device="cpu"):
    """Data arrays as tensors (on ``device``) and the split of a config."""
    data = build_dataset(config["data"])
    split = split_indices(
        data["type_index"],
        data["shape_id"],
        config["seed"],
        config["split"],
        sequence_id=data.get("sequence_id"),
    )
    tensors = {
        k: torch.as_tensor(data[k]).float().to(device)
        for k in ("xyz", "mask", "cutoff", "features")
    }
    return data, tensors, split


def batch_loss(model, tensors, idx, variants, noise, beta, settings):
    """Loss terms of one batch (a dict of scalar tensors)."""
    xyz, mask = tensors["xyz"][idx], tensors["mask"][idx]
    pdf = tensors["features"][idx, variants] + noise
    out, (q_mean, q_logvar), (p_mean, p_logvar) = model(
        xyz, mask, tensors["cutoff"][idx], pdf
    )
    squared = ((out[..., :3] - xyz) ** 2).sum(-1)
    recon = (squared * mask).sum() / mask.sum()
    occupancy = torch.nn.functional.binary_cross_entropy_with_logits(
        out[..., 3], mask
    )
    kl_encoder = gaussian_kl(
        q_mean, q_logvar, p_mean.detach(), p_logvar.detach()
    ).mean()
    kl_prior = gaussian_kl(
        q_mean.detach(), q_logvar.detach(), p_mean, p_logvar
    ).mean()
    total = (
        recon
        + settings["occupancy_weight"] * occupancy
        + beta * kl_encoder
        + kl_prior
        + settings["latent_reg"] * (q_mean**2).sum(-1).mean()
    )
    return {
        "loss": total,
        "recon": recon,
        "occupancy": occupancy,
        "kl": kl_prior,
    }


@torch.no_grad()
def validate(model, tensors, data, idx):
    """Prior-mean decoding on ``idx``: exact-count rate, RMS error (d)."""
    model.eval()
    mean, _ = model.prior(tensors["features"][idx, 0])
    out = model.decoder(mean)
    n_pred = (out[..., 3] > 0).sum(-1).cpu().numpy()
    n_true = data["n_atoms"][idx]
    mask = tensors["mask"][idx]
    squared = ((out[..., :3] - tensors["xyz"][idx]) ** 2).sum(-1)
    rms = float(torch.sqrt((squared * mask).sum() / mask.sum()))
    model.train()
    return {"val_count": float(np.mean(n_pred == n_true)), "val_rms": rms}


def learning_rate(settings, epoch):
    """Cosine decay from ``lr`` to ``lr_min`` over all epochs."""
    frac = epoch / settings["epochs"]
    lo, hi = settings["lr_min"], settings["lr"]
    return lo + 0.5 * (hi - lo) * (1 + math.cos(math.pi * frac))


def save_checkpoint(path, state):
    """Write a checkpoint atomically."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def train(config, device="cpu") -> Path:
    """Train (or resume) a configuration; return the checkpoint path."""
    settings = config["train"]
    torch.set_num_threads(settings["threads"])
    out_dir = Path(config["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    data, tensors, split = prepare(config, device)
    (out_dir / "split.json").write_text(
        json.dumps(
            {k: data["ids"][v].tolist() for k, v in split.items()}, indent=0
        )
    )
    model = build_model(config, tensors["features"].shape[-1]).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    rng = np.random.default_rng(config["seed"])
    ckpt_path = out_dir / "checkpoint.pt"
    start, beta = 0, 0.0
    if ckpt_path.exists():
        state = torch.load(ckpt_path, weights_only=False, map_location=device)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        start, beta = state["epoch"], state["beta"]
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"].cpu())
        print(f"resuming from epoch {start}")
    log_path = out_dir / "log.csv"
    truncate_log(log_path, start)
    train_idx = split["train"]
    n_variants = tensors["features"].shape[1]
    warmup = int(settings["beta_warmup_fraction"] * settings["epochs"])
    progress = tqdm(
        range(start, settings["epochs"]),
        initial=start,
        total=settings["epochs"],
        desc="training",
    )
    for epoch in progress:
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(settings, epoch)
        order = rng.permutation(train_idx)
        sums: dict = {}
        t0 = time.perf_counter()
        for b in range(0, len(order), settings["batch_size"]):
            idx = torch.as_tensor(
                order[b : b + settings["batch_size"]], device=device
            )
            variants = torch.as_tensor(
                rng.integers(0, n_variants, len(idx)), device=device
            )
            level = rng.uniform(0, settings["noise_max"], (len(idx), 1))
            n_u = tensors["features"].shape[-1]
            noise = torch.as_tensor(
                level * rng.standard_normal((len(idx), n_u)),
                dtype=torch.float32,
                device=device,
            )
            terms = batch_loss(
                model, tensors, idx, variants, noise, beta, settings
            )
            optimiser.zero_grad()
            terms["loss"].backward()
            optimiser.step()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * len(idx)
        row = {k: v / len(order) for k, v in sums.items()}
        if epoch >= warmup and row["recon"] < settings["beta_threshold"]:
            beta = min(settings["beta_max"], beta + settings["beta_step"])
        row.update(epoch=epoch + 1, beta=beta)
        if (epoch + 1) % settings["validate_every"] == 0:
            row.update(validate(model, tensors, data, split["val"]))
        row["seconds"] = time.perf_counter() - t0
        progress.set_postfix(
            recon=f"{row['recon']:.4f}", kl=f"{row['kl']:.2f}", beta=beta
        )
        write_log(log_path, row)
        last = epoch + 1 == settings["epochs"]
        if (epoch + 1) % settings["checkpoint_every"] == 0 or last:
            save_checkpoint(
                ckpt_path,
                {
                    "model": model.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "epoch": epoch + 1,
                    "beta": beta,
                    "numpy_rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(),
                    "config": config,
                },
            )
    state = torch.load(ckpt_path, weights_only=False, map_location=device)
    if settings.get("polish_epochs") and not state.get("polished"):
        t0 = time.perf_counter()
        polish_decoder(model, tensors, train_idx, settings, config["seed"])
        state.update(
            model=model.state_dict(),
            polished=True,
            polish_seconds=time.perf_counter() - t0,
            config=config,
        )
        save_checkpoint(ckpt_path, state)
    return ckpt_path


def polish_decoder(model, tensors, train_idx, settings, seed):
    """Stage 2: fit the decoder alone to the posterior means.

    The encoder and prior are frozen.  The decoder is trained on the
    posterior means of the clean training PDFs without sampling noise,
    which sharpens the decoded atom positions where the training
    structures sit in the latent plane.
    """
    device = tensors["xyz"].device
    model.eval()
    with torch.no_grad():
        xyz, mask = tensors["xyz"][train_idx], tensors["mask"][train_idx]
        adjacency = adjacency_matrix(xyz, mask, tensors["cutoff"][train_idx])
        z, _ = model.encoder(
            xyz, adjacency, mask, tensors["features"][train_idx, 0]
        )
    optimiser = torch.optim.Adam(
        model.decoder.parameters(), lr=settings["polish_lr"]
    )
    schedule = {
        **settings,
        "epochs": settings["polish_epochs"],
        "lr": settings["polish_lr"],
    }
    rng = np.random.default_rng(seed)
    model.decoder.train()
    for epoch in tqdm(range(settings["polish_epochs"]), desc="polishing"):
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(schedule, epoch)
        order = torch.as_tensor(rng.permutation(len(z)), device=device)
        for batch in order.split(settings["batch_size"]):
            out = model.decoder(z[batch])
            squared = ((out[..., :3] - xyz[batch]) ** 2).sum(-1)
            recon = (squared * mask[batch]).sum() / mask[batch].sum()
            occupancy = nn.functional.binary_cross_entropy_with_logits(
                out[..., 3], mask[batch]
            )
            loss = recon + settings["occupancy_weight"] * occupancy
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()


LOG_FIELDS = [
    "epoch",
    "loss",
    "recon",
    "occupancy",
    "kl",
    "beta",
    "val_count",
    "val_rms",
    "seconds",
]


def truncate_log(path, epochs):
    """Drop log rows after ``epochs`` (those of an interrupted run)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["epoch"]) <= epochs]
    path.unlink()
    for row in rows:
        write_log(path, row)


def write_log(path, row):
    """Append one epoch's figures to the CSV log."""
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, LOG_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in LOG_FIELDS})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="YAML config file")
    parser.add_argument(
        "--epochs", type=int, help="override the number of epochs"
    )
    parser.add_argument("--out-dir", help="override the output folder")
    parser.add_argument(
        "--device", default="cpu", help="torch device (default: cpu)"
    )
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if args.epochs:
        config["train"]["epochs"] = args.epochs
    if args.out_dir:
        config["out_dir"] = str(Path(args.out_dir).expanduser())
    path = train(config, args.device)
    print(f"checkpoint: {path}")


if __name__ == "__main__":
    main()
