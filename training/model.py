"""The graph conditional variational autoencoder (PyTorch).

Three networks, exported to ONNX separately:

* :class:`Encoder` (training only): a dense graph network over the padded
  structure graph plus a PDF branch, giving the posterior mean and
  log-variance of the 2-D latent variable.
* :class:`Prior`: a gated MLP from the scale-free PDF input to the prior
  mean and log-variance.
* :class:`Decoder`: latent z to ``max_atoms`` atom slots, each with xyz in
  units of the nearest-neighbour distance and an occupancy logit.

The graph network is written with dense, padded tensors (adjacency
``(batch, max_atoms, max_atoms)`` and a node mask) so that it exports to
ONNX without scatter operations.
"""

import torch
from torch import nn


class GatedLayer(nn.Module):
    """Linear layer whose output is gated by a sigmoid of the input."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.value = nn.Linear(n_in, n_out)
        self.gate = nn.Linear(n_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value(x) * torch.sigmoid(self.gate(x))


def gated_mlp(sizes: list[int]) -> nn.Sequential:
    """Gated layers with ELU between them (none after the last)."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [GatedLayer(n_in, n_out), nn.ELU()]
    return nn.Sequential(*layers[:-1])


def mlp(sizes: list[int]) -> nn.Sequential:
    """Plain MLP with ELU between the layers (none after the last)."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ELU()]
    return nn.Sequential(*layers[:-1])


class GraphLayer(nn.Module):
    """Dense message passing: ``h' = ELU(W_self h + W_nbr (A h))``."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.self_weight = nn.Linear(n_in, n_out)
        self.neighbour_weight = nn.Linear(n_in, n_out, bias=False)

    def forward(self, h: torch.Tensor, adjacency: torch.Tensor):
        messages = torch.bmm(adjacency, h)
        return nn.functional.elu(
            self.self_weight(h) + self.neighbour_weight(messages)
        )


class Encoder(nn.Module):
    """Posterior q(z | structure, PDF).

    Parameters
    ----------
    n_pdf : int
        Length of the scale-free PDF input.
    hidden : int
        Width of the graph layers.
    n_layers : int
        Number of graph layers.
    latent_dim : int
        Dimension of the latent space.
    """

    def __init__(self, n_pdf, hidden=64, n_layers=3, latent_dim=2):
        super().__init__()
        sizes = [3] + [hidden] * n_layers
        self.graph_layers = nn.ModuleList(
            GraphLayer(a, b) for a, b in zip(sizes[:-1], sizes[1:])
        )
        self.attention = nn.Linear(hidden, 1)
        self.pdf_branch = mlp([n_pdf, 256, hidden])
        self.head = mlp([2 * hidden, hidden, 2 * latent_dim])
        # start with a narrow posterior so that the decoder sees distinct
        # latent points from the first epoch
        with torch.no_grad():
            self.head[-1].bias[latent_dim:] = -6.0

    def forward(self, xyz, adjacency, mask, pdf):
        """Return posterior (mean, log-variance).

        Parameters
        ----------
        xyz : torch.Tensor
            ``(batch, max_atoms, 3)`` coordinates in units of d.
        adjacency : torch.Tensor
            ``(batch, max_atoms, max_atoms)`` row-normalised edge weights.
        mask : torch.Tensor
            ``(batch, max_atoms)`` 1 for atoms, 0 for padding.
        pdf : torch.Tensor
            ``(batch, n_pdf)`` scale-free PDF input.
        """
        h = xyz
        for layer in self.graph_layers:
            h = layer(h, adjacency)
        scores = self.attention(h).squeeze(-1)
        scores = scores.masked_fill(mask < 0.5, -1e9)
        weights = torch.softmax(scores, dim=1).unsqueeze(-1)
        pooled = (weights * h).sum(dim=1)
        out = self.head(torch.cat([pooled, self.pdf_branch(pdf)], dim=-1))
        return out.chunk(2, dim=-1)


