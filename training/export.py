"""Export a trained CVAE to ONNX (encoder, prior, decoder) with metadata.

Usage::

    python -m training.export --config training/configs/mmnp.yaml

writes ``onnx_models/<name>/{encoder,prior,decoder}.onnx`` and
``metadata.json`` (grids, PDF parameters, normalisation, the split, the
latent map of the training structures, the training configuration and
git commit, and the sha256 of every file).  ``python -m
training.evaluate`` later adds the test metrics to the same metadata.
"""

import argparse
import csv
import dataclasses
import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import torch

from diffpy.deepstruc.clusters import CLUSTER_TYPES
from diffpy.deepstruc.debye import DebyeParameters
from diffpy.deepstruc.features import FIRST_PEAK_FRACTION, U_GRID
from diffpy.deepstruc.pdfdata import MODEL_R_GRID
from training.dataset import DATA_SETS
from training.model import GraphEncoder
from training.train import build_model, load_config, prepare

REPO_ROOT = Path(__file__).resolve().parents[1]
OPSET = 17


def sha256(path) -> str:
    """Hex sha256 digest of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def git_commit() -> str:
    """The repository's current commit (with ``-dirty`` if modified)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src", "training"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def export_networks(model, out_dir, n_pdf, max_atoms):
    """Write encoder.onnx, prior.onnx and decoder.onnx; return the paths."""
    model.eval()
    batch = {0: "batch"}
    specs = {
        "encoder": (
            GraphEncoder(model.encoder),
            (
                torch.zeros(2, max_atoms, 3),
                torch.ones(2, max_atoms),
                torch.ones(2),
                torch.zeros(2, n_pdf),
            ),
            ["xyz", "mask", "cutoff", "pdf"],
            ["mean", "logvar"],
        ),
        "prior": (
            model.prior,
            (torch.zeros(2, n_pdf),),
            ["pdf"],
            ["mean", "logvar"],
        ),
        "decoder": (
            model.decoder,
            (torch.zeros(2, 2),),
            ["z"],
            ["atoms"],
        ),
    }
    paths = {}
    for name, (module, args, inputs, outputs) in specs.items():
        path = Path(out_dir) / f"{name}.onnx"
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            opset_version=OPSET,
            dynamo=False,
            dynamic_axes={k: batch for k in inputs + outputs},
        )
        paths[name] = path
    return paths


@torch.no_grad()
def onnx_parity(model, paths, features, xyz, mask, cutoff) -> float:
    """Largest |onnxruntime - PyTorch| over all networks and outputs.

    The inputs are real (``features``, ``xyz``...) plus random latent
    points and random PDF inputs.
    """
    import onnxruntime

    model.eval()
    generator = torch.Generator().manual_seed(0)
    z = (
        torch.randn(
            64, model.decoder.frequencies.shape[0], generator=generator
        )
        * 2
    )
    noisy = features + 0.1 * torch.randn(features.shape, generator=generator)
    cases = {
        "prior": (model.prior, {"pdf": torch.cat([features, noisy])}),
        "decoder": (model.decoder, {"z": z}),
        "encoder": (
            GraphEncoder(model.encoder),
            {"xyz": xyz, "mask": mask, "cutoff": cutoff, "pdf": features},
        ),
    }
    worst = 0.0
    for name, (module, feeds) in cases.items():
        session = onnxruntime.InferenceSession(
            str(paths[name]), providers=["CPUExecutionProvider"]
        )
        expected = module(*feeds.values())
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = session.run(None, {k: v.numpy() for k, v in feeds.items()})
        for e, g in zip(expected, got):
            worst = max(worst, float(np.abs(e.numpy() - g).max()))
    return worst


@torch.no_grad()
def latent_map(model, tensors, data, idx, types=CLUSTER_TYPES):
    """Posterior means of the clusters ``idx`` with their labels.

    ``types`` names the classes of ``data["type_index"]``.
    """
    encoder = GraphEncoder(model.encoder).eval()
    mean, _ = encoder(
        tensors["xyz"][idx],
        tensors["mask"][idx],
        tensors["cutoff"][idx],
        tensors["features"][idx, 0],
    )
    return {
        "z": np.round(mean.numpy(), 5).tolist(),
        "id": data["ids"][idx].tolist(),
        "type": [types[t] for t in data["type_index"][idx]],
        "n_atoms": data["n_atoms"][idx].tolist(),
        "shape_id": data["shape_id"][idx].tolist(),
    }


