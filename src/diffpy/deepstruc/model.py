"""Load the shipped ONNX networks and run them on the CPU.

A model is a folder with ``prior.onnx``, ``decoder.onnx``, ``encoder.onnx``
and ``metadata.json``.  The shipped models live in the package
(``diffpy.deepstruc.onnx_models``, mapped from the repository's top-level
``onnx_models/``); a path to any such folder works too.  Every file is
checked against the sha256 recorded in ``metadata.json`` before it is used.
"""

import hashlib
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from diffpy.deepstruc.fitting import worker_threads


class ModelFileError(RuntimeError):
    """A model file is missing or differs from its recorded checksum."""


def models_dir() -> Path:
    """Folder that holds the shipped models."""
    return Path(str(resources.files("diffpy.deepstruc.onnx_models")))


def available_models() -> list[str]:
    """Names of the shipped models (folders with a ``metadata.json``)."""
    return sorted(p.parent.name for p in models_dir().glob("*/metadata.json"))


def _resolve(model: str | Path) -> Path:
    path = Path(model)
    if path.is_dir():
        return path
    folder = models_dir() / str(model)
    if not (folder / "metadata.json").is_file():
        raise ModelFileError(
            f"No model named {model!r}: {folder / 'metadata.json'} is "
            f"missing. Shipped models: {available_models() or 'none'}. "
            "Please pass one of them or the path of a model folder."
        )
    return folder


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


class DeepStrucModel:
    """The prior and decoder (and encoder) of one trained model.

    Parameters
    ----------
    model : str or pathlib.Path
        Name of a shipped model (e.g. ``"mmnp"``) or a model folder.

    Raises
    ------
    ModelFileError
        When ``metadata.json`` or a network file is missing, or a file's
        sha256 differs from the one in the metadata.
    """

    def __init__(self, model: str | Path = "mmnp"):
        self.folder = _resolve(model)
        meta_path = self.folder / "metadata.json"
        try:
            self.metadata = json.loads(meta_path.read_text())
        except (OSError, ValueError) as err:
            raise ModelFileError(
                f"Cannot read {meta_path}: {err}. Please reinstall "
                "diffpy.deepstruc or re-export the model."
            ) from err
        self.name = self.metadata["name"]
        self._sessions: dict = {}

    def _session(self, network: str):
        if network not in self._sessions:
            entry = self.metadata["files"][network]
            path = self.folder / entry["path"]
            if not path.is_file():
                raise ModelFileError(
                    f"Model file {path} is missing. Please reinstall "
                    "diffpy.deepstruc or re-export the model."
                )
            if file_sha256(path) != entry["sha256"]:
                raise ModelFileError(
                    f"Model file {path} does not match the sha256 in "
                    f"{self.folder / 'metadata.json'}; it was altered or "
                    "damaged. Please reinstall diffpy.deepstruc."
                )
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3
            options.intra_op_num_threads = worker_threads()
            self._sessions[network] = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        return self._sessions[network]

    def prior(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Prior mean and standard deviation of z for PDF inputs.

        Parameters
        ----------
        features : numpy.ndarray
            ``(n, n_u)`` or ``(n_u,)`` scale-free PDF input
            (:func:`diffpy.deepstruc.features.prior_input`).

        Returns
        -------
        mean, sigma : numpy.ndarray
            Each ``(n, latent_dim)``.
        """
        x = np.atleast_2d(np.asarray(features, np.float32))
        mean, logvar = self._session("prior").run(None, {"pdf": x})
        return mean, np.exp(0.5 * logvar)

    def decode(self, z: np.ndarray) -> list[np.ndarray]:
        """Decode latent points to clusters in units of the nn distance.

        Parameters
        ----------
        z : numpy.ndarray
            ``(n, latent_dim)`` latent points.

        Returns
        -------
        list of numpy.ndarray
            One ``(n_atoms, 3)`` array per point: the occupied atom slots
            (logit > 0), in units of the nearest-neighbour distance.
        """
        z = np.atleast_2d(np.asarray(z, np.float32))
        (atoms,) = self._session("decoder").run(None, {"z": z})
        return [a[a[:, 3] > 0, :3].astype(float) for a in atoms]

    def encode(self, xyz, mask, cutoff, features):
        """Posterior mean and log-variance (the encoder; for analysis)."""
        feeds = {
            "xyz": np.asarray(xyz, np.float32),
            "mask": np.asarray(mask, np.float32),
            "cutoff": np.asarray(cutoff, np.float32),
            "pdf": np.asarray(features, np.float32),
        }
        return self._session("encoder").run(None, feeds)

    @property
    def latent_map(self) -> dict:
        """Latent coordinates and labels of the training structures."""
        return self.metadata["latent_map"]


@lru_cache(maxsize=4)
def load_model(model: str = "mmnp") -> DeepStrucModel:
    """A cached :class:`DeepStrucModel` (one per name or path)."""
    return DeepStrucModel(model)