class Prior(nn.Module):
    """Prior p(z | PDF) as a gated MLP to (mean, log-variance)."""

    def __init__(self, n_pdf, hidden=(384, 192, 24), latent_dim=2):
        super().__init__()
        self.net = gated_mlp([n_pdf, *hidden, 2 * latent_dim])

    def forward(self, pdf):
        return self.net(pdf).chunk(2, dim=-1)


class Decoder(nn.Module):
    """Latent z to ``(batch, max_atoms, 4)``: xyz (units of d), logit.

    z enters with random Fourier features ``sin(Bz), cos(Bz)`` (fixed,
    seeded ``B``), which lets the MLP change its output quickly between
    neighbouring geometries of the 2-D latent plane.
    """

    def __init__(
        self,
        latent_dim=2,
        hidden=(128, 256, 512, 1024),
        max_atoms=200,
        n_fourier=32,
        fourier_scale=2.0,
    ):
        super().__init__()
        self.max_atoms = max_atoms
        generator = torch.Generator().manual_seed(0)
        frequencies = torch.randn(latent_dim, n_fourier, generator=generator)
        self.register_buffer("frequencies", frequencies * fourier_scale)
        n_in = latent_dim + 2 * n_fourier
        self.net = mlp([n_in, *hidden, 4 * max_atoms])

    def forward(self, z):
        phase = z @ self.frequencies
        x = torch.cat([z, torch.sin(phase), torch.cos(phase)], dim=-1)
        return self.net(x).view(-1, self.max_atoms, 4)


def adjacency_matrix(xyz, mask, cutoff):
    """Row-normalised distance-weighted adjacency of padded clusters.

    Atoms closer than ``cutoff`` (per cluster, units of d) are joined by an
    edge of weight ``1 / distance``; rows are divided by their sum.
    """
    delta = xyz.unsqueeze(2) - xyz.unsqueeze(1)
    distance = torch.sqrt((delta**2).sum(-1) + 1e-12)
    pair_mask = mask.unsqueeze(1) * mask.unsqueeze(2)
    inside = (distance < cutoff.view(-1, 1, 1)) & (distance > 1e-6)
    weight = torch.where(inside, 1.0 / distance.clamp_min(1e-6), 0.0)
    weight = weight * pair_mask
    return weight / weight.sum(-1, keepdim=True).clamp_min(1e-6)


class GraphEncoder(nn.Module):
    """The encoder with its graph construction, as exported to ONNX."""

    def __init__(self, encoder: Encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, xyz, mask, cutoff, pdf):
        adjacency = adjacency_matrix(xyz, mask, cutoff)
        return self.encoder(xyz, adjacency, mask, pdf)


class GraphCVAE(nn.Module):
    """Encoder, prior and decoder trained together."""

    def __init__(
        self,
        n_pdf,
        latent_dim=2,
        max_atoms=200,
        gnn_hidden=64,
        gnn_layers=3,
        n_fourier=32,
    ):
        super().__init__()
        self.encoder = Encoder(n_pdf, gnn_hidden, gnn_layers, latent_dim)
        self.prior = Prior(n_pdf, latent_dim=latent_dim)
        self.decoder = Decoder(
            latent_dim, max_atoms=max_atoms, n_fourier=n_fourier
        )

    def forward(self, xyz, mask, cutoff, pdf):
        adjacency = adjacency_matrix(xyz, mask, cutoff)
        post_mean, post_logvar = self.encoder(xyz, adjacency, mask, pdf)
        prior_mean, prior_logvar = self.prior(pdf)
        noise = torch.randn_like(post_mean)
        z = post_mean + noise * torch.exp(0.5 * post_logvar)
        return (
            self.decoder(z),
            (post_mean, post_logvar),
            (
                prior_mean,
                prior_logvar,
            ),
        )


def gaussian_kl(mean_q, logvar_q, mean_p, logvar_p):
    """KL(q || p) of diagonal Gaussians, summed over latent dimensions."""
    return 0.5 * (
        logvar_p
        - logvar_q
        + (torch.exp(logvar_q) + (mean_q - mean_p) ** 2) / torch.exp(logvar_p)
        - 1.0
    ).sum(-1)