def training_wall_time(run_dir, state) -> float | None:
    """Seconds of training: the main loop from ``log.csv``, plus polishing.

    ``None`` when the log is missing or the decoder was polished by a
    version that did not time it.
    """
    log = Path(run_dir) / "log.csv"
    if not log.exists() or (
        state.get("polished") and "polish_seconds" not in state
    ):
        return None
    with open(log) as f:
        loop = sum(float(row["seconds"]) for row in csv.DictReader(f))
    return round(loop + state.get("polish_seconds", 0.0))


def export(config, checkpoint=None, out_dir=None) -> Path:
    """Export the checkpoint of ``config``; return the model folder.

    The network shapes, data and split come from the configuration stored
    in the checkpoint, so a checkpoint is always exported as trained.
    """
    checkpoint = Path(checkpoint or Path(config["out_dir"]) / "checkpoint.pt")
    state = torch.load(checkpoint, weights_only=False, map_location="cpu")
    config = {**state["config"], "name": config["name"]}
    data, tensors, split = prepare(config)
    types = DATA_SETS[config["data"].get("set", "mmnp")]
    n_pdf = tensors["features"].shape[-1]
    model = build_model(config, n_pdf)
    model.load_state_dict(state["model"])
    out_dir = Path(out_dir or REPO_ROOT / "onnx_models" / config["name"])
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = export_networks(model, out_dir, n_pdf, config["data"]["max_atoms"])
    sample = split["test"][:64]
    parity = onnx_parity(
        model,
        paths,
        tensors["features"][sample, 0],
        tensors["xyz"][sample],
        tensors["mask"][sample],
        tensors["cutoff"][sample],
    )
    if parity > 1e-4:
        raise RuntimeError(
            f"onnxruntime differs from PyTorch by {parity:.2e} (> 1e-4)."
        )
    metadata = {
        "name": config["name"],
        "format_version": 1,
        "description": (
            "Graph CVAE trained on the MMNP library (sc, fcc, bcc, hcp, "
            "icosahedral, decahedral, octahedral; 5-200 atoms)."
        ),
        "files": {
            name: {"path": path.name, "sha256": sha256(path)}
            for name, path in paths.items()
        },
        "pdf_parameters": dataclasses.asdict(DebyeParameters()),
        "model_r_grid": {
            "rmin": float(MODEL_R_GRID[0]),
            "rstep": 0.01,
            "n_points": int(MODEL_R_GRID.size),
        },
        "prior_input": {
            "u_min": float(U_GRID[0]),
            "u_step": 0.01,
            "n_points": int(U_GRID.size),
            "first_peak_fraction": FIRST_PEAK_FRACTION,
            "normalisation": (
                "G on the model grid divided by its maximum, resampled "
                "linearly at r = u * d, where d is the first-peak "
                "position; zero outside the data"
            ),
        },
        "decoder": {
            "max_atoms": config["data"]["max_atoms"],
            "coordinates": "units of the nearest-neighbour distance d",
            "occupancy": "an atom slot is occupied when its logit > 0",
        },
        "latent_dim": config["model"]["latent_dim"],
        "types": list(types),
        "library": config["data"].get("set", "mmnp"),
        "split": {
            "mode": config["split"],
            "seed": config["seed"],
            **{k: data["ids"][v].tolist() for k, v in split.items()},
        },
        "latent_map": latent_map(model, tensors, data, split["train"], types),
        "training": {
            "config": config,
            "epochs": state["epoch"],
            "decoder_polished": bool(state.get("polished")),
            "wall_time_s": training_wall_time(checkpoint.parent, state),
            "git_commit": git_commit(),
            "torch_version": torch.__version__,
        },
        "onnx_parity_max_abs_diff": parity,
        "metrics": {},
    }
    (out_dir / "metadata.json").write_text(json.dumps(metadata, indent=1))
    return out_dir


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="YAML config file")
    parser.add_argument("--checkpoint", help="default: out_dir/checkpoint.pt")
    parser.add_argument("--out", help="default: onnx_models/<name>")
    args = parser.parse_args(argv)
    out = export(load_config(args.config), args.checkpoint, args.out)
    print(f"exported to {out}")


if __name__ == "__main__":
    main()
